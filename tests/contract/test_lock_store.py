"""Named locks (``SqlLockStore``) on SQLite and PostgreSQL: one holder per name, even when many
processes ask at the same moment; a break or release removes only the holding it names."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlcycle.entities import Lock
from mlcycle.store.sql import connect
from mlcycle.store.sql.locks import SqlLockStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLockStore]:
    uri = (f"sqlite:///{tmp_path / 'locks.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_uri"))
    engine = connect(uri)
    yield SqlLockStore(engine)
    engine.dispose()


def _lock(name: str, owner: str, pid: int = 1) -> Lock:
    return Lock(name, owner, pid, "host", datetime.now(UTC).replace(microsecond=0))


def test_one_holder_per_name(store: SqlLockStore) -> None:
    first, second = _lock("ci:a", "first"), _lock("ci:a", "second", 2)
    assert store.acquire_lock(first) == first
    assert store.acquire_lock(second) == first  # refused: told who holds it
    assert store.acquire_lock(_lock("ci:b", "other")).owner == "other"  # another name is free
    assert store.find_lock("ci:a") == first


def test_break_removes_only_the_holding_it_was_shown(store: SqlLockStore) -> None:
    first = _lock("ci:a", "first")
    store.acquire_lock(first)
    assert store.break_lock(_lock("ci:a", "someone else", 9)) is False
    assert store.find_lock("ci:a") == first
    assert store.release_lock(first) is True
    assert store.find_lock("ci:a") is None
    assert store.release_lock(first) is False


def test_concurrent_acquirers_get_exactly_one_lock(store: SqlLockStore) -> None:
    start = threading.Barrier(8)
    won: list[str] = []

    def attempt(i: int) -> None:
        mine = _lock("ci:race", f"worker-{i}", i)
        start.wait()
        if store.acquire_lock(mine) == mine:
            won.append(mine.owner)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1
    held = store.find_lock("ci:race")
    assert held is not None and held.owner == won[0]
