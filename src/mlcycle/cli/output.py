"""Rendering for the CLI: rich tables for people, JSON for programs.

Tables and notes go through rich; ``--json`` output is written as plain text so that it is never
wrapped, coloured or highlighted. In JSON, times are ISO 8601 in UTC (``2025-01-31T12:00:00.000Z``)
and non-finite numbers are the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, which plain
JSON cannot express.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.prompt import Confirm
from rich.table import Column, Table
from rich.text import Text

from mlcycle.types import JSONValue, encode_float

__all__ = [
    "MISSING",
    "JsonFlag",
    "confirm",
    "console",
    "err_console",
    "fixed",
    "format_duration",
    "format_number",
    "format_size",
    "format_time",
    "iso_time",
    "jsonable",
    "key_value_table",
    "plural",
    "print_error",
    "print_json",
    "print_note",
    "print_success",
    "progress",
    "short_id",
    "table",
]

#: The `--json` option every read command takes.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

#: What a table shows where a value is absent.
MISSING = "-"

#: Standard output (tables) and standard error (notes, errors, progress). Rich looks up
#: ``sys.stdout``/``sys.stderr`` at each write, so test runners that swap them see the output.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# --- JSON -------------------------------------------------------------------------------------
def jsonable(value: Any) -> JSONValue:
    """*value* as plain JSON types: dataclasses and mappings become objects, sequences arrays,
    enums their value, datetimes ISO 8601 UTC strings, non-finite floats strings.

    >>> jsonable({"loss": float("nan"), "at": datetime(2025, 1, 31, tzinfo=UTC)})
    {'loss': 'NaN', 'at': '2025-01-31T00:00:00.000Z'}
    """
    match value:
        case enum.Enum():
            return jsonable(value.value)
        case None | bool() | int() | str():
            return value
        case float():
            return encode_float(value)
        case datetime():
            return iso_time(value)
        case PurePath():
            return str(value)
        case Mapping():
            return {str(k): jsonable(v) for k, v in value.items()}
        case _ if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        case Sequence() if not isinstance(value, bytes | bytearray):
            return [jsonable(v) for v in value]
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def print_json(value: Any) -> None:
    """Write *value* to standard output as indented JSON (see :func:`jsonable`)."""
    typer.echo(orjson.dumps(jsonable(value), option=orjson.OPT_INDENT_2).decode())


# --- values -----------------------------------------------------------------------------------
def iso_time(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, the resolution of every stored time."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_time(value: datetime | None, *, seconds: bool = True) -> str:
    """A time for a table, in UTC (the column headers say so)."""
    if value is None:
        return MISSING
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_duration(seconds: float | None) -> str:
    """``0.25s``, ``42.0s``, ``3m05s``, ``2h03m``."""
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 1 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_number(value: float | None) -> str:
    """Six significant digits; non-finite values spelt as in the JSON output."""
    if value is None:
        return MISSING
    rendered = encode_float(value)
    return rendered if isinstance(rendered, str) else f"{rendered:.6g}"


def format_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = min(max(size.bit_length() - 1, 0) // 10, len(units) - 1)
    return f"{size} B" if power == 0 else f"{size / 1024**power:.1f} {units[power]}"


def plural(count: int, noun: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def short_id(value: str | None) -> str:
    """The first 8 characters of an id, as tables show it."""
    return value[:8] if value else MISSING


# --- tables -----------------------------------------------------------------------------------
def table(*columns: str | Column, title: str | None = None) -> Table:
    """A table with the house style; add rows of :class:`~rich.text.Text` (never markup).

    A column given by name wraps long values; pass a :func:`fixed` column for short ones that
    must stay on one line (ids, times)."""
    return Table(
        *(c if isinstance(c, Column) else Column(c, overflow="fold") for c in columns),
        title=title, title_justify="left", title_style="bold", header_style="bold",
    )


def fixed(header: str) -> Column:
    """A column kept on one line: when the terminal is too narrow, others wrap first."""
    return Column(header, no_wrap=True, min_width=len(header))


def key_value_table(title: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Table:
    """Two columns, key and value; values that are not strings are shown as compact JSON."""
    out = table("key", "value", title=title)
    pairs = items.items() if isinstance(items, Mapping) else items
    for key, value in pairs:
        out.add_row(Text(str(key)), Text(_cell(value)))
    return out


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_number(value)
    return orjson.dumps(jsonable(value)).decode()


# --- messages ---------------------------------------------------------------------------------
def print_error(headline: str, message: str) -> None:
    """``Error: <headline>: <message>`` on standard error, never wrapped (filter carets line up)."""
    line = Text.assemble(("Error: ", "bold red"), (f"{headline}: ", "bold"), message)
    err_console.print(line, soft_wrap=True)


def print_note(message: str) -> None:
    """A hint on standard error, out of the way of piped output."""
    err_console.print(Text(message, style="dim"), soft_wrap=True)


def print_success(message: str) -> None:
    """What a command changed, on standard output."""
    console.print(Text(message, style="green"), soft_wrap=True)


def confirm(question: str) -> None:
    """Ask *question* on standard error; abort the command (exit 1) unless the answer is yes.

    Standard output stays clean, and an exhausted standard input counts as a no."""
    try:
        agreed = Confirm.ask(question, console=err_console, default=False)
    except EOFError:
        agreed = False
    if not agreed:
        raise typer.Abort()


def progress(*, in_bytes: bool = False) -> Progress:
    """A progress bar on standard error, shown only when that is a terminal.

    ``in_bytes`` counts sizes (advance by bytes) rather than items.

    >>> with progress() as bar:  # doctest: +SKIP
    ...     task = bar.add_task("Deleting", total=len(run_ids))
    """
    count = DownloadColumn() if in_bytes else MofNCompleteColumn()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        count,
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
