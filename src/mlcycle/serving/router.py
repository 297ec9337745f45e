"""Which model version answers a request: the routing table of a deployment.

A :class:`RoutingTable` is immutable; a worker builds a new one for every deployment revision
and swaps it in one assignment, so a request keeps the versions it was routed to even if the
table changes while it runs.

- canary: ``canary_percent`` of requests go to the candidate, at random, or — with a
  ``sticky_key`` — by a stable hash of that key's value (a request header of that name, else
  the first row of the input column of that name), so one user keeps one version across
  requests and across workers.
- shadow: ``shadow_percent`` of requests are also sent to the candidate; its answer is logged
  and compared, never returned.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcycle.serving.served import ServedVersion

__all__ = ["Route", "RoutingTable", "sticky_bucket"]


@dataclass(frozen=True, slots=True)
class Route:
    """``primary`` answers (as ``role`` stable or candidate); ``shadow`` gets a copy."""

    primary: ServedVersion
    role: str
    shadow: ServedVersion | None = None


def sticky_bucket(value: Any) -> float:
    """A number in [0, 100) fixed by *value*: the same in every process (unlike ``hash``)."""
    return zlib.crc32(str(value).encode()) % 10_000 / 100


@dataclass(frozen=True, slots=True)
class RoutingTable:
    stable: ServedVersion
    candidate: ServedVersion | None = None
    canary_percent: float = 0.0
    shadow_percent: float = 0.0
    sticky_key: str | None = None
    revision: int = 0
    _stable_route: Route = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_stable_route", Route(self.stable, "stable"))

    @property
    def versions(self) -> list[str]:
        """The versions that answer or shadow, stable first."""
        return [self.stable.version] + ([self.candidate.version] if self.candidate else [])

    def route(self, headers: Mapping[str, str], data: Any) -> Route:
        candidate = self.candidate
        if candidate is None:
            return self._stable_route
        if self.canary_percent > 0:
            if self._draw(headers, data) < self.canary_percent:
                return Route(candidate, "candidate")
        elif self.shadow_percent > 0 and random.random() * 100 < self.shadow_percent:
            return Route(self.stable, "stable", shadow=candidate)
        return self._stable_route

    def _draw(self, headers: Mapping[str, str], data: Any) -> float:
        key = self.sticky_key
        if key:
            value = headers.get(key)
            if value is None and isinstance(data, Mapping):
                column = data.get(key)
                value = column[0] if isinstance(column, list) and column else None
            if value is not None:
                return sticky_bucket(value)
        return random.random() * 100
