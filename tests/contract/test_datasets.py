"""The dataset store contract: every test runs on SQLite, on PostgreSQL and through a live server.

The store comes from ``open_dataset_store`` over the backend's tracking store, the path the SDK
takes, so the http case exercises ``RestDatasetStore`` against the real routes. The last part
of the file covers what only the server has: name checks, status codes, tokens, wiring.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.client import open_dataset_store
from mlcycle.config import Settings
from mlcycle.entities import ColumnSchema, DatasetVersion
from mlcycle.errors import (
    DatasetAlreadyExists,
    DatasetNotFound,
    DatasetVersionNotFound,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    PermissionDenied,
)
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore
from mlcycle.store.base import DatasetStore, TrackingStore
from mlcycle.store.rest.datasets import RestDatasetStore
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.datasets import SqlDatasetStore


def digest(seed: object) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


def add(store: DatasetStore, dataset: str, seed: object, **fields: Any
        ) -> tuple[DatasetVersion, bool]:
    """A table version with the digest of *seed*; *fields* override the defaults."""
    kwargs: dict[str, Any] = {"kind": "table", "digest": digest(seed), "num_rows": 10,
                              "num_bytes": 100, **fields}
    return store.create_version(dataset, **kwargs)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> DatasetStore:
    ds = open_dataset_store(backend.service.store)
    expected = RestDatasetStore if request.node.callspec.params["backend"] == "http" \
        else SqlDatasetStore
    assert isinstance(ds, expected)
    return ds


# --- datasets -------------------------------------------------------------------------------


def test_datasets_create_find_get_list(store: DatasetStore) -> None:
    created = store.create_dataset("churn", description="monthly churn", tags={"team": "ml"})
    assert (created.name, created.description, dict(created.tags)) == \
        ("churn", "monthly churn", {"team": "ml"})
    assert created.latest_version is None and dict(created.segments) == {}
    assert store.find_dataset("churn") == created
    assert store.get_dataset("churn") == created
    store.create_dataset("a-first.set_1")
    assert [d.name for d in store.list_datasets()] == ["a-first.set_1", "churn"]
    assert store.find_dataset("nope") is None
    with pytest.raises(DatasetNotFound):
        store.get_dataset("nope")


def test_duplicate_name_is_refused_and_keeps_the_first(store: DatasetStore) -> None:
    first = store.create_dataset("churn", description="first")
    with pytest.raises(DatasetAlreadyExists):
        store.create_dataset("churn", description="second")
    assert store.get_dataset("churn") == first
    assert len(store.list_datasets()) == 1


# --- versions -------------------------------------------------------------------------------


def test_versions_are_numbered_from_one_and_create_the_dataset(store: DatasetStore) -> None:
    made = [add(store, "events", i) for i in range(3)]
    assert [(v.version, created) for v, created in made] == [(1, True), (2, True), (3, True)]
    assert [v.ref for v, _ in made] == ["events@v1", "events@v2", "events@v3"]
    assert len({v.version_id for v, _ in made}) == 3
    assert store.get_dataset("events").latest_version == 3


def test_same_digest_returns_the_same_version_and_refreshes_its_fingerprint(
    store: DatasetStore,
) -> None:
    first, created = add(store, "events", "a", fingerprint="fp-old")
    assert created
    add(store, "events", "b")
    again, created = add(store, "events", "a", fingerprint="fp-new", num_rows=999)
    assert not created
    assert (again.version, again.version_id) == (1, first.version_id)
    assert again.fingerprint == "fp-new"
    assert again.num_rows == 10  # the stored version is not rewritten, only its fingerprint
    assert store.get_version("events", 1).fingerprint == "fp-new"
    # No fingerprint given: the stored one stays.
    same, created = add(store, "events", "a")
    assert not created and same.fingerprint == "fp-new"
    assert [v.version for v in store.list_versions("events")] == [2, 1]
    assert store.get_dataset("events").latest_version == 2


def test_every_field_of_a_version_round_trips(store: DatasetStore) -> None:
    columns = (ColumnSchema("id", "int64", nullable=False), ColumnSchema("ts", "timestamp[us]"),
               ColumnSchema("label é", "dictionary<values=string, indices=int32>"))
    source = {"uri": "file:///data/x.csv", "options": {"sep": ";", "skip": 2},
              "files": [{"path": "a.csv", "size": 12, "mtime": 1.5}], "none": None,
              "flag": True, "text": "ünïcode ✓"}
    version, created = store.create_version(
        "train-set", kind="files", digest=digest("x"), num_rows=None, num_bytes=123_456_789_012,
        columns=columns, source=source, fingerprint=digest("fp"),
        profile_digest=digest("profile"), parents=("raw@v3", "lookup@v1"),
        code_hash=digest("code"), role="train", run_id="0123456789abcdef0123456789abcdef",
        description="derived from raw", tags={"split": "train", "k": ""},
    )
    assert created
    assert tuple(version.columns) == columns
    assert dict(version.source) == source
    assert tuple(version.parents) == ("raw@v3", "lookup@v1")
    assert (version.kind, version.num_rows, version.num_bytes, version.role) == \
        ("files", None, 123_456_789_012, "train")
    assert (version.code_hash, version.profile_digest, version.run_id) == \
        (digest("code"), digest("profile"), "0123456789abcdef0123456789abcdef")
    assert (version.description, dict(version.tags)) == \
        ("derived from raw", {"split": "train", "k": ""})
    # Read back every way there is: exactly what create_version answered.
    assert store.get_version("train-set", 1) == version
    assert store.list_versions("train-set") == [version]
    assert store.find_version_by_digest("train-set", digest("x")) == version


def test_find_version_by_digest_full_and_prefix(store: DatasetStore) -> None:
    one = "abc1" + "0" * 60
    two = "abc2" + "0" * 60
    v1, _ = store.create_version("d", kind="table", digest=one, num_rows=1, num_bytes=1)
    v2, _ = store.create_version("d", kind="table", digest=two, num_rows=1, num_bytes=1)
    assert store.find_version_by_digest("d", one) == v1
    assert store.find_version_by_digest("d", two) == v2
    assert store.find_version_by_digest("d", "abc2") == v2  # a unique prefix
    assert store.find_version_by_digest("d", "abc1000") == v1
    assert store.find_version_by_digest("d", "abc") is None  # ambiguous
    assert store.find_version_by_digest("d", "f" * 64) is None
    assert store.find_version_by_digest("d", "ff") is None
    assert store.find_version_by_digest("d", "") is None
    only, _ = add(store, "single", 1)
    assert store.find_version_by_digest("single", digest(1)[:6]) == only
    assert store.find_version_by_digest("single", "") is None  # not a prefix of everything
    assert store.find_version_by_digest("other", one) is None


def test_get_version_unknown(store: DatasetStore) -> None:
    add(store, "d", 1)
    for number in (0, 2, 99):
        with pytest.raises(DatasetVersionNotFound):
            store.get_version("d", number)
    assert store.get_version("d", 1).version == 1


def test_list_versions_newest_first(store: DatasetStore) -> None:
    for i in range(4):
        add(store, "d", i)
    add(store, "other", 0)
    versions = store.list_versions("d")
    assert [v.version for v in versions] == [4, 3, 2, 1]
    assert [v.digest for v in versions] == [digest(i) for i in (3, 2, 1, 0)]
    assert {v.dataset for v in versions} == {"d"}
    store.create_dataset("empty")
    assert store.list_versions("empty") == []


def test_versions_are_kept_per_dataset(store: DatasetStore) -> None:
    a, _ = add(store, "a", "same")
    b, created = add(store, "b", "same")
    assert created and (a.version, b.version) == (1, 1) and a.version_id != b.version_id
    assert store.find_version_by_digest("b", digest("same")) == b


# --- segments -------------------------------------------------------------------------------


def test_segments_add_replace_remove(store: DatasetStore) -> None:
    store.create_dataset("d", tags={"t": "1"})
    ds = store.set_segments("d", {"eu": "region == 'eu'", "big": "amount > 100"})
    assert dict(ds.segments) == {"eu": "region == 'eu'", "big": "amount > 100"}
    ds = store.set_segments("d", {"eu": "region in ('eu', 'uk')", "big": None, "gone": None})
    assert dict(ds.segments) == {"eu": "region in ('eu', 'uk')"}
    ds = store.set_segments("d", {"new": "x IS NULL"})
    assert dict(ds.segments) == {"eu": "region in ('eu', 'uk')", "new": "x IS NULL"}
    assert store.get_dataset("d").segments == ds.segments
    assert dict(store.get_dataset("d").tags) == {"t": "1"}  # nothing else touched


# --- contracts ------------------------------------------------------------------------------


def test_contracts_numbering_and_latest(store: DatasetStore) -> None:
    c1 = store.create_contract("d", "columns:\n  id: {type: int64}\n")
    assert (c1.dataset, c1.version, c1.ref, c1.source_version) == ("d", 1, "d@contract-v1", None)
    assert store.get_dataset("d").latest_version is None  # created by its first contract
    c2 = store.create_contract("d", "columns: {}\n", source_version="d@v7")
    assert (c2.version, c2.source_version) == (2, "d@v7")
    assert store.get_contract("d") == c2
    assert store.get_contract("d", 1) == c1
    assert store.get_contract("d", 1).body == "columns:\n  id: {type: int64}\n"
    assert store.list_contracts("d") == [c2, c1]
    assert store.create_contract("other", "x: 1\n").version == 1  # numbered per dataset
    with pytest.raises(NotFoundError):
        store.get_contract("d", 3)
    store.create_dataset("bare")
    assert store.list_contracts("bare") == []
    with pytest.raises(NotFoundError):
        store.get_contract("bare")


# --- unknown datasets -----------------------------------------------------------------------

_ON_UNKNOWN: dict[str, Callable[[DatasetStore], object]] = {
    "get_dataset": lambda s: s.get_dataset("nope"),
    "set_segments": lambda s: s.set_segments("nope", {"a": "x > 1"}),
    "get_version": lambda s: s.get_version("nope", 1),
    "list_versions": lambda s: s.list_versions("nope"),
    "get_contract": lambda s: s.get_contract("nope"),
    "get_contract_v1": lambda s: s.get_contract("nope", 1),
    "list_contracts": lambda s: s.list_contracts("nope"),
}


@pytest.mark.parametrize("call", list(_ON_UNKNOWN), ids=list(_ON_UNKNOWN))
def test_unknown_dataset_raises_dataset_not_found(store: DatasetStore, call: str) -> None:
    store.create_dataset("known")
    with pytest.raises(DatasetNotFound) as info:
        _ON_UNKNOWN[call](store)
    assert info.value.details.get("dataset") == "nope"
    assert store.find_dataset("nope") is None  # nothing created on the way
    assert store.find_version_by_digest("nope", digest(1)) is None


# --- concurrency ----------------------------------------------------------------------------


def _together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in *n* threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    if errors:
        raise errors[0]
    return results


def test_concurrent_versions_get_distinct_consecutive_numbers(store: DatasetStore) -> None:
    per_thread = 5

    def work(i: int) -> list[int]:
        return [add(store, "race", (i, k))[0].version for k in range(per_thread)]

    # The dataset does not exist yet: the threads race to create it as well.
    numbers = [n for ns in _together(4, work) for n in ns]
    assert sorted(numbers) == list(range(1, 4 * per_thread + 1))
    versions = store.list_versions("race")
    assert [v.version for v in versions] == list(range(4 * per_thread, 0, -1))
    assert len({v.digest for v in versions}) == 4 * per_thread
    assert store.get_dataset("race").latest_version == 4 * per_thread


def test_concurrent_same_digest_makes_one_version(store: DatasetStore) -> None:
    results = _together(4, lambda i: add(store, "race", "same"))
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert {v.version_id for v, _ in results} == {results[0][0].version_id}
    assert [v.version for v in store.list_versions("race")] == [1]


def test_concurrent_contracts_get_distinct_numbers(store: DatasetStore) -> None:
    contracts = _together(4, lambda i: store.create_contract("race", f"n: {i}\n"))
    assert sorted(c.version for c in contracts) == [1, 2, 3, 4]
    assert {c.body for c in store.list_contracts("race")} == {f"n: {i}\n" for i in range(4)}


# --- the server only ------------------------------------------------------------------------

WRITE, READ = "write-token-ds", "read-token-ds"


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore.from_uri(f"sqlite:///{tmp_path / 'server.db'}")
    yield store
    store.close()


def _app_client(tmp_path: Path, tracking: TrackingStore, *, token: str | None = None,
                datasets: DatasetStore | None = None, secured: bool = False) -> TestClient:
    settings = Settings(home=tmp_path / "home", tracking_uri=None, artifact_uri=None,
                        token=SecretStr(WRITE) if secured else None,
                        read_tokens=[SecretStr(READ)] if secured else [])
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    app = create_app(settings, stores=(tracking, artifacts), datasets=datasets)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, headers=headers)


@pytest.fixture
def http(tmp_path: Path, tracking: SqlTrackingStore) -> Iterator[TestClient]:
    with _app_client(tmp_path, tracking) as client:
        yield client


@pytest.mark.parametrize("name", ["bad name", "a" * 201, "-leading", "semi;colon", "é"])
def test_server_refuses_bad_dataset_names(http: TestClient, name: str) -> None:
    store = RestDatasetStore(http)
    with pytest.raises(InvalidInputError, match="dataset name"):
        store.create_dataset(name)
    with pytest.raises(InvalidInputError, match="dataset name"):
        add(store, name, 1)
    with pytest.raises(InvalidInputError, match="dataset name"):
        store.create_contract(name, "x: 1\n")
    assert store.list_datasets() == []
    assert store.find_dataset(name) is None
    assert store.create_dataset("a" * 200).name == "a" * 200  # the longest name allowed


def test_server_refuses_malformed_versions_naming_the_field(http: TestClient) -> None:
    store = RestDatasetStore(http)
    with pytest.raises(InvalidInputError, match="digest"):
        store.create_version("d", kind="table", digest="not-a-digest", num_rows=1, num_bytes=1)
    with pytest.raises(InvalidInputError, match="num_bytes"):
        store.create_version("d", kind="table", digest=digest(1), num_rows=1, num_bytes=-1)
    with pytest.raises(InvalidInputError, match="role"):
        add(store, "d", 1, role="r" * 33)
    response = http.post("/api/v1/datasets/d/versions",
                         json={"kind": "table", "digest": digest(1), "num_bytes": 1, "tag": {}})
    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "tag"
    assert store.find_dataset("d") is None  # nothing half-stored


def test_version_statuses_and_millisecond_times_on_the_wire(http: TestClient) -> None:
    body = {"kind": "table", "digest": digest(1), "num_rows": 3, "num_bytes": 10}
    first = http.post("/api/v1/datasets/d/versions", json=body)
    assert first.status_code == 201 and first.json()["created"] is True
    again = http.post("/api/v1/datasets/d/versions", json=body)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["version"]["version_id"] == first.json()["version"]["version_id"]
    created_at = first.json()["version"]["created_at"]
    assert isinstance(created_at, int) and created_at > 1_600_000_000_000
    assert isinstance(http.get("/api/v1/datasets/d").json()["created_at"], int)
    missing = http.get(f"/api/v1/datasets/d/versions/by-digest/{digest(2)}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "dataset_version_not_found"
    assert http.get("/api/v1/datasets/nope").json()["error"]["code"] == "dataset_not_found"
    paths = http.get("/openapi.json").json()["paths"]
    assert "/api/v1/datasets/{name}/versions/by-digest/{digest}" in paths


def test_writes_need_the_write_token(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking, token=WRITE, secured=True) as http:
        writer = RestDatasetStore(http)
        add(writer, "d", 1)
        writer.create_contract("d", "x: 1\n")
    with _app_client(tmp_path, tracking, token=READ, secured=True) as http:
        reader = RestDatasetStore(http)
        assert [v.version for v in reader.list_versions("d")] == [1]
        assert reader.get_contract("d").version == 1
        assert reader.find_version_by_digest("d", digest(1)) is not None
        for write in (lambda: reader.create_dataset("e"), lambda: add(reader, "d", 2),
                      lambda: reader.set_segments("d", {"a": "x > 1"}),
                      lambda: reader.create_contract("d", "y: 2\n")):
            with pytest.raises(PermissionDenied):
                write()
        assert [v.version for v in reader.list_versions("d")] == [1]
        assert dict(reader.get_dataset("d").segments) == {}


def test_a_server_without_sql_tracking_needs_a_dataset_store(tmp_path: Path,
                                                          tracking: SqlTrackingStore) -> None:
    # A tracking store that is not a SqlTrackingStore, as a test double or a proxy would be.
    wrapped = mock.create_autospec(TrackingStore, instance=True)
    with _app_client(tmp_path, wrapped) as http:
        with pytest.raises(InvalidStateError, match="no datasets"):
            RestDatasetStore(http).list_datasets()
    handed = SqlDatasetStore(tracking.engine)
    with _app_client(tmp_path, wrapped, datasets=handed) as http:
        RestDatasetStore(http).create_dataset("via-handed-store")
    assert handed.get_dataset("via-handed-store").name == "via-handed-store"
