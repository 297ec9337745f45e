"""The data stage end to end through ``mc.data`` / ``Client.data``: versions, dedup, the cheap
no-change path, lineage, run inputs, diff, contracts, segments, preparation and raw files."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer

import mlcycle as mc
from mlcycle.datasets.sources import FileSource
from mlcycle.errors import (
    DatasetNotFound,
    DatasetVersionNotFound,
    InvalidInputError,
    InvalidStateError,
    SourceError,
)


def _orders(n: int = 200, *, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": range(n),
        "region": ["EU", "US", "APAC", "EU"] * (n // 4),
        "age": [20 + (i * 7) % 60 for i in range(n)],
        "amount": [round(10 + i * 0.5 + shift, 2) for i in range(n)],
    })


def _objects(home: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(home / "artifacts" / "objects"))


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    _orders().to_csv(path, index=False)
    return path


def test_ingest_records_a_version_that_loads_back(csv: Path) -> None:
    v = mc.data.ingest("orders", csv, description="first pull")
    assert (v.ref, v.version, v.kind, v.num_rows) == ("orders@v1", 1, "table", 200)
    assert [c.name for c in v.columns] == ["order_id", "region", "age", "amount"]
    assert v.source["kind"] == "file" and v.source["path"].endswith("orders.csv")
    assert v.code_hash is not None and len(v.code_hash) == 64  # this test file's hash
    assert v.profile_digest is not None and v.fingerprint is not None
    frame = mc.data.load("orders")
    assert isinstance(frame, pl.DataFrame)
    assert frame.to_pandas().equals(_orders())
    assert mc.data.load("orders@v1", format="pandas")["amount"].sum() == _orders()["amount"].sum()
    assert mc.data.get("orders@latest") == v == mc.data.get(f"orders@{v.digest[:10]}")


def test_unchanged_source_is_not_read_again(csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = mc.data.ingest("orders", csv)

    def boom(self: FileSource, progress: object = None) -> None:
        raise AssertionError("the unchanged source was read")

    with monkeypatch.context() as m:
        m.setattr(FileSource, "read", boom)
        assert mc.data.ingest("orders", csv) == v1
    # Same bytes, new modification time: read, found identical, still v1 (nothing stored twice)
    objects = _objects(Path(".mlcycle"))
    os.utime(csv, (1_000_000, 1_000_000))
    again = mc.data.ingest("orders", csv)
    assert again.version == 1 and again.digest == v1.digest
    assert again.fingerprint != v1.fingerprint  # refreshed, so the next check is cheap again
    assert _objects(Path(".mlcycle")) == objects
    with monkeypatch.context() as m:
        m.setattr(FileSource, "read", boom)
        assert mc.data.ingest("orders", csv).version == 1
    _orders(shift=1.0).to_csv(csv, index=False)
    v2 = mc.data.ingest("orders", csv)
    assert v2.version == 2 and v2.digest != v1.digest
    assert [v.version for v in mc.data.list_versions("orders")] == [2, 1]
    assert mc.data.get("orders").version == 2 and mc.data.get("orders@v1").digest == v1.digest


def test_identical_content_from_other_sources_is_stored_once(csv: Path, tmp_path: Path) -> None:
    v1 = mc.data.ingest("orders", csv)
    objects = _objects(Path(".mlcycle"))
    frame = mc.data.load("orders@v1")
    again = mc.data.ingest("orders", frame)  # same rows from memory: same digest, same version
    assert again.version == 1
    copy = mc.data.ingest("orders_copy", frame)  # another dataset: a version, no new bytes
    assert copy.digest == v1.digest and copy.ref == "orders_copy@v1"
    assert _objects(Path(".mlcycle")) == objects


def test_lineage_parents_code_and_run_inputs(csv: Path) -> None:
    raw = mc.data.ingest("orders", csv)

    def derive(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("region") == "EU")

    with mc.start_run(experiment="prep", log_system=False) as run:
        source = mc.data.load("orders@v1")
        eu = mc.data.ingest("orders_eu", derive(source), parents=["orders@v1"], code=derive)
    assert eu.parents == ("orders@v1",)
    assert eu.run_id == run.run_id
    assert eu.code_hash != raw.code_hash
    inputs = {(i.dataset, i.version, i.context.get("role")) for i in mc.get_run(run.run_id).inputs}
    assert ("orders", "v1", "read") in inputs
    assert ("orders_eu", "v1", "output") in inputs
    digests = {i.dataset: i.digest for i in mc.get_run(run.run_id).inputs}
    assert digests["orders"] == raw.digest


def test_bad_sources_record_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(SourceError, match=r"bad.csv: line 3"):
        mc.data.ingest("bad", bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="empty"):
        mc.data.ingest("bad", empty)
    with pytest.raises(SourceError, match="cannot reach"):
        mc.data.ingest("bad", "http://127.0.0.1:9/api", timeout=2)
    assert mc.data.list_datasets() == []
    with pytest.raises(DatasetNotFound):
        mc.data.get("bad")
    with pytest.raises(InvalidInputError, match="dataset name"):
        mc.data.ingest("../etc", _orders())


def test_version_refs(csv: Path) -> None:
    mc.data.ingest("orders", csv)
    with pytest.raises(DatasetVersionNotFound, match="no version 7"):
        mc.data.get("orders@v7")
    with pytest.raises(DatasetVersionNotFound):
        mc.data.get("orders@deadbeef")
    with pytest.raises(InvalidInputError):
        mc.data.get("a@b@c")


def test_diff_shows_schema_and_profile_changes(csv: Path) -> None:
    mc.data.ingest("orders", csv)
    changed = _orders(shift=500.0).drop(columns=["age"]).assign(channel="web")
    mc.data.ingest("orders", changed)
    d = mc.data.diff("orders@v1", "orders@v2")
    assert d.added == ("channel",) and d.removed == ("age",)
    assert not d.same_content
    assert not d.profile.is_empty
    body = d.to_dict()
    assert body["schema"]["added"] == ["channel"]
    assert mc.data.diff("orders@v1", "orders@v1").same_content


def test_profile_is_stored_with_the_version(csv: Path) -> None:
    mc.data.ingest("orders", csv)
    prof = mc.data.profile("orders@v1")
    assert prof.num_rows == 200
    amount = prof.columns["amount"]
    assert amount.min == pytest.approx(10.0) and amount.max == pytest.approx(10 + 199 * 0.5)
    assert dict(prof.columns["region"].top)["EU"] == 100


def test_contract_inferred_stored_and_validated_with_segments(csv: Path, tmp_path: Path
                                                              ) -> None:
    mc.data.ingest("orders", csv)
    contract = mc.data.infer_contract("orders@v1")
    assert mc.data.get_contract("orders").to_yaml() == contract.to_yaml()
    mc.data.set_segments("orders", {"eu": "region == 'EU'", "senior": "age >= 65"})
    ok = mc.data.validate("orders@v1")
    assert ok.passed
    bad = _orders()
    bad.loc[[3, 7, 11], "region"] = "MARS"
    bad.loc[[0], "amount"] = -5.0
    report = mc.data.validate(bad, dataset="orders")
    assert not report.passed
    failed = {(c.check, c.column): c.failed_rows for c in report.checks if not c.passed}
    assert sum(failed.values()) == 4
    assert set(report.segments) == {"eu", "senior"}
    assert "MARS" in report.to_html()
    with pytest.raises(InvalidInputError):
        mc.data.set_segments("orders", {"broken": "region === "})


def test_prepare_records_splits_and_quarantine(csv: Path) -> None:
    v = mc.data.ingest("orders", csv)
    contract = mc.data.infer_contract("orders@v1")
    dirty = pl.from_pandas(_orders()).with_columns(
        pl.when(pl.col("order_id") < 5).then(-1.0).otherwise(pl.col("amount")).alias("amount"))
    dirty_v = mc.data.ingest("orders", dirty)
    spec = {
        "steps": [{"op": "contract", "contract": contract.to_dict(), "action": "quarantine"}],
        "target": "region",
        "split": {"method": "random", "test": 0.25, "seed": 1},
    }
    out = mc.data.prepare(dirty_v.ref, spec)
    versions = out.versions
    assert set(versions) == {"train", "test", "quarantine"}
    assert versions["quarantine"].num_rows == 5
    assert versions["train"].num_rows + versions["test"].num_rows == 195
    for split in versions.values():
        assert split.parents == (dirty_v.ref,)
        assert split.code_hash == out.prepared.spec.digest()
        assert split.dataset.startswith("orders.")
    assert versions["quarantine"].role == "quarantine"
    assert v.version == 1

    # A split takes the segments of the data it was prepared from, unless it has its own.
    client = mc.get_client()
    assert client.data.segments_for(versions["test"]) == {}
    mc.data.set_segments("orders", {"eu": "region = 'EU'"})
    assert client.data.segments_for(versions["test"].ref) == {"eu": "region = 'EU'"}
    mc.data.set_segments("orders.test", {"big": "amount > 100"})
    assert client.data.segments_for(versions["test"]) == {"big": "amount > 100"}


def test_raw_files_are_versioned_and_checked_out(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "cats").mkdir(parents=True)
    for i in range(5):
        (folder / "cats" / f"{i}.bin").write_bytes(os.urandom(1000))
    v = mc.data.add_files("images", folder)
    assert (v.kind, v.num_rows, v.num_bytes) == ("files", 5, 5000)
    service = mc.get_client().data
    assert service.files_status("images", folder).clean
    (folder / "cats" / "new.bin").write_bytes(b"x")
    assert service.files_status("images", folder).added
    service.checkout_files("images@v1", tmp_path / "restored", link="copy")
    assert (tmp_path / "restored" / "cats" / "3.bin").read_bytes() == \
        (folder / "cats" / "3.bin").read_bytes()
    with pytest.raises(InvalidStateError, match="holds files"):
        mc.data.load("images")


def test_every_backend_ingests_and_loads(backend: mc.Client) -> None:
    cancer = load_breast_cancer(as_frame=True).frame
    v = backend.data.ingest("cancer", cancer)
    assert v.num_rows == 569
    assert backend.data.ingest("cancer", cancer).version == 1
    assert backend.data.load("cancer@v1", format="pandas").equals(cancer)
    assert backend.data.profile("cancer").columns["target"].max == 1
    backend.data.infer_contract("cancer@v1")
    assert backend.data.validate("cancer@v1").passed


def test_snapshots_are_moved_into_a_local_store_not_copied(csv: Path) -> None:
    v = mc.data.ingest("orders", csv)
    store = mc.get_client().service.artifacts
    scratch = store.scratch_dir()
    assert scratch is not None and scratch.startswith(str(Path(".mlcycle").resolve()))
    obj = Path(scratch).parent / "objects" / v.digest[:2] / v.digest[2:]
    assert obj.is_file()
    # The snapshot was written beside the objects (same filesystem, so adopted by a link or
    # rename) and left nothing behind there.
    assert Path(scratch).is_dir() and not any(Path(scratch).iterdir())
    assert Path(scratch).stat().st_dev == obj.stat().st_dev
