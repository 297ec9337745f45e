"""Metadata in SQL through SQLAlchemy: SQLite (embedded default, WAL) or PostgreSQL."""

from mlcycle.store.sql.engine import connect, migrate
from mlcycle.store.sql.tracking import SqlTrackingStore

__all__ = ["SqlTrackingStore", "connect", "migrate"]
