"""Shared fixtures: an isolated environment per test, PostgreSQL databases, and the ``backend``
fixture that runs one suite against every kind of store (SQLite, PostgreSQL, a live server)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import mlcycle as mc
from mlcycle.config import Settings

PG_ENV = "MLCYCLE_TEST_POSTGRES_URI"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts in its own folder with no MLCYCLE_* settings leaking in."""
    for name in list(os.environ):
        if name.startswith("MLCYCLE_") and name != PG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLCYCLE_HOME", str(tmp_path / ".mlcycle"))
    mc.set_tracking_uri(None)
    yield
    mc.set_tracking_uri(None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / ".mlcycle", flush_interval=0.2)


# --- PostgreSQL -----------------------------------------------------------------------------


def _admin_uri() -> str:
    """The server `make test` started; in CI its absence fails the test rather than skip it."""
    uri = os.environ.get(PG_ENV)
    if not uri:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: run the tests with `make test`, which starts "
                        "PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by `make test`)")
    return uri


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[str]:
    """A migrated template database; each test's database is a copy of it."""
    uri = _admin_uri()
    engine = create_engine(uri, isolation_level="AUTOCOMMIT")
    template = f"mlcycle_tpl_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{template}"'))
    template_uri = make_url(uri).set(database=template).render_as_string(hide_password=False)
    from mlcycle.store.sql import connect

    connect(template_uri).dispose()  # migrate once; every test database copies it
    yield template
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
    engine.dispose()


@contextlib.contextmanager
def _database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of *template*, if given), dropped afterwards."""
    admin_uri = _admin_uri()
    engine = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_uri(_pg_admin: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    with _database("mlcycle_t", template=_pg_admin) as uri:
        yield uri


@pytest.fixture
def empty_pg_uri() -> Iterator[str]:
    """A fresh PostgreSQL database with no schema (to test first-use migration)."""
    with _database("mlcycle_e") as uri:
        yield uri


# --- one suite, every backend ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
            ) -> Iterator[mc.Client]:
    """A Client on the embedded SQLite store, on PostgreSQL, or on a live ``mlcycle server``."""
    kind = request.param
    if kind == "sqlite":
        client = mc.Client(settings=settings)
        yield client
        client.close()
    elif kind == "postgres":
        uri = request.getfixturevalue("pg_uri")
        client = mc.Client(uri, settings=settings)
        yield client
        client.close()
    else:
        from mlcycle.testing.server import live_server

        server_settings = Settings(home=tmp_path / "server")
        with live_server(server_settings) as url:
            client = mc.Client(url, settings=settings)
            yield client
            client.close()
