"""Schema migrations, settings, and the artifact store's safety rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from mlcycle.config import Settings, redact_uri
from mlcycle.errors import InvalidInputError, StoreError
from mlcycle.store.artifacts import FsspecArtifactStore, digest_bytes
from mlcycle.store.sql import connect
from mlcycle.store.sql.engine import SCHEMA_REVISION, current_revision


def test_schema_revision_is_the_migrations_head() -> None:
    import mlcycle.store.sql.engine as engine_module

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(engine_module.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == SCHEMA_REVISION


def test_first_use_migrates_sqlite_in_wal_mode(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'new' / 'm.db'}")
    assert current_revision(engine) == SCHEMA_REVISION
    assert {"runs", "metric_chunks", "latest_metrics", "params", "tags", "artifacts"} <= set(
        inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
def test_first_use_migrates_postgres(empty_pg_uri: str) -> None:
    engine = connect(empty_pg_uri)
    assert current_revision(engine) == SCHEMA_REVISION
    assert "latest_metrics" in inspect(engine).get_table_names()
    engine.dispose()


def test_settings_from_env_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mlcycle.yaml").write_text(
        "tracking_uri: sqlite:///from-yaml.db\nflush_interval: 2.5\n")
    monkeypatch.setenv("MLCYCLE_FLUSH_INTERVAL", "0.5")
    monkeypatch.setenv("MLCYCLE_READ_TOKENS", "r1, r2")
    monkeypatch.setenv("MLCYCLE_TOKEN", "s3cret")
    s = Settings()
    assert s.tracking_uri == "sqlite:///from-yaml.db"  # yaml fills what env leaves
    assert s.flush_interval == 0.5  # env beats yaml
    assert [t.get_secret_value() for t in s.read_tokens] == ["r1", "r2"]
    assert "s3cret" not in repr(s)  # secrets never print


def test_default_uris_live_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    assert s.resolved_tracking_uri == f"sqlite:///{tmp_path / 'h' / 'mlcycle.db'}"
    assert s.resolved_artifact_uri == str(tmp_path / "h" / "artifacts")


def test_artifact_store_is_content_addressed(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "a"))
    digest, size = store.put_bytes(b"hello")
    assert digest == digest_bytes(b"hello") and size == 5
    assert store.put_bytes(b"hello") == (digest, 5)
    objects = [p for p in (tmp_path / "a" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 1
    assert store.get_bytes(digest) == b"hello"


def test_a_corrupted_object_is_detected_on_download(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "a"))
    digest, _ = store.put_bytes(b"model weights")
    obj = next(p for p in (tmp_path / "a" / "objects").rglob("*") if p.is_file())
    obj.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="corrupted"):
        store.get_file(digest, str(tmp_path / "out.bin"))
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("digest", ["../../etc/passwd", "ab", "Z" * 64])
def test_digests_are_checked_before_touching_paths(tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidInputError, match="digest"):
        FsspecArtifactStore(str(tmp_path)).open(digest)


@pytest.mark.parametrize(("uri", "shown"), [
    ("postgresql+psycopg://ml:s3:cr@et@db:5432/ml", "postgresql+psycopg://ml:***@db:5432/ml"),
    ("postgresql://ml@db/ml", "postgresql://ml@db/ml"),
    ("sqlite:////home/me/.mlcycle/mlcycle.db", "sqlite:////home/me/.mlcycle/mlcycle.db"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
])
def test_a_uri_is_printed_without_its_password(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
