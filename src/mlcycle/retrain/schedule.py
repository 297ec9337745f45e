"""Cron schedules of triggers: when the last scheduled time came, checked once at creation.

A schedule trigger is due when the newest cron time at or before *now* is later than the
scheduled time of its last run (or than its creation): a scheduler that was down for a day
fires once for the newest missed time, not once per missed time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlcycle.errors import InvalidInputError

__all__ = ["check_cron", "last_fire_time"]


def check_cron(expr: str) -> str:
    """*expr* if croniter reads it as a five-field cron expression."""
    from croniter import croniter

    if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise InvalidInputError(
            f"schedule: expected a cron expression of five fields (minute hour day month "
            f"weekday, e.g. '0 3 * * *'), got {expr!r}", details={"field": "schedule"})
    return expr


def last_fire_time(expr: str, now: datetime) -> datetime:
    """The newest time at or before *now* that *expr* names, in UTC."""
    from croniter import croniter

    now = now.astimezone(UTC)
    if croniter.match(expr, now.replace(second=0, microsecond=0)):
        return now.replace(second=0, microsecond=0)
    previous = croniter(expr, now).get_prev(datetime)
    assert isinstance(previous, datetime)
    return previous.astimezone(UTC)
