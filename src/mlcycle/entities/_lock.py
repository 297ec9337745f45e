"""A named lock held in the metadata store (``ci:<project>`` while ``mlcycle ci run`` runs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Lock"]


@dataclass(frozen=True, slots=True)
class Lock:
    """Who holds lock *name*: an *owner* label, the process (*pid* on *host*) and since when.
    A lock whose process is gone (same host) or that is older than its holder's stale limit
    may be broken (see ``LockStore.acquire``)."""

    name: str
    owner: str
    pid: int
    host: str
    acquired_at: datetime
