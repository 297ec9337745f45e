"""Engines and schema migrations.

SQLite is tuned for many writers: WAL journal, ``synchronous=NORMAL`` (a commit survives a killed
process; a power cut may lose the last commits), a long busy timeout, and ``BEGIN IMMEDIATE`` for
write transactions so two writers queue on the lock instead of failing on a stale snapshot.

Migrations run on first use. Concurrent first use is serialised: a file lock beside a SQLite
database, an advisory lock on PostgreSQL; whoever gets the lock second finds the schema current.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from mlcycle.errors import StoreError

__all__ = ["SCHEMA_REVISION", "connect", "migrate", "write"]

#: The newest Alembic revision; a test checks it matches the migrations folder.
SCHEMA_REVISION = "0008"

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 7_260_114_020


def connect(uri: str, *, migrate_schema: bool = True, **engine_kwargs: Any) -> Engine:
    """An engine for *uri*, its schema migrated to the newest revision."""
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(uri, **engine_kwargs)
    else:
        if url.drivername == "postgresql":  # the driver mlcycle installs, not psycopg2
            url = url.set(drivername="postgresql+psycopg")
        engine_kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **engine_kwargs)
    if migrate_schema:
        migrate(engine)
    return engine


def _sqlite_engine(uri: str, **engine_kwargs: Any) -> Engine:
    url = make_url(uri)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(uri, connect_args={"timeout": 60, "check_same_thread": False},
                           **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN IMMEDIATE can be issued.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA case_sensitive_like = ON")  # LIKE as in PostgreSQL; ILIKE ignores case
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("mlcycle_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextlib.contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
    with engine.connect().execution_options(mlcycle_write=True) as conn, conn.begin():
        yield conn


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # table missing: a fresh database
            return None


def migrate(engine: Engine) -> None:
    """Bring the schema to ``SCHEMA_REVISION``; safe when several processes call it at once."""
    if current_revision(engine) == SCHEMA_REVISION:
        return
    with _migration_lock(engine):
        if current_revision(engine) == SCHEMA_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with write(engine) if engine.dialect.name == "sqlite" else engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except Exception as exc:
            raise StoreError(f"could not migrate the metadata store: {exc}") from exc


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = database + ".migrate-lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_LOCK_ID})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
                conn.commit()
    else:
        yield
