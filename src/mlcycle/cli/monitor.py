"""``mlcycle monitor ...``: monitors of deployments: define, run, list, report, alerts.

``--since`` / ``--until`` take an ISO 8601 time (``2026-11-27``, ``2026-11-27T12:00Z``; UTC
when no zone is given) or a duration back from now (``6h``, ``2d``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from mlcycle.cli.context import client_from
from mlcycle.cli.output import (
    MISSING,
    JsonFlag,
    console,
    format_number,
    format_time,
    print_json,
    print_note,
    print_success,
    table,
)
from mlcycle.entities import Alert, Monitor
from mlcycle.errors import InvalidInputError

if TYPE_CHECKING:  # monitoring loads polars and DuckDB: only for the command that runs
    from mlcycle.monitoring.service import MonitorRun, MonitorService

__all__ = ["app"]

app = typer.Typer(
    name="monitor",
    help="Monitors of deployments: drift, quality from feedback, latency and errors over the "
         "prediction logs; results over time, alerts, HTML reports.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The monitor.")]
Since = Annotated[str | None, typer.Option(
    "--since", metavar="TIME", help="From: ISO 8601 (UTC by default) or a duration ago (6h).")]
Until = Annotated[str | None, typer.Option(
    "--until", metavar="TIME", help="Until: ISO 8601 (UTC by default) or a duration ago.")]

_STYLE = {"ok": "green", "warning": "yellow", "alert": "bold red", "no_data": "dim"}


def _service(ctx: typer.Context) -> MonitorService:
    return client_from(ctx).monitors


def _time(value: str | None, field: str) -> datetime | None:
    from mlcycle.monitoring.config import parse_duration

    if value is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value, field))
    except InvalidInputError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{field}: expected an ISO 8601 time (2026-11-27T12:00Z) or a duration (6h), "
            f"got {value!r}", details={"field": field}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _status(status: str | None) -> Text:
    return Text(status or MISSING, style=_STYLE.get(status or "", ""))


# --- defining -------------------------------------------------------------------------------
@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="The deployment.")],
    config_file: Annotated[Path | None, typer.Option(
        "--config", "-c", exists=True, dir_okay=False, metavar="FILE",
        help="A YAML monitor spec (checks, window, interval, segments, thresholds, webhook).")
    ] = None,
    json_: JsonFlag = False,
) -> None:
    """Create monitor NAME of a deployment."""
    from mlcycle.monitoring.config import MonitorSpec

    spec = MonitorSpec.from_yaml(config_file.read_text(), source=config_file.name) \
        if config_file is not None else None
    monitor = _service(ctx).create(name, deployment, spec)
    if json_:
        print_json(monitor)
        return
    print_success(f"Created monitor {monitor.name} of {monitor.deployment}: "
                  f"{', '.join(monitor.checks)} over {monitor.window_s}s, every "
                  f"{monitor.interval_s}s.")


@app.command("delete")
def delete(ctx: typer.Context, name: Name) -> None:
    """Delete a monitor with its results and alerts."""
    _service(ctx).delete(name)
    print_success(f"Deleted monitor {name}.")


@app.command("pause")
def pause(ctx: typer.Context, name: Name) -> None:
    """Stop the server's scheduler from running a monitor."""
    _service(ctx).pause(name)
    print_success(f"Paused monitor {name}.")


@app.command("resume")
def resume(ctx: typer.Context, name: Name) -> None:
    """Let the server's scheduler run a monitor again."""
    _service(ctx).resume(name)
    print_success(f"Resumed monitor {name}.")


# --- reading --------------------------------------------------------------------------------
@app.command("list")
def list_(ctx: typer.Context,
          deployment: Annotated[str | None, typer.Option("--deployment", "-d")] = None,
          json_: JsonFlag = False) -> None:
    """Monitors, with their last status."""
    monitors = _service(ctx).list(deployment)
    if json_:
        print_json(monitors)
        return
    if not monitors:
        print_note("No monitors.")
        return
    out = table("monitor", "deployment", "checks", "window", "interval", "enabled",
                "last run (UTC)", "status")
    for m in monitors:
        out.add_row(m.name, m.deployment, ", ".join(m.checks), f"{m.window_s}s",
                    f"{m.interval_s}s", "yes" if m.enabled else "no",
                    format_time(m.last_run_at), _status(m.status))
    console.print(out)


@app.command("run")
def run(ctx: typer.Context, name: Name, since: Since = None, until: Until = None,
        json_: JsonFlag = False) -> None:
    """Run a monitor now and store its result (over its window, or --since/--until)."""
    from mlcycle.monitoring.logs import LogWindow

    service = _service(ctx)
    start, end = _time(since, "since"), _time(until, "until")
    window = LogWindow(since=start, until=end or datetime.now(UTC)) \
        if start is not None or end is not None else None
    done = service.run(name, window=window)
    if json_:
        print_json({"result": done.result, "alert": done.alert})
        return
    _print_run(service.get(name), done)


def _print_run(monitor: Monitor, done: MonitorRun) -> None:
    r = done.result
    console.print(Text.assemble(f"{monitor.name} ({monitor.deployment}): ",
                                _status(r.status), f"  {r.details.get('rows', 0)} rows, "
                                f"{format_time(r.window_start)} → {format_time(r.window_end)}"))
    checks: dict[str, Any] = r.details.get("checks") or {}  # type: ignore[assignment]
    out = table("check", "status", "why")
    for check, info in checks.items():
        why = "; ".join(info.get("reasons", [])) or info.get("error", "") or "within thresholds"
        out.add_row(check, _status(info.get("status")), Text(why))  # Text: "[eu]" is no markup
    console.print(out)
    metrics = table("metric", "value", title="Metrics")
    for key, value in sorted(r.metrics.items()):
        metrics.add_row(Text(key), format_number(value))
    console.print(metrics)
    if done.alert is not None:
        _print_alerts([done.alert])


@app.command("results")
def results(ctx: typer.Context, name: Name, since: Since = None, until: Until = None,
            limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
            json_: JsonFlag = False) -> None:
    """Stored results of a monitor, newest first."""
    found = _service(ctx).results(name, since=_time(since, "since"),
                                  until=_time(until, "until"), max_results=limit)
    if json_:
        print_json(found)
        return
    out = table("run (UTC)", "status", "rows", "drift share", "quality", "p95 ms",
                "error rate")
    for r in found:
        quality = next((v for k, v in r.metrics.items() if k in (
            "performance.accuracy", "performance.rmse")), None)
        out.add_row(format_time(r.run_at), _status(r.status), str(r.details.get("rows", "")),
                    format_number(r.metrics.get("drift.share")), format_number(quality),
                    format_number(r.metrics.get("operations.latency_p95_ms")),
                    format_number(r.metrics.get("operations.error_rate")))
    console.print(out)


@app.command("alerts")
def alerts(ctx: typer.Context, name: Name,
           limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
           json_: JsonFlag = False) -> None:
    """Alerts a monitor fired, newest first."""
    found = _service(ctx).alerts(name, limit)
    if json_:
        print_json(found)
        return
    if not found:
        print_note(f"No alerts for {name}.")
        return
    _print_alerts(found)


def _print_alerts(found: list[Alert]) -> None:
    out = table("time (UTC)", "change", "message", "webhook", title="Alerts")
    for a in found:
        out.add_row(format_time(a.time), Text.assemble(f"{a.previous or 'new'} → ",
                                                       _status(a.status)),
                    Text(a.message), Text(a.delivery or MISSING))
    console.print(out)


@app.command("report")
def report(
    ctx: typer.Context,
    name: Name,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", dir_okay=False, help="Write a self-contained HTML report.")
    ] = None,
    since: Since = None,
    until: Until = None,
    bucket: Annotated[str | None, typer.Option(
        "--bucket", help="Time buckets: minute, hour, day or 15m, 6h, ...")] = None,
    json_: JsonFlag = False,
) -> None:
    """The monitor's checks over a window (not stored); --html writes the report with plots."""
    from mlcycle.monitoring.logs import LogWindow
    from mlcycle.monitoring.service import MonitorRun

    service = _service(ctx)
    start, end = _time(since, "since"), _time(until, "until")
    if html is not None:
        from mlcycle.monitoring.report import render_report

        html.write_text(render_report(service, name, since=start, until=end, bucket=bucket),
                        encoding="utf-8")
        print_success(f"Wrote {html}.")
        return
    monitor = service.get(name)
    end = end or datetime.now(UTC)
    window = LogWindow(since=start or end - timedelta(seconds=monitor.window_s), until=end)
    result, performance, drift = service.evaluate(monitor, window, bucket=bucket)
    if json_:
        print_json({"status": result.status, "metrics": dict(result.metrics),
                    "checks": result.details.get("checks"),
                    "performance": performance.to_dict(),
                    "drift": drift.to_dict() if drift is not None else None})
        return
    _print_run(monitor, MonitorRun(result, None, performance, drift))
    if drift is not None:
        from mlcycle.monitoring.drift import render_drift_table

        console.print(render_drift_table(drift))
