"""The model registry contract: every test runs on SQLite, on PostgreSQL and through a live
server.

The registry comes from ``open_registry_store`` over the backend's tracking store (the path the
SDK takes), wrapped in a ``RegistryService`` whose actor is ``alice``, so the http case
exercises ``RestModelRegistryStore`` against the real routes. The last part of the file covers
what only a SQL store or only the server has: rollback of a failed write, status codes, tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

import mlcycle as mc
from mlcycle.client import open_registry_store
from mlcycle.config import Settings
from mlcycle.entities import ModelEvent, ModelVersion, RunInput
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    ModelAliasNotFound,
    ModelAlreadyExists,
    ModelNotFound,
    ModelVersionNotFound,
    PermissionDenied,
    RunNotFound,
    StoreError,
)
from mlcycle.registry import RegistryService, parse_model_uri
from mlcycle.registry.service import GIT_COMMIT_TAG
from mlcycle.server import create_app
from mlcycle.store.artifacts import FsspecArtifactStore
from mlcycle.store.base import ModelRegistryStore
from mlcycle.store.rest.registry import RestModelRegistryStore
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.store.sql.registry import SqlModelRegistryStore

ACTOR = "alice"


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: mc.Client) -> ModelRegistryStore:
    registry = open_registry_store(backend.service.store)
    expected = RestModelRegistryStore if request.node.callspec.params["backend"] == "http" \
        else SqlModelRegistryStore
    assert isinstance(registry, expected)
    return registry


@pytest.fixture
def registry(store: ModelRegistryStore, backend: mc.Client) -> RegistryService:
    return RegistryService(store, backend.service.store, actor=ACTOR)


def kinds(events: list[ModelEvent]) -> list[str]:
    """Event kinds, oldest first (the store lists newest first)."""
    return [e.kind for e in reversed(events)]


def register(registry: RegistryService, name: str = "churn", n: int = 1, **fields: Any
             ) -> list[ModelVersion]:
    return [registry.register_model(name, f"s3://models/{name}/{i}", **fields) for i in range(n)]


# --- registering ----------------------------------------------------------------------------


def test_versions_are_numbered_from_one_and_create_the_model(registry: RegistryService) -> None:
    made = register(registry, n=3)
    assert [v.version for v in made] == [1, 2, 3]
    assert [v.uri for v in made] == ["models:/churn/1", "models:/churn/2", "models:/churn/3"]
    assert all(v.created_by == ACTOR and v.status == "active" for v in made)
    model = registry.get_model("churn")
    assert (model.latest_version, model.created_by, dict(model.aliases)) == (3, ACTOR, {})
    assert [v.version for v in registry.list_versions("churn")] == [3, 2, 1]
    events = registry.events("churn")
    assert kinds(events) == ["model_created"] + ["version_created"] * 3
    assert {e.actor for e in events} == {ACTOR}
    assert [e.version for e in events if e.kind == "version_created"] == [3, 2, 1]
    assert events[0].details["source"] == "s3://models/churn/2"
    assert [e.event_id for e in events] == sorted((e.event_id for e in events), reverse=True)
    register(registry, "other")
    assert registry.get_version("other").version == 1  # numbered per model


def test_every_field_of_a_version_round_trips(registry: RegistryService,
                                              backend: mc.Client) -> None:
    with backend.start_run(experiment="e", log_system=False) as run:
        pass
    signature = {"inputs": [{"name": "age", "type": "int64", "nullable": False},
                            {"name": "é ✓", "type": "string"}],
                 "outputs": [{"name": "p", "type": "float64"}], "format": "pandas"}
    evaluation = {"accuracy": 0.91, "loss": float("inf"), "segments": {"eu": {"n": 3}},
                  "curve": [0.1, 0.2], "passed": True, "note": None}
    version = registry.register_model(
        "churn", f"runs:/{run.run_id}/model", run_id=run.run_id, manifest_digest="a" * 64,
        flavor="sklearn", signature=signature, code_commit="c" * 40,
        datasets=["orders@v3", RunInput("lookup", "v1", "d" * 64, {"role": "train"})],
        contract="orders@contract-v2", evaluation=evaluation, description="first try",
        tags={"team": "ml", "empty": ""})
    assert (version.run_id, version.manifest_digest, version.flavor, version.code_commit,
            version.contract, version.description) == \
        (run.run_id, "a" * 64, "sklearn", "c" * 40, "orders@contract-v2", "first try")
    assert dict(version.signature) == signature
    assert dict(version.evaluation) == {**evaluation, "loss": "Infinity"}  # JSON has no inf
    assert tuple(version.datasets) == (RunInput("orders", "v3"),
                                       RunInput("lookup", "v1", "d" * 64, {"role": "train"}))
    assert dict(version.tags) == {"team": "ml", "empty": ""}
    # Read back every way there is: what register_model answered.
    assert registry.get_version("churn", 1) == version
    assert registry.resolve("models:/churn/1") == version
    assert registry.resolve("models:/churn/latest") == version
    assert registry.list_versions("churn") == [version]


def test_lineage_comes_from_the_run(registry: RegistryService, backend: mc.Client) -> None:
    with backend.start_run(experiment="e", log_system=False,
                           tags={GIT_COMMIT_TAG: "f" * 40}) as run:
        run.log_input("orders", "v3", digest="b" * 64, context={"role": "train"})
        run.log_input("orders", "v4", context={"role": "test"})
    version = registry.register_model("churn", f"runs:/{run.run_id}/model")
    assert version.run_id == run.run_id  # read from the source URI
    assert version.code_commit == "f" * 40
    assert sorted(version.datasets, key=lambda i: i.version) == [
        RunInput("orders", "v3", "b" * 64, {"role": "train"}),
        RunInput("orders", "v4", None, {"role": "test"})]
    # What is given wins over what the run says.
    given = registry.register_model("churn", "s3://elsewhere", run_id=run.run_id,
                                    code_commit="0" * 40, datasets=[])
    assert (given.code_commit, tuple(given.datasets), given.run_id) == ("0" * 40, (), run.run_id)


def test_an_unknown_run_registers_nothing_and_is_recorded(registry: RegistryService) -> None:
    with pytest.raises(RunNotFound, match="no such run"):
        registry.register_model("churn", "runs:/" + "0" * 32 + "/model")
    with pytest.raises(InvalidInputError, match="run_id"):
        registry.register_model("churn", "runs:/" + "1" * 32 + "/model", run_id="2" * 32)
    assert registry.store.find_model("churn") is None
    assert registry.list_models() == []
    rejected = registry.events("churn")
    assert kinds(rejected) == ["rejected", "rejected"]
    assert [e.details["error"] for e in reversed(rejected)] == ["run_not_found", "invalid_input"]
    assert {e.actor for e in rejected} == {ACTOR}
    assert rejected[-1].details["operation"] == "register_model"


def test_a_malformed_version_registers_nothing(registry: RegistryService) -> None:
    with pytest.raises(InvalidInputError, match="source"):
        registry.register_model("churn", "")
    assert registry.store.find_model("churn") is None
    [event] = registry.events("churn")
    assert (event.kind, event.details["error"], event.actor) == \
        ("rejected", "invalid_input", ACTOR)
    with pytest.raises(InvalidInputError, match="model name"):
        registry.register_model("bad name", "s3://x")


def test_create_model_and_duplicates(registry: RegistryService) -> None:
    model = registry.create_model("churn", description="monthly churn", tags={"team": "ml"})
    assert (model.latest_version, model.description, dict(model.tags)) == \
        (None, "monthly churn", {"team": "ml"})
    with pytest.raises(ModelAlreadyExists):
        registry.create_model("churn", description="second")
    assert registry.get_model("churn").description == "monthly churn"
    assert kinds(registry.events("churn")) == ["model_created", "rejected"]
    assert registry.register_model("churn", "s3://x").version == 1
    registry.create_model("empty")
    with pytest.raises(ModelVersionNotFound, match="no versions yet"):
        registry.resolve("models:/empty/latest")


def test_update_model_and_version(registry: RegistryService) -> None:
    register(registry, n=2)
    model = registry.update_model("churn", description="d", tags={"a": "1", "b": "2"})
    assert (model.description, dict(model.tags)) == ("d", {"a": "1", "b": "2"})
    model = registry.update_model("churn", tags={"a": None})  # description left alone
    assert (model.description, dict(model.tags)) == ("d", {"b": "2"})
    assert registry.update_model("churn", description=None).description is None
    registry.update_model("churn", tags={"b": "2"})  # no change: no event
    v = registry.update_version("churn", 1, description="note", evaluation={"auc": 0.8})
    assert (v.description, dict(v.evaluation)) == ("note", {"auc": 0.8})
    v = registry.update_version("churn", 1, evaluation={"f1": 0.7}, tags={"k": "v"})
    assert (v.description, dict(v.evaluation), dict(v.tags)) == \
        ("note", {"auc": 0.8, "f1": 0.7}, {"k": "v"})
    assert registry.get_version("churn", 2).evaluation == {}  # only version 1 changed
    events = registry.events("churn")
    assert kinds(events)[-5:] == ["model_updated"] * 3 + ["version_updated"] * 2
    assert events[0].details["fields"] == ["evaluation", "tags"]
    assert [e.version for e in registry.events("churn", version=1)] == [1, 1, 1]


# --- aliases --------------------------------------------------------------------------------


def test_aliases_are_set_moved_and_unique(registry: RegistryService) -> None:
    register(registry, n=3)
    v1 = registry.set_alias("churn", "production", 1)
    assert tuple(v1.aliases) == ("production",)
    registry.set_alias("churn", "staging", 1)
    moved = registry.set_alias("churn", "production", 3)
    assert tuple(moved.aliases) == ("production",)
    assert tuple(registry.get_version("churn", 1).aliases) == ("staging",)
    assert dict(registry.get_model("churn").aliases) == {"production": 3, "staging": 1}
    assert registry.resolve("models:/churn@production").version == 3
    registry.set_alias("churn", "production", 3)  # already there: no change, no event
    events = [e for e in registry.events("churn") if e.kind == "alias_set"]
    assert [(e.alias, e.version, e.details["previous"]) for e in reversed(events)] == \
        [("production", 1, None), ("staging", 1, None), ("production", 3, 1)]
    assert registry.delete_alias("churn", "staging") == 1
    assert dict(registry.get_model("churn").aliases) == {"production": 3}
    last = registry.events("churn", max_results=1)
    assert [(e.kind, e.alias, e.version, e.actor) for e in last] == \
        [("alias_deleted", "staging", 1, ACTOR)]


def test_refused_alias_changes_are_errors_and_events(registry: RegistryService) -> None:
    register(registry, n=2)
    registry.set_alias("churn", "production", 1)
    before = len(registry.events("churn"))
    with pytest.raises(ModelVersionNotFound, match="no version 9"):
        registry.set_alias("churn", "production", 9)
    for bad in ("latest", "1st", "bad alias", "x" * 65):
        with pytest.raises(InvalidInputError, match="alias"):
            registry.set_alias("churn", bad, 1)
    with pytest.raises(ModelAliasNotFound, match="its aliases are production"):
        registry.delete_alias("churn", "staging")
    with pytest.raises(ModelNotFound):
        registry.set_alias("nope", "production", 1)
    assert dict(registry.get_model("churn").aliases) == {"production": 1}  # nothing moved
    refused = registry.events("churn")[: len(registry.events("churn")) - before]
    assert [e.kind for e in refused] == ["rejected"] * 6
    assert [e.details["error"] for e in reversed(refused)] == \
        ["model_version_not_found"] + ["invalid_input"] * 4 + ["model_alias_not_found"]
    assert refused[0].details["operation"] == "delete_alias" and refused[0].alias == "staging"
    assert {e.actor for e in refused} == {ACTOR}
    assert kinds(registry.events("nope")) == ["rejected"]


# --- archiving ------------------------------------------------------------------------------


def test_archive_and_restore(registry: RegistryService) -> None:
    register(registry, n=3)
    registry.set_alias("churn", "production", 3)
    with pytest.raises(InvalidStateError, match="alias production"):
        registry.archive("churn", 3)
    assert registry.get_version("churn", 3).status == "active"
    archived = registry.archive("churn", 2)
    assert archived.archived and archived.status == "archived"
    registry.archive("churn", 2)  # archived already: no change, no event
    assert registry.resolve("models:/churn/2").archived  # a pinned number still resolves
    with pytest.raises(InvalidStateError, match="archived"):
        registry.set_alias("churn", "staging", 2)
    registry.delete_alias("churn", "production")
    registry.archive("churn", 3)
    assert registry.resolve("models:/churn/latest").version == 1  # archived ones are skipped
    assert [v.version for v in registry.list_versions("churn", include_archived=False)] == [1]
    assert [v.version for v in registry.list_versions("churn")] == [3, 2, 1]
    registry.archive("churn", 1)
    with pytest.raises(ModelVersionNotFound, match="every version is archived"):
        registry.resolve("models:/churn/latest")
    restored = registry.restore("churn", 2)
    assert restored.status == "active"
    assert registry.resolve("models:/churn").version == 2
    assert registry.register_model("churn", "s3://x").version == 4  # numbers never reused
    assert [k for k in kinds(registry.events("churn")) if k.startswith(("version_a", "version_r",
                                                                        "rej"))] == \
        ["rejected", "version_archived", "rejected", "version_archived", "version_archived",
         "version_restored"]


# --- addressing -----------------------------------------------------------------------------


def test_uris_resolve(registry: RegistryService) -> None:
    register(registry, n=3)
    registry.set_alias("churn", "production", 2)
    cases = {
        "models:/churn/1": 1, "models:/churn/latest": 3, "models:/churn": 3,
        "models:/churn@latest": 3, "models:/churn@production": 2, "churn/1": 1,
        "churn@production": 2, "churn": 3, " models:/churn/2 ": 2,
    }
    for uri, number in cases.items():
        assert registry.resolve(uri).version == number, uri
    assert registry.get_version("churn", 1).version == 1
    assert registry.get_version("churn", alias="production").version == 2
    assert registry.get_version("models:/churn", alias="latest").version == 3
    with pytest.raises(InvalidInputError):
        registry.get_version("churn/1", 2)  # two answers to "which version?"


@pytest.mark.parametrize("uri", ["models:/", "models:/churn/", "models:/churn/0",
                                 "models:/churn/v1", "models:/churn@", "models:/a/b/c",
                                 "models:/bad name/1", "runs:/abc/model"])
def test_malformed_uris_are_invalid_input(registry: RegistryService, uri: str) -> None:
    with pytest.raises(InvalidInputError):
        registry.resolve(uri)


def test_unknown_names_versions_and_aliases(registry: RegistryService) -> None:
    register(registry, n=2)
    registry.set_alias("churn", "staging", 1)
    with pytest.raises(ModelAliasNotFound) as info:
        registry.resolve("models:/churn@production")
    assert "its aliases are staging" in info.value.message
    assert info.value.details["aliases"] == ["staging"]
    with pytest.raises(ModelVersionNotFound, match="versions are 1 to 2"):
        registry.resolve("models:/churn/3")
    for uri in ("models:/nope/1", "models:/nope@production", "models:/nope/latest"):
        with pytest.raises(ModelNotFound):
            registry.resolve(uri)
    assert parse_model_uri("models:/churn@production").uri == "models:/churn@production"


_ON_UNKNOWN: dict[str, Callable[[RegistryService], object]] = {
    "get_model": lambda r: r.get_model("nope"),
    "list_versions": lambda r: r.list_versions("nope"),
    "get_version": lambda r: r.store.get_version("nope", 1),
    "get_version_by_alias": lambda r: r.store.get_version_by_alias("nope", "production"),
    "update_model": lambda r: r.update_model("nope", description="x"),
    "update_version": lambda r: r.update_version("nope", 1, description="x"),
    "archive": lambda r: r.archive("nope", 1),
    "delete_alias": lambda r: r.delete_alias("nope", "production"),
}


@pytest.mark.parametrize("call", list(_ON_UNKNOWN), ids=list(_ON_UNKNOWN))
def test_unknown_model_raises_model_not_found(registry: RegistryService, call: str) -> None:
    register(registry)
    with pytest.raises(ModelNotFound) as info:
        _ON_UNKNOWN[call](registry)
    assert info.value.details.get("model") == "nope"
    assert registry.store.find_model("nope") is None  # nothing created on the way


def test_list_and_search_models(registry: RegistryService) -> None:
    for name in ("Churn-EU", "churn_us", "fraud", "churnXus"):
        register(registry, name)
    assert [m.name for m in registry.list_models()] == ["Churn-EU", "churnXus", "churn_us",
                                                        "fraud"]
    assert [m.name for m in registry.search_models(name_contains="CHURN")] == \
        ["Churn-EU", "churnXus", "churn_us"]
    assert [m.name for m in registry.list_models(name_contains="n_u")] == ["churn_us"]  # no LIKE
    assert registry.list_models(name_contains="%") == []


# --- comparing ------------------------------------------------------------------------------


def test_diff_compares_runs_signature_lineage_and_evaluation(registry: RegistryService,
                                                             backend: mc.Client) -> None:
    runs = []
    for c, acc in ((1.0, 0.8), (10.0, 0.9)):
        with backend.start_run(experiment="e", log_system=False,
                               params={"C": c, "kernel": "rbf"}) as run:
            run.log_metric("accuracy", acc)
        runs.append(run.run_id)
    sig = {"inputs": [{"name": "age", "type": "int64"}]}
    a = registry.register_model("churn", f"runs:/{runs[0]}/model", signature=sig,
                                datasets=["orders@v1"], evaluation={"auc": 0.7})
    b = registry.register_model("churn", f"runs:/{runs[1]}/model",
                                signature={"inputs": [{"name": "age", "type": "float64"}]},
                                datasets=["orders@v2"], evaluation={"auc": 0.75})
    diff = registry.diff("models:/churn/1", b)
    assert not diff.identical
    assert dict(diff.params) == {"C": ("1.0", "10.0")}
    assert dict(diff.metrics) == {"accuracy": (0.8, 0.9)}
    assert dict(diff.signature) == {"inputs[0].type": ("int64", "float64")}
    assert diff.lineage["datasets"] == (["orders@v1"], ["orders@v2"])
    assert set(diff.lineage) == {"datasets", "run_id", "source"}
    assert dict(diff.evaluation) == {"auc": (0.7, 0.75)}
    body = diff.to_dict()
    assert body["a"] == a.uri and body["metrics"]["accuracy"]["delta"] == pytest.approx(0.1)
    assert registry.diff(a, "churn/1").identical


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


def test_concurrent_registrations_get_distinct_consecutive_numbers(
    registry: RegistryService,
) -> None:
    per_thread = 5

    def work(i: int) -> list[int]:
        return [registry.register_model("race", f"s3://m/{i}/{k}").version
                for k in range(per_thread)]

    # The model does not exist yet: the four threads race to create it as well.
    numbers = [n for ns in _together(4, work) for n in ns]
    assert sorted(numbers) == list(range(1, 4 * per_thread + 1))
    versions = registry.list_versions("race")
    assert [v.version for v in versions] == list(range(4 * per_thread, 0, -1))
    assert len({v.source for v in versions}) == 4 * per_thread
    assert registry.get_model("race").latest_version == 4 * per_thread
    assert sorted(kinds(registry.events("race"))) == \
        ["model_created"] + ["version_created"] * (4 * per_thread)


def test_concurrent_alias_moves_leave_one_consistent_history(
    registry: RegistryService,
) -> None:
    register(registry, "race", n=4)
    _together(4, lambda i: registry.set_alias("race", "production", i + 1))
    final = registry.get_model("race").aliases["production"]
    moves = list(reversed([e for e in registry.events("race") if e.kind == "alias_set"]))
    assert len(moves) == 4
    # Each move starts where the one before it left the alias: no move was lost or doubled.
    assert [m.details["previous"] for m in moves] == [None] + [m.version for m in moves[:-1]]
    assert moves[-1].version == final
    assert [v.version for v in registry.list_versions("race") if v.aliases] == [final]


# --- SQL stores only ------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlModelRegistryStore]:
    uri = (f"sqlite:///{tmp_path / 'r.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_uri"))
    store = SqlModelRegistryStore.from_uri(uri)
    yield store
    store.close()


def test_a_failed_event_write_rolls_the_change_back(sql_store: SqlModelRegistryStore) -> None:
    sql_store.create_version("churn", source="s3://a", actor=ACTOR)
    sql_store.set_alias("churn", "production", 1, actor=ACTOR)
    original = SqlModelRegistryStore._insert_event

    def failing(self: Any, conn: Any, name: str, kind: str, **kwargs: Any) -> Any:
        if kind != "rejected":
            raise StoreError("disk full")
        return original(self, conn, name, kind, **kwargs)

    sql_store.create_version("churn", source="s3://b", actor=ACTOR)
    writes: list[Callable[[], object]] = [
        lambda: sql_store.create_version("churn", source="s3://c", actor=ACTOR),
        lambda: sql_store.create_version("fresh", source="s3://d"),
        lambda: sql_store.set_alias("churn", "production", 2, actor=ACTOR),
        lambda: sql_store.delete_alias("churn", "production", actor=ACTOR),
        lambda: sql_store.set_version_status("churn", 2, "archived"),
        lambda: sql_store.update_version("churn", 1, description="x"),
    ]
    with mock.patch.object(SqlModelRegistryStore, "_insert_event", failing):
        for write in writes:
            with pytest.raises(StoreError, match="disk full"):
                write()
    # Nothing half-registered: no change survives without its event.
    assert [(v.version, v.status, v.description) for v in sql_store.list_versions("churn")] == \
        [(2, "active", None), (1, "active", None)]
    assert sql_store.get_model("churn").latest_version == 2
    assert dict(sql_store.get_model("churn").aliases) == {"production": 1}
    assert sql_store.find_model("fresh") is None
    assert sql_store.create_version("churn", source="s3://e").version == 3
    assert sql_store.list_events("churn", max_results=1)[0].kind == "version_created"


def test_non_json_values_are_refused_naming_the_field(sql_store: SqlModelRegistryStore) -> None:
    with pytest.raises(InvalidInputError, match="signature"):
        sql_store.create_version("churn", source="s3://a", signature={"x": object()})
    assert sql_store.find_model("churn") is None
    with pytest.raises(InvalidInputError, match="kind"):
        sql_store.log_event("churn", "exploded")


# --- the server only ------------------------------------------------------------------------

WRITE, READ = "write-token-models", "read-token-models"


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore.from_uri(f"sqlite:///{tmp_path / 'server.db'}")
    yield store
    store.close()


def _app_client(tmp_path: Path, tracking: SqlTrackingStore, *, token: str | None = None,
                secured: bool = False) -> TestClient:
    settings = Settings(home=tmp_path / "home", tracking_uri=None, artifact_uri=None,
                        token=SecretStr(WRITE) if secured else None,
                        read_tokens=[SecretStr(READ)] if secured else [])
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    app = create_app(settings, stores=(tracking, artifacts))
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, headers=headers)


@pytest.fixture
def http(tmp_path: Path, tracking: SqlTrackingStore) -> Iterator[TestClient]:
    with _app_client(tmp_path, tracking) as client:
        yield client


def test_statuses_fields_and_times_on_the_wire(http: TestClient) -> None:
    made = http.post("/api/v1/models/churn/versions",
                     json={"source": "s3://a", "actor": "bob"})
    assert made.status_code == 201
    body = made.json()
    assert body["version"] == 1 and body["created_by"] == "bob"
    assert isinstance(body["created_at"], int) and body["created_at"] > 1_600_000_000_000
    bad = http.post("/api/v1/models/churn/versions", json={"source": "s3://b", "tag": {}})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "tag"
    moved = http.put("/api/v1/models/churn/aliases/production", json={"version": 1})
    assert moved.status_code == 200 and moved.json()["aliases"] == ["production"]
    missing = http.get("/api/v1/models/churn/aliases/staging")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_alias_not_found"
    assert http.get("/api/v1/models/nope").json()["error"]["code"] == "model_not_found"
    archived = http.put("/api/v1/models/churn/versions/1/status", json={"status": "archived"})
    assert archived.status_code == 409 and archived.json()["error"]["code"] == "invalid_state"
    gone = http.request("DELETE", "/api/v1/models/churn/aliases/production",
                        params={"actor": "bob"})
    assert gone.json() == {"alias": "production", "version": 1}
    events = http.get("/api/v1/models/churn/events").json()["events"]
    assert [e["kind"] for e in events][:3] == ["alias_deleted", "rejected", "alias_set"]
    assert events[0]["actor"] == "bob" and isinstance(events[0]["at"], int)
    paths = http.get("/openapi.json").json()["paths"]
    assert "/api/v1/models/{name}/aliases/{alias}" in paths


def test_writes_need_the_write_token(tmp_path: Path, tracking: SqlTrackingStore) -> None:
    with _app_client(tmp_path, tracking, token=WRITE, secured=True) as http:
        writer = RegistryService(RestModelRegistryStore(http), actor="w")
        writer.register_model("churn", "s3://a")
        writer.set_alias("churn", "production", 1)
    with _app_client(tmp_path, tracking, token=READ, secured=True) as http:
        reader = RegistryService(RestModelRegistryStore(http), actor="r")
        assert reader.resolve("models:/churn@production").version == 1
        assert len(reader.events("churn")) == 3
        for write in (lambda: reader.register_model("churn", "s3://b"),
                      lambda: reader.set_alias("churn", "staging", 1),
                      lambda: reader.delete_alias("churn", "production"),
                      lambda: reader.archive("churn", 1),
                      lambda: reader.update_model("churn", description="x"),
                      lambda: reader.create_model("other")):
            with pytest.raises(PermissionDenied):
                write()
        assert [v.version for v in reader.list_versions("churn")] == [1]
        assert dict(reader.get_model("churn").aliases) == {"production": 1}
