"""What every SQL store shares: an engine, and transactions whose driver errors become
``StoreError`` (``retryable`` when the database was busy or the connection dropped: the
transaction was rolled back, so nothing was applied and the caller may try again)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from mlcycle.errors import StoreError
from mlcycle.store.sql.engine import connect, write

__all__ = ["SqlStore"]


class SqlStore:
    """Base of the SQL stores: ``Store(engine)`` or ``Store.from_uri(uri)``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_uri(cls, uri: str) -> Self:
        return cls(connect(uri))

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        try:
            with write(self.engine) as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(
                f"database error: {exc.orig}", retryable=isinstance(exc, OperationalError)
            ) from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc
