"""``SqlLockStore``: named locks as rows whose primary key is the name (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from mlcycle.entities import Lock, to_ms
from mlcycle.errors import StoreError
from mlcycle.store.base import LockStore
from mlcycle.store.sql import tables as t
from mlcycle.store.sql.base import SqlStore

__all__ = ["SqlLockStore"]


class SqlLockStore(SqlStore, LockStore):
    def acquire_lock(self, lock: Lock) -> Lock:
        # A taken name: report who holds it. Twice at most: a holder that released between
        # our insert and our read is gone.
        for _ in range(2):
            try:
                with self._write() as conn:
                    conn.execute(insert(t.locks).values(
                        name=lock.name, owner=lock.owner, pid=lock.pid, host=lock.host,
                        acquired_at=to_ms(lock.acquired_at)))
                return lock
            except StoreError as exc:
                if not isinstance(exc.__cause__, IntegrityError):
                    raise
                held = self.find_lock(lock.name)
                if held is not None:
                    return held
        return self.find_lock(lock.name) or lock

    def find_lock(self, name: str) -> Lock | None:
        with self._read() as conn:
            row = conn.execute(select(t.locks).where(t.locks.c.name == name)).first()
        return None if row is None else _lock(row)

    def break_lock(self, held: Lock) -> bool:
        c = t.locks.c
        with self._write() as conn:
            result = conn.execute(delete(t.locks).where(
                c.name == held.name, c.owner == held.owner, c.pid == held.pid,
                c.host == held.host, c.acquired_at == to_ms(held.acquired_at)))
        return bool(result.rowcount)


def _lock(row: Any) -> Lock:
    return Lock(name=row.name, owner=row.owner, pid=row.pid, host=row.host,
                acquired_at=datetime.fromtimestamp(row.acquired_at / 1000, UTC))
