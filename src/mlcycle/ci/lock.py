"""The project lock: one ``ci run`` of a project at a time, held in the metadata store so that
runs on different machines that share the store exclude each other too.

A lock is stale when its process is gone (same host: no such pid) or when it is older than
``stale_after_s`` (another host: its process cannot be asked). A stale lock is broken and taken
with a note; ``force`` breaks a live one (after a CI machine was lost, say).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from mlcycle.entities import Lock
from mlcycle.errors import LockHeld
from mlcycle.store.base import LockStore

__all__ = ["DEFAULT_STALE_AFTER_S", "hold", "is_stale"]

logger = logging.getLogger("mlcycle.ci")

#: A ci run of another host older than this is taken to be dead.
DEFAULT_STALE_AFTER_S = 6 * 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, someone else's
        return True
    return True


def is_stale(lock: Lock, *, now: datetime, stale_after_s: float,
             host: str | None = None) -> str | None:
    """Why *lock* may be broken, or None while its holder may still be running."""
    if lock.host == (host or socket.gethostname()) and not _alive(lock.pid):
        return f"its process {lock.pid} on {lock.host} is gone"
    age = (now - lock.acquired_at).total_seconds()
    if age > stale_after_s:
        return f"it is {age:.0f} s old (stale after {stale_after_s:.0f} s)"
    return None


@contextmanager
def hold(store: LockStore, name: str, *, owner: str, force: bool = False,
         stale_after_s: float = DEFAULT_STALE_AFTER_S,
         clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Iterator[Lock]:
    """Hold lock *name* for the ``with`` block, or raise :class:`LockHeld` naming its holder."""
    at = clock()
    now = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the store keeps ms
    mine = Lock(name=name, owner=owner, pid=os.getpid(), host=socket.gethostname(),
                acquired_at=now)
    held = store.acquire_lock(mine)
    if held != mine:
        why = "--force" if force else is_stale(held, now=now, stale_after_s=stale_after_s)
        if why is None:
            raise LockHeld(
                f"another ci run holds {name!r}: {held.owner} (pid {held.pid} on {held.host}) "
                f"since {held.acquired_at:%Y-%m-%d %H:%M:%S} UTC. Wait for it to end, or, if "
                "it died, run again with --force",
                details={"lock": name, "owner": held.owner, "pid": held.pid, "host": held.host,
                         "acquired_at": held.acquired_at.isoformat()})
        logger.warning("breaking lock %s of %s (pid %s on %s): %s", name, held.owner, held.pid,
                       held.host, why)
        store.break_lock(held)
        held = store.acquire_lock(mine)
        if held != mine:
            raise LockHeld(f"another ci run took {name!r} while its stale lock was broken: "
                           f"{held.owner} (pid {held.pid} on {held.host})",
                           details={"lock": name, "owner": held.owner})
    try:
        yield mine
    finally:
        store.release_lock(mine)
