"""Shared fixtures: an isolated environment per test, PostgreSQL databases, and the ``backend``
fixture that runs one suite against every kind of store (SQLite, PostgreSQL, a live server)."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[str]:
    uri = os.environ.get(PG_ENV)
    if not uri:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: run the tests with `make test`, which starts "
                        "PostgreSQL")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by `make test`)")
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


@pytest.fixture
def pg_uri(_pg_admin: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    admin_uri = os.environ[PG_ENV]
    engine = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    name = f"mlcycle_t_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_admin}"'))
    yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def empty_pg_uri() -> Iterator[str]:
    """A fresh PostgreSQL database with no schema (to test first-use migration)."""
    admin_uri = os.environ.get(PG_ENV)
    if not admin_uri:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by `make test`)")
    engine = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    name = f"mlcycle_e_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


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
