"""The monitoring pages: monitors, and one monitor's results drawn over time (drift per
feature, quality per segment, latency, throughput and errors) with its alerts.

A result's ``metrics`` are flat time series named ``<group>.<metric>`` with an optional
``[segment]`` (``drift.score.age``, ``performance.accuracy[eu]``,
``operations.latency_p95_ms``); each chart gathers the series of one metric, a line per
feature or per segment.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from mlcycle.entities import MonitorResult
from mlcycle.server.deps import Monitors
from mlcycle.server.ui._app import PageRoute, render
from mlcycle.server.ui._session import check_access

__all__ = ["router"]

#: Results drawn: the newest ones.
RESULTS = 500
ALERTS = 50
_SEGMENT = re.compile(r"^(?P<base>.*?)\[(?P<segment>.*)\]$")


async def _viewer(request: Request) -> None:
    check_access(request)


router = APIRouter(route_class=PageRoute, include_in_schema=False,
                   dependencies=[Depends(_viewer)])


@router.get("/monitors")
def monitors(request: Request, store: Monitors) -> HTMLResponse:
    return render(request, "monitors.html", title="Monitors", monitors=store.list_monitors())


@router.get("/monitors/{name}")
def monitor(request: Request, store: Monitors, name: str) -> HTMLResponse:
    found = store.get_monitor(name)
    results = list(reversed(store.list_results(name, max_results=RESULTS)))  # oldest first
    return render(request, "monitor.html", title=name, monitor=found, results=results[::-1],
                  charts=series_charts(results), alerts=store.list_alerts(name,
                                                                          max_results=ALERTS))


def series_charts(results: list[MonitorResult]) -> list[dict[str, Any]]:
    """One chart per metric, a line per feature (drift) or per segment (``overall`` for the
    unsegmented value), points at each result's window end."""
    charts: dict[str, dict[str, list[tuple[str, float | None]]]] = defaultdict(
        lambda: defaultdict(list))
    for result in results:
        when = result.window_end.isoformat()
        for key, value in result.metrics.items():
            title, line = _split(key)
            charts[title][line].append((when, value if math.isfinite(value) else None))
    return [
        {"title": title, "lines": [{"name": line, "x": [t for t, _ in points],
                                    "y": [v for _, v in points]}
                                   for line, points in sorted(lines.items())]}
        for title, lines in sorted(charts.items(), key=lambda item: _order(item[0]))
    ]


def _split(key: str) -> tuple[str, str]:
    """``drift.score.age`` -> (``drift.score``, ``age``); ``performance.accuracy[eu]`` ->
    (``performance.accuracy``, ``eu``); ``operations.error_rate`` -> (itself, ``overall``)."""
    if key.startswith("drift."):
        title, _, feature = key.rpartition(".")
        return (title, feature) if title != "drift" else (key, "overall")
    match = _SEGMENT.match(key)
    if match:
        return match["base"], match["segment"]
    return key, "overall"


def _order(title: str) -> tuple[int, str]:
    groups = ("drift", "performance", "operations")
    head = title.partition(".")[0]
    return (groups.index(head) if head in groups else len(groups), title)
