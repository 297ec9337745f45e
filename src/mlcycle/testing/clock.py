"""``FakeClock``: time that moves only when something sleeps, so tests of retries, backoff
and timeouts never wait."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for ``PipelineRunner(..., clock=FakeClock())``: ``sleep`` records how long it
    was asked to wait and moves ``monotonic()`` on by that much, at once."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
