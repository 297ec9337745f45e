"""``mlcycle models ...``: list, inspect, alias, archive and compare registered models, and read
their history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    format_time,
    key_value_table,
    plural,
    print_json,
    print_note,
    print_success,
    short_id,
    table,
)
from mlcycle.entities import ModelEvent, ModelVersion, RegisteredModel
from mlcycle.errors import InvalidInputError
from mlcycle.registry.service import ModelVersionDiff, RegistryService, parse_model_uri

__all__ = ["app"]

app = typer.Typer(
    name="models",
    help="The model registry: versions, aliases, lineage and history.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")]
Version = Annotated[int, typer.Argument(metavar="VERSION", min=1, help="A version number.")]
Ref = Annotated[str, typer.Argument(
    metavar="REF",
    help="models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest (the models:/ "
         "prefix may be left out).")]


def _service(ctx: typer.Context) -> RegistryService:
    return client_from(ctx).registry


# --- reading -------------------------------------------------------------------------------
@app.command("list")
def list_models(
    ctx: typer.Context,
    name_contains: Annotated[str | None, typer.Option(
        "--name-contains", "-n", help="Only models whose name holds this (case ignored).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List registered models, their newest version and aliases."""
    found = _service(ctx).list_models(name_contains=name_contains)
    if as_json:
        print_json({"models": found})
        return
    out = table("name", fixed("latest"), "aliases", fixed("updated (UTC)"), "description",
                title=plural(len(found), "model"))
    for m in found:
        out.add_row(Text(m.name), f"v{m.latest_version}" if m.latest_version else MISSING,
                    Text(_aliases(m.aliases)), format_time(m.updated_at),
                    Text(m.description or MISSING))
    console.print(out)


def _aliases(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items())) or MISSING


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(
        metavar="REF", help="NAME for the model and its versions; NAME/VERSION, NAME@ALIAS or "
                            "a models:/ URI for one version in full.")],
    archived: Annotated[bool, typer.Option(
        "--archived/--no-archived", help="List archived versions too.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """A model and its versions (NAME), or one version with its lineage (NAME/3, NAME@alias)."""
    service = _service(ctx)
    target = parse_model_uri(ref)
    bare = ref.strip().removeprefix("models:/") == target.name
    if bare:
        model = service.get_model(target.name)
        versions = service.list_versions(target.name, include_archived=archived)
        if as_json:
            print_json({"model": model, "versions": versions})
            return
        _print_model(model, versions)
        return
    version = service.resolve(ref)
    if as_json:
        print_json(version)
        return
    _print_version(version)


def _print_model(m: RegisteredModel, versions: Sequence[ModelVersion]) -> None:
    items: dict[str, Any] = {
        "name": m.name, "created": f"{format_time(m.created_at)} by {m.created_by or MISSING}",
        "updated": format_time(m.updated_at), "aliases": _aliases(m.aliases),
        "description": m.description or MISSING,
    }
    items.update({f"tag {k}": v for k, v in m.tags.items()})
    console.print(key_value_table(f"model {m.name}", items))
    out = table(fixed("version"), fixed("status"), "aliases", "source", "flavor",
                fixed("created (UTC)"), title=plural(len(versions), "version"))
    for v in versions:
        out.add_row(f"v{v.version}", v.status, Text(", ".join(v.aliases) or MISSING),
                    Text(_short_source(v.source)), Text(v.flavor or MISSING),
                    format_time(v.created_at))
    console.print(out)


def _short_source(source: str) -> str:
    """``runs:/4f2a91c0…/model`` as ``runs:/4f2a91c0/model``: the run's short id, as tables
    show it."""
    if source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        return f"runs:/{short_id(run_id)}/{path}" if path else f"runs:/{short_id(run_id)}"
    return source


def _print_version(v: ModelVersion) -> None:
    console.print(key_value_table(f"{v.uri}", {
        "status": v.status,
        "aliases": ", ".join(v.aliases) or MISSING,
        "source": v.source,
        "flavor": v.flavor or MISSING,
        "manifest digest": v.manifest_digest or MISSING,
        "created": f"{format_time(v.created_at)} by {v.created_by or MISSING}",
        "run": v.run_id or MISSING,
        "code commit": v.code_commit or MISSING,
        "datasets": ", ".join(f"{d.dataset}@{d.version}" for d in v.datasets) or MISSING,
        "contract": v.contract or MISSING,
        "description": v.description or MISSING,
        **{f"tag {k}": val for k, val in v.tags.items()},
    }))
    if v.signature:
        console.print(key_value_table("signature", v.signature))
    if v.evaluation:
        console.print(key_value_table("evaluation", v.evaluation))


# --- changing ------------------------------------------------------------------------------
@app.command("alias")
def alias(ctx: typer.Context, name: Name,
          alias_: Annotated[str, typer.Argument(metavar="ALIAS",
                                                help="e.g. production, staging, champion.")],
          version: Version, as_json: JsonFlag = False) -> None:
    """Point ALIAS at VERSION of NAME, moving it from wherever it pointed (one event)."""
    service = _service(ctx)
    before = service.get_model(name).aliases.get(alias_)
    updated = service.set_alias(name, alias_, version)
    if as_json:
        print_json(updated)
        return
    if before == version:
        print_note(f"{alias_} points at {name} v{version} already.")
    elif before is None:
        print_success(f"{alias_} now points at {name} v{version}.")
    else:
        print_success(f"{alias_} moved from {name} v{before} to v{version}.")


@app.command("unalias")
def unalias(ctx: typer.Context, name: Name,
            alias_: Annotated[str, typer.Argument(metavar="ALIAS", help="The alias to remove.")]
            ) -> None:
    """Remove an alias."""
    version = _service(ctx).delete_alias(name, alias_)
    print_success(f"Removed {alias_} (it pointed at {name} v{version}).")


@app.command("archive")
def archive(ctx: typer.Context, name: Name, version: Version) -> None:
    """Retire a version: no longer latest, takes no alias, still loadable by number."""
    _service(ctx).archive(name, version)
    print_success(f"Archived {name} v{version}.")


@app.command("restore")
def restore(ctx: typer.Context, name: Name, version: Version) -> None:
    """Bring an archived version back."""
    _service(ctx).restore(name, version)
    print_success(f"Restored {name} v{version}.")


# --- comparing and history ----------------------------------------------------------------
@app.command("diff")
def diff(ctx: typer.Context, a: Ref, b: Ref, as_json: JsonFlag = False) -> None:
    """What differs between two versions: params and metrics of their runs, signature,
    lineage and evaluation results."""
    result = _service(ctx).diff(a, b)
    if as_json:
        print_json(result.to_dict())
        return
    if result.identical:
        print_note(f"{result.a.uri} and {result.b.uri} do not differ.")
        return
    _print_diff(result)


def _print_diff(d: ModelVersionDiff) -> None:
    a, b = f"v{d.a.version}", f"v{d.b.version}"
    title = f"{d.a.uri} → {d.b.uri}"
    out = table("section", "key", a, b, fixed("change"), title=title)
    for key, (va, vb) in d.lineage.items():
        out.add_row("lineage", Text(key), Text(_value(va)), Text(_value(vb)), "")
    for key, (pa, pb) in d.params.items():
        out.add_row("param", Text(key), Text(_value(pa)), Text(_value(pb)), "")
    for key, (ma, mb) in d.metrics.items():
        change = format_number(mb - ma) if ma is not None and mb is not None else ""
        out.add_row("metric", Text(key), format_number(ma), format_number(mb), change)
    for section, values in (("signature", d.signature), ("evaluation", d.evaluation)):
        for key, (va, vb) in values.items():
            out.add_row(section, Text(key), Text(_value(va)), Text(_value(vb)), "")
    console.print(out)
    if d.missing_runs:
        print_note(f"Runs not found, so not compared: {', '.join(d.missing_runs)}")


def _value(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or MISSING
    return str(value)


@app.command("events")
def events(
    ctx: typer.Context,
    name: Name,
    version: Annotated[int | None, typer.Option(
        "--version", "-v", min=1, help="Only the events of this version.")] = None,
    max_results: Annotated[int, typer.Option(
        "--max", "-n", min=1, max=10_000, help="How many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The history of a model: every change (and refused change), who made it and when."""
    found = _service(ctx).events(name, version=version, max_results=max_results)
    if as_json:
        print_json({"events": found})
        return
    out = table(fixed("time (UTC)"), fixed("event"), fixed("version"), "alias", "by", "details",
                title=f"{name}: {plural(len(found), 'event')}")
    for e in found:
        out.add_row(format_time(e.at), e.kind, f"v{e.version}" if e.version else MISSING,
                    Text(e.alias or MISSING), Text(e.actor or MISSING), Text(_details(e)))
    console.print(out)


def _details(e: ModelEvent) -> str:
    d = dict(e.details)
    if e.kind == "rejected":
        return f"{d.get('operation', '?')}: {d.get('message', '')}"
    if e.kind == "alias_set":
        prev = d.get("previous")
        return f"moved from v{prev}" if prev is not None else "new"
    fields = d.get("fields")
    if isinstance(fields, list):
        return "changed " + ", ".join(str(f) for f in fields)
    if e.kind == "version_created":
        return _short_source(str(d.get("source", "")))
    return ""


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(metavar="MODEL_URI",
                                       help="models:/name/3, models:/name@alias or runs:/…")],
    data: Annotated[str, typer.Option(help="The holdout: a dataset version, e.g. cancer.test")],
    target: Annotated[str, typer.Option(help="The label column.")],
    gates: Annotated[Path | None, typer.Option(help="A gates YAML file.")] = None,
    baseline: Annotated[str, typer.Option(help="Compare with the version under this alias.")
                        ] = "production",
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a model on a dataset version (per segment, against the baseline alias) and check
    its gates; the result is stored on the model version. Exits with 1 when a gate fails."""
    text = None
    if gates is not None:
        if not gates.is_file():
            raise InvalidInputError(f"{gates}: no such file", details={"field": "gates"})
        text = gates.read_text()
    result, report = client_from(ctx).evaluate_model(uri, data, target=target, gates=text,
                                                     baseline=baseline)
    if as_json:
        print_json({"result": result.to_dict(),
                    "gates": report.to_dict() if report is not None else None})
    else:
        out = table("metric", fixed("value"), fixed(result.baseline_name or "baseline"),
                    fixed("change"), title=f"{uri} on {data}: {plural(result.rows, 'row')}")
        deltas = result.deltas
        for key, value in result.metrics.items():
            base = (result.baseline_metrics or {}).get(key)
            out.add_row(key, format_number(value), format_number(base),
                        format_number(deltas.get(key)) if key in deltas else MISSING)
        console.print(out)
        if report is not None:
            console.print(report.summary())
    if report is not None and not report.passed:
        raise typer.Exit(1)
