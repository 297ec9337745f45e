"""``mlcycle data ...``: ingest, version, inspect, compare and validate datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    console,
    fixed,
    format_number,
    format_size,
    format_time,
    key_value_table,
    plural,
    print_json,
    print_note,
    print_success,
    progress,
    table,
)
from mlcycle.datasets.service import DataService
from mlcycle.entities import Dataset, DatasetVersion
from mlcycle.errors import InvalidInputError

__all__ = ["app"]

app = typer.Typer(
    name="data",
    help="Datasets: ingest sources as versioned snapshots, profile, diff and validate them.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
contract_app = typer.Typer(name="contract", help="Data contracts: infer, show, store.",
                           no_args_is_help=True)
app.add_typer(contract_app)

Ref = Annotated[str, typer.Argument(metavar="REF",
                                    help="name, name@vN, name@latest or name@<digest prefix>.")]


def _service(ctx: typer.Context) -> DataService:
    return client_from(ctx).data


class _Bar:
    """A rich progress bar fed by a source's ``progress(done, total)`` callback."""

    def __init__(self, label: str, *, in_bytes: bool) -> None:
        self._progress = progress(in_bytes=in_bytes)
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> Callable[[int, int | None], None]:
        self._progress.__enter__()

        def update(done: int, total: int | None) -> None:
            self._progress.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)


# --- ingest --------------------------------------------------------------------------------
@app.command("ingest")
def ingest(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset; created on first use.")],
    source: Annotated[str, typer.Argument(
        help="A file, folder, glob or fsspec URL (CSV, Parquet, JSON lines), a SQLAlchemy URL "
             "(with --query) or an http(s) JSON API.")],
    query: Annotated[str | None, typer.Option(help="SQL query, for a database URL.")] = None,
    change_query: Annotated[str | None, typer.Option(
        help="SQL whose result changes when the data does; unchanged means no re-read.")] = None,
    format: Annotated[str | None, typer.Option(help="csv, parquet or jsonl (default: from "
                                                    "the extension).")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter.")] = None,
    records: Annotated[str | None, typer.Option(
        help="API: key path of the records in each response, e.g. data or results.items.")
    ] = None,
    next_key: Annotated[str | None, typer.Option(
        "--next", help="API: key path of the next page's URL, e.g. next or links.next.")] = None,
    page_param: Annotated[str | None, typer.Option(
        help="API: page-number pagination with this query parameter.")] = None,
    description: Annotated[str | None, typer.Option(help="A note on this version.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Read the source even when its fingerprint is unchanged.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Snapshot a source as the next version of a dataset (identical content: same version)."""
    options: dict[str, Any] = {}
    if source.startswith(("http://", "https://")) and not _looks_like_file(source):
        options.update(records=records, next=next_key, page_param=page_param)
    elif query is not None or change_query is not None:
        options.update(query=query, change_query=change_query)
    else:
        options.update(format=format, delimiter=delimiter)
    options = {k: v for k, v in options.items() if v is not None}
    service = _service(ctx)
    before = service.store.find_dataset(name)
    with _Bar("Reading", in_bytes=not query) as bar:
        version = service.ingest(name, source, description=description, force=force,
                                 progress=bar, **options)
    if as_json:
        print_json(version)
        return
    new = before is None or (before.latest_version or 0) < version.version
    if new:
        print_success(f"Ingested {version.ref}: {_count(version.num_rows, 'row')}, "
                      f"{len(version.columns)} columns, {format_size(version.num_bytes)}.")
    else:
        print_note(f"Unchanged: {version.ref} already holds this content.")


def _count(n: int | None, noun: str) -> str:
    n = n or 0
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _looks_like_file(url: str) -> bool:
    tail = url.split("?")[0].lower()
    return tail.endswith((".csv", ".parquet", ".jsonl", ".ndjson", ".tsv", ".csv.gz"))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset; created on first use.")],
    path: Annotated[Path, typer.Argument(help="A file or folder to version as it is.")],
    copy: Annotated[bool, typer.Option(
        "--copy", help="Copy into the artifact store instead of hard-linking.")] = False,
    description: Annotated[str | None, typer.Option(help="A note on this version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Version raw files (images, archives, any format) as they are: hashed once, linked."""
    with _Bar("Hashing", in_bytes=True) as bar:
        version = _service(ctx).add_files(name, path, link="copy" if copy else "auto",
                                          description=description, progress=bar)
    if as_json:
        print_json(version)
        return
    print_success(f"Versioned {version.ref}: {_count(version.num_rows, 'file')}, "
                  f"{format_size(version.num_bytes)}.")


@app.command("status")
def status(
    ctx: typer.Context,
    ref: Ref,
    path: Annotated[Path, typer.Argument(help="The folder or file to compare.")],
    as_json: JsonFlag = False,
) -> None:
    """What changed in PATH since a files version (unchanged files are not re-hashed)."""
    result = _service(ctx).files_status(ref, path)
    if as_json:
        print_json({"clean": result.clean, "added": list(result.added),
                    "removed": list(result.removed), "modified": list(result.modified)})
        return
    if result.clean:
        print_success(f"{path} matches {ref}.")
        return
    out = table(fixed("change"), "path", title=f"{path} against {ref}")
    for label, paths in (("added", result.added), ("modified", result.modified),
                         ("removed", result.removed)):
        for p in paths:
            out.add_row(label, Text(p))
    console.print(out)
    raise typer.Exit(1)


@app.command("checkout")
def checkout(
    ctx: typer.Context,
    ref: Ref,
    dest: Annotated[Path, typer.Argument(help="The folder to restore the files into.")],
    copy: Annotated[bool, typer.Option("--copy", help="Copy instead of hard-linking.")] = False,
) -> None:
    """Restore the files of a files version into DEST."""
    service = _service(ctx)
    version = service.get_version(ref)
    service.checkout_files(version, dest, link="copy" if copy else "auto")
    print_success(f"Restored {plural(version.num_rows or 0, 'file')} of {version.ref} to {dest}.")


# --- reading -------------------------------------------------------------------------------
@app.command("list")
def list_datasets(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List datasets and their newest version."""
    found = _service(ctx).list_datasets()
    if as_json:
        print_json({"datasets": found})
        return
    out = table("name", fixed("latest"), fixed("created (UTC)"), "segments", "description",
                title=plural(len(found), "dataset"))
    for ds in found:
        out.add_row(Text(ds.name), f"v{ds.latest_version}" if ds.latest_version else MISSING,
                    format_time(ds.created_at), Text(", ".join(ds.segments) or MISSING),
                    Text(ds.description or MISSING))
    console.print(out)


@app.command("show")
def show(ctx: typer.Context, ref: Ref, as_json: JsonFlag = False) -> None:
    """A dataset and its versions (NAME), or one version in full (NAME@vN)."""
    service = _service(ctx)
    if "@" not in ref:
        ds = service.get_dataset(ref)
        versions = service.list_versions(ref)
        if as_json:
            print_json({"dataset": ds, "versions": versions})
            return
        _print_dataset(ds, versions)
        return
    version = service.get_version(ref)
    if as_json:
        print_json(version)
        return
    _print_version(version)


def _print_dataset(ds: Dataset, versions: Sequence[DatasetVersion]) -> None:
    items: dict[str, Any] = {"name": ds.name, "created": format_time(ds.created_at),
                             "description": ds.description or MISSING}
    for seg, expr in ds.segments.items():
        items[f"segment {seg}"] = expr
    console.print(key_value_table("dataset", items))
    out = table(fixed("version"), fixed("kind"), fixed("rows"), fixed("size"), fixed("digest"),
                fixed("created (UTC)"), "role", "parents",
                title=plural(len(versions), "version"))
    for v in versions:
        out.add_row(f"v{v.version}", v.kind, _rows(v.num_rows), format_size(v.num_bytes),
                    v.digest[:12], format_time(v.created_at), v.role,
                    Text(", ".join(v.parents) or MISSING))
    console.print(out)


def _rows(n: int | None) -> str:
    return MISSING if n is None else f"{n:,}"


def _print_version(v: DatasetVersion) -> None:
    source = ", ".join(f"{k}={val}" for k, val in v.source.items() if k != "spec")
    console.print(key_value_table(v.ref, {
        "kind": v.kind, "rows": _rows(v.num_rows), "size": format_size(v.num_bytes),
        "digest": v.digest, "created": format_time(v.created_at), "role": v.role,
        "source": source or MISSING, "parents": ", ".join(v.parents) or MISSING,
        "code hash": v.code_hash or MISSING, "run": v.run_id or MISSING,
        "description": v.description or MISSING,
    }))
    if v.columns:
        out = table("column", "type", fixed("nullable"), title=plural(len(v.columns), "column"))
        for c in v.columns:
            out.add_row(Text(c.name), c.type, "yes" if c.nullable else "no")
        console.print(out)


@app.command("profile")
def profile(ctx: typer.Context, ref: Ref, as_json: JsonFlag = False) -> None:
    """Per-column statistics of a version (stored when it was made; no rows are read)."""
    prof = _service(ctx).profile(ref)
    if as_json:
        print_json(prof.to_dict())
        return
    out = table("column", "kind", fixed("nulls"), fixed("distinct"), fixed("min"), fixed("mean"),
                fixed("max"), "top values", title=f"{ref}: {plural(prof.num_rows, 'row')}")
    for col in prof.columns.values():
        top = ", ".join(f"{value} ({count:,})" for value, count in (col.top or [])[:3])
        out.add_row(Text(col.name), col.kind, f"{col.null_count:,}", _num(col.distinct),
                    _num(col.min), _num(col.mean), _num(col.max), Text(top or MISSING))
    console.print(out)


def _num(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return format_number(value)


@app.command("diff")
def diff(ctx: typer.Context, a: Ref, b: Ref, as_json: JsonFlag = False) -> None:
    """Schema and profile differences between two versions."""
    result = _service(ctx).diff(a, b)
    if as_json:
        print_json(result.to_dict())
        return
    if result.same_content:
        print_note(f"{result.a.ref} and {result.b.ref} hold identical content.")
        return
    console.print(key_value_table(f"{result.a.ref} → {result.b.ref}", {
        "rows": f"{_rows(result.a.num_rows)} → {_rows(result.b.num_rows)}",
        "columns added": ", ".join(result.added) or MISSING,
        "columns removed": ", ".join(result.removed) or MISSING,
        "types changed": ", ".join(f"{c} ({ta} → {tb})" for c, ta, tb in result.retyped)
        or MISSING,
    }))
    if result.profile is not None and not result.profile.is_empty:
        out = table("column", "statistic", fixed(result.a.ref), fixed(result.b.ref),
                    fixed("change"), title="profile changes")
        for row in result.profile.changes:
            column, stat, va, vb, delta = (row[k] for k in ("column", "stat", "a", "b", "delta")) \
                if isinstance(row, dict) else row
            out.add_row(Text(str(column)), str(stat), _num(va), _num(vb), _num(delta))
        console.print(out)


# --- validation ----------------------------------------------------------------------------
@app.command("validate")
def validate(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(
        metavar="REF_OR_FILE", help="A dataset version, or a CSV/Parquet/JSON-lines file.")],
    contract: Annotated[str | None, typer.Option(
        help="A contract YAML file, NAME or NAME@contract-vN (default: the dataset's newest).")
    ] = None,
    dataset: Annotated[str | None, typer.Option(
        help="The dataset whose contract and segments apply to a file.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write the report as an HTML page.")
                    ] = None,
    max_examples: Annotated[int, typer.Option(help="Failing rows shown per check.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Validate data against a contract; exits with 1 when a check fails."""
    service = _service(ctx)
    frame: Any = data
    if os.path.exists(data):
        from mlcycle.datasets.sources import FileSource

        frame = FileSource(data).read()
    contract_arg: Any = contract
    if contract and os.path.isfile(contract):
        contract_arg = Path(contract).read_text()
    report = service.validate(frame, contract_arg, dataset=dataset, max_examples=max_examples)
    if html:
        html.write_text(report.to_html())
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
        if html:
            print_note(f"HTML report: {html}")
    if not report.passed:
        raise typer.Exit(1)


def _print_report(report: Any) -> None:
    failed = [c for c in report.checks if not c.passed]
    out = table(fixed(""), "check", "column", fixed("failing rows"), "message",
                title=f"{len(report.checks) - len(failed)} of {plural(len(report.checks), 'check')}"
                      f" passed on {plural(report.num_rows, 'row')}")
    for c in report.checks:
        mark = Text("✓", style="green") if c.passed else Text("✗", style="red")
        out.add_row(mark, c.check, Text(c.column or MISSING),
                    f"{c.failed_rows:,}" if not c.passed else "0", Text(c.message or ""))
    console.print(out)
    segments = getattr(report, "segments", None) or {}
    if segments:
        seg_table = table("segment", fixed("rows"), fixed("failed checks"), title="by segment")
        for name, part in segments.items():
            checks = part.get("checks", []) if isinstance(part, dict) else part.checks
            rows = part.get("rows", 0) if isinstance(part, dict) else part.rows
            bad = sum(1 for c in checks if not (c["passed"] if isinstance(c, dict) else c.passed))
            seg_table.add_row(Text(name), f"{rows:,}", str(bad))
        console.print(seg_table)


@app.command("segments")
def segments(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="NAME=EXPR", help="Add or replace a segment, e.g. --set \"eu=region = "
        "'EU'\".")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="Remove a segment.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show, add or remove the named segments (row slices) of a dataset."""
    service = _service(ctx)
    changes: dict[str, str | None] = {}
    for item in set_ or []:
        seg, sep, expr = item.partition("=")
        if not sep or not seg.strip() or not expr.strip():
            raise InvalidInputError(f"--set: expected NAME=EXPRESSION, got {item!r}",
                                    details={"field": "--set"})
        changes[seg.strip()] = expr.strip()
    for seg in remove or []:
        changes[seg] = None
    ds = service.set_segments(name, changes) if changes else service.get_dataset(name)
    if as_json:
        print_json({"dataset": ds.name, "segments": dict(ds.segments)})
        return
    out = table("segment", "expression", title=f"{ds.name}: {plural(len(ds.segments), 'segment')}")
    for seg, expr in ds.segments.items():
        out.add_row(Text(seg), Text(expr))
    console.print(out)


@app.command("prepare")
def prepare(
    ctx: typer.Context,
    ref: Ref,
    spec: Annotated[Path, typer.Argument(help="The preparation spec (YAML).")],
    output: Annotated[str | None, typer.Option(
        help="Name prefix of the prepared datasets (default: the input's name).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Clean, split and record a version with a preparation spec."""
    if not spec.is_file():
        raise InvalidInputError(f"{spec}: no such file", details={"field": "spec"})
    result = _service(ctx).prepare(ref, spec.read_text(), output=output)
    if as_json:
        print_json({"report": result.prepared.report.to_dict(),
                    "versions": {k: v.ref for k, v in result.versions.items()}})
        return
    console.print(result.prepared.report.summary())
    out = table("output", fixed("version"), fixed("rows"), title="recorded versions")
    for split, v in result.versions.items():
        out.add_row(split, v.ref, _rows(v.num_rows))
    console.print(out)


# --- contracts -----------------------------------------------------------------------------
@contract_app.command("infer")
def contract_infer(
    ctx: typer.Context,
    ref: Ref,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Also write the YAML here.")] = None,
    save: Annotated[bool, typer.Option(help="Store it as the dataset's next contract.")] = True,
) -> None:
    """Infer a contract (types, nulls, ranges, categories, row counts) from a version."""
    contract, stored = _service(ctx).infer_contract(ref, save=save)
    text = contract.to_yaml()
    if output:
        output.write_text(text)
    else:
        typer.echo(text)
    if stored is not None:
        print_note(f"Stored as {stored.ref}; edit the YAML and run "
                   f"`mlcycle data contract set {stored.dataset} FILE` to change it.")


@contract_app.command("show")
def contract_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset.")],
    version: Annotated[int | None, typer.Option(help="Contract version (default: newest).")
                       ] = None,
) -> None:
    """Print a stored contract as YAML."""
    stored = _service(ctx).store.get_contract(name, version)
    typer.echo(stored.body)


@contract_app.command("set")
def contract_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dataset.")],
    file: Annotated[Path, typer.Argument(help="The contract YAML.")],
) -> None:
    """Store an edited contract as the dataset's next contract version (checked first)."""
    if not file.is_file():
        raise InvalidInputError(f"{file}: no such file", details={"field": "file"})
    stored = _service(ctx).save_contract(name, file.read_text())
    print_success(f"Stored {stored.ref}.")


@contract_app.command("list")
def contract_list(ctx: typer.Context, name: Annotated[str, typer.Argument()],
                  as_json: JsonFlag = False) -> None:
    """The contract versions of a dataset."""
    found = _service(ctx).list_contracts(name)
    if as_json:
        print_json({"contracts": [{"ref": c.ref, "version": c.version,
                                   "created_at": c.created_at,
                                   "source_version": c.source_version} for c in found]})
        return
    out = table(fixed("version"), fixed("created (UTC)"), "inferred from",
                title=plural(len(found), "contract"))
    for c in found:
        out.add_row(f"contract-v{c.version}", format_time(c.created_at),
                    c.source_version or MISSING)
    console.print(out)
