"""DeploymentService on a real SQLite store: every strategy, the controller fed by worker reports,
and two controllers racing on one deployment. Time is a hand-stepped clock; nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlcycle.deploy import CONTROLLER, DeploymentConfig, DeploymentService, VersionStats
from mlcycle.entities import WorkerReport
from mlcycle.errors import (
    DeploymentNotFound,
    InvalidInputError,
    InvalidStateError,
    ModelAliasNotFound,
)
from mlcycle.registry.service import RegistryService
from mlcycle.store.sql import connect
from mlcycle.store.sql.deployments import SqlDeploymentStore
from mlcycle.store.sql.registry import SqlModelRegistryStore

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqlDeploymentStore, RegistryService]]:
    engine = connect(f"sqlite:///{tmp_path / 'meta.db'}")
    registry = RegistryService(SqlModelRegistryStore(engine), actor="tester")
    for _ in range(3):
        registry.register_model("iris", "runs:/" + "a" * 32 + "/model")
    registry.register_model("other", "runs:/" + "b" * 32 + "/model")
    registry.set_alias("iris", "candidate", 2)
    yield SqlDeploymentStore(engine), registry
    engine.dispose()


@pytest.fixture
def service(parts: tuple[SqlDeploymentStore, RegistryService], clock: Clock
            ) -> DeploymentService:
    store, registry = parts
    return DeploymentService(store, registry, clock=clock)


def report(service: DeploymentService, worker: str, *, at: float, ready: tuple[int, ...] = (),
           stats: dict[int, VersionStats] | None = None, revision: int | None = None,
           rollout: int | None = None, stopped: bool = False) -> None:
    d = service.get("web")
    service.report(WorkerReport(
        deployment="web", worker_id=worker, heartbeat_at=datetime.fromtimestamp(at, UTC),
        revision=d.revision if revision is None else revision,
        rollout=d.rollout if rollout is None else rollout, ready_versions=ready,
        stats={str(v): s.to_json() for v, s in (stats or {}).items()},
        info={"stopped": "2026-01-01T00:00:00+00:00"} if stopped else {}))


def traffic(requests: int, errors: int = 0, latency: float = 0.003) -> VersionStats:
    s = VersionStats()
    for i in range(requests):
        s.observe(latency, error=i < errors)
    return s


# --- deploy, promote, rollback by hand ------------------------------------------------------


def test_first_deploy_creates_the_deployment_with_that_version_stable(
        service: DeploymentService) -> None:
    d = service.deploy("web", "models:/iris/1", strategy="canary", actor="ann")
    assert (d.stable_version, d.candidate_version, d.phase, d.revision) == (1, None, "stable", 1)
    [created] = service.history("web")
    assert created.kind == "created" and created.actor == "ann"
    assert "first deployment" in created.reason and "canary applies from the next" in \
        created.reason


def test_direct_switches_at_once_and_rollback_swaps_back(service: DeploymentService) -> None:
    service.deploy("web", "models:/iris/1")
    d = service.deploy("web", "models:/iris@candidate")  # version 2
    assert (d.stable_version, d.previous_version, d.phase, d.rollout) == (2, 1, "stable", 1)
    assert service.history("web")[0].kind == "switched"
    back = service.rollback("web", actor="ann", reason="bad answers")
    assert (back.stable_version, back.previous_version) == (1, 2)
    event = service.history("web")[0]
    assert event.kind == "rolled_back" and event.reason.startswith("bad answers: back to "
                                                                   "version 1")


def test_deploy_refusals_name_the_problem(service: DeploymentService) -> None:
    service.deploy("web", "models:/iris/1")
    with pytest.raises(InvalidInputError, match="model_uri") as info:
        service.deploy("web", "runs:/abc/model")
    assert info.value.details["field"] == "model_uri"
    with pytest.raises(InvalidInputError, match="serves model 'iris'"):
        service.deploy("web", "models:/other/1")
    with pytest.raises(InvalidInputError, match="strategy"):
        service.deploy("web", "models:/iris/2", strategy="rolling")
    with pytest.raises(InvalidInputError, match="steps"):
        service.deploy("web", "models:/iris/2", strategy="canary", config={"steps": [50, 5]})
    with pytest.raises(InvalidInputError, match="did you mean 'min_requests'"):
        service.deploy("web", "models:/iris/2", config={"min_request": 5})
    with pytest.raises(ModelAliasNotFound):
        service.deploy("web", "models:/iris@production")
    service.deploy("web", "models:/iris/2", strategy="canary")
    with pytest.raises(InvalidStateError, match="promote or roll back first"):
        service.deploy("web", "models:/iris/3", strategy="canary")
    assert service.get("web").candidate_version == 2  # nothing refused changed anything


def test_deploying_the_stable_version_again_changes_nothing(service: DeploymentService) -> None:
    first = service.deploy("web", "models:/iris/1")
    again = service.deploy("web", "models:/iris/1", strategy="canary")
    assert again == first and len(service.history("web")) == 1


def test_promote_and_rollback_need_something_to_act_on(service: DeploymentService) -> None:
    service.deploy("web", "models:/iris/1")
    with pytest.raises(InvalidStateError, match="no candidate to promote"):
        service.promote("web")
    with pytest.raises(InvalidStateError, match="nothing to roll back to"):
        service.rollback("web")
    with pytest.raises(DeploymentNotFound):
        service.promote("nope")


def test_shadow_waits_for_a_person(service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    d = service.deploy("web", "models:/iris/2", strategy="shadow", config={"shadow_percent": 20})
    assert (d.phase, d.candidate_version, d.weight) == ("shadow", 2, 20.0)
    clock.now += 3600
    assert service.tick("web") is None
    d = service.promote("web", actor="ann", reason="answers agree")
    assert (d.stable_version, d.previous_version, d.phase) == (2, 1, "stable")
    assert service.history("web")[0].reason == "answers agree: version 2 promoted over " \
        "version 1 (shadow)"


# --- blue-green ------------------------------------------------------------------------------


def test_blue_green_switches_when_every_live_worker_has_the_candidate_ready(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    d = service.deploy("web", "models:/iris/2", strategy="blue-green")
    assert (d.phase, d.candidate_version, d.weight) == ("warming", 2, 0.0)
    report(service, "w1", at=clock.now, ready=(1, 2))
    report(service, "w2", at=clock.now, ready=(1,))
    report(service, "dead", at=clock.now - 60, ready=(1,))  # not live: not waited for
    first = service.tick("web")
    assert first is not None and first.kind == "decision" and "w2" in first.reason
    assert "dead" not in first.reason
    assert service.tick("web") is None  # the same wait is not recorded twice
    assert service.get("web").phase == "warming"
    report(service, "w2", at=clock.now, ready=(1, 2), revision=d.revision - 1)  # stale state
    assert service.tick("web") is None
    report(service, "w2", at=clock.now, ready=(1, 2))
    event = service.tick("web")
    assert event is not None and event.kind == "switched" and event.actor == CONTROLLER
    assert "every live worker (2)" in event.reason
    d = service.get("web")
    assert (d.stable_version, d.previous_version, d.candidate_version, d.phase) == \
        (2, 1, None, "stable")


def test_a_worker_that_said_goodbye_is_not_waited_for(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="blue-green")
    report(service, "gone", at=clock.now, ready=(1,), stopped=True, stats={1: traffic(10)})
    report(service, "w1", at=clock.now, ready=(1, 2))
    status = service.status("web")
    assert [w.report.worker_id for w in status.live_workers] == ["w1"]
    assert status.stats[1].requests == 10  # what it served still counts
    event = service.tick("web")
    assert event is not None and event.kind == "switched" and "every live worker (1)" in \
        event.reason


def test_blue_green_without_live_workers_switches_at_once(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="blue-green")
    event = service.tick("web")
    assert event is not None and event.kind == "switched"
    assert "no live workers" in event.reason
    assert service.get("web").stable_version == 2


def test_blue_green_rolls_back_after_the_switch_timeout_naming_the_workers(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="blue-green",
                   config={"switch_timeout_s": 30})
    clock.now += 29
    report(service, "w1", at=clock.now, ready=(1,))
    report(service, "w2", at=clock.now, ready=(1, 2))
    assert service.tick("web") is not None  # the decision to wait
    assert service.get("web").phase == "warming"
    clock.now += 2
    report(service, "w1", at=clock.now, ready=(1,))
    event = service.tick("web")
    assert event is not None and event.kind == "rolled_back"
    assert "timed out after 30 s" in event.reason and "w1" in event.reason
    assert "w2" not in event.reason
    assert event.details["not_ready"] == ["w1"]
    d = service.get("web")
    assert (d.stable_version, d.candidate_version, d.phase) == (1, None, "stable")


# --- canary -----------------------------------------------------------------------------------


def test_canary_steps_through_every_weight_to_promotion(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    d = service.deploy("web", "models:/iris/2", strategy="canary",
                       config={"steps": [10, 50, 100], "min_requests": 100})
    assert (d.phase, d.weight, d.step, d.rollout) == ("canary", 10.0, 0, 1)
    weights = []
    served = 0
    for step_target in (10.0, 50.0, 100.0):
        assert service.get("web").weight == step_target
        served += 99
        # Two workers share the traffic; their counters add up.
        report(service, "w1", at=clock.now, stats={1: traffic(500), 2: traffic(served - 40)})
        report(service, "w2", at=clock.now, stats={1: traffic(500), 2: traffic(40)})
        waited = service.tick("web")
        assert waited is not None and waited.kind == "decision"
        assert waited.details["requests_needed"] == 1
        assert "1 more candidate requests" in waited.reason
        served += 1
        report(service, "w2", at=clock.now, stats={1: traffic(500), 2: traffic(41)})
        event = service.tick("web")
        assert event is not None
        weights.append((event.kind, service.get("web").weight))
    assert weights == [("step", 50.0), ("step", 100.0), ("promoted", 0.0)]
    d = service.get("web")
    assert (d.stable_version, d.previous_version, d.candidate_version, d.phase) == \
        (2, 1, None, "stable")
    assert "_step" not in d.config
    kinds = [e.kind for e in service.history("web")]
    assert kinds == ["promoted", "decision", "step", "decision", "step", "decision",
                     "rollout_started", "created"]


def test_canary_waits_for_min_step_seconds(service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="canary",
                   config={"min_requests": 10, "min_step_seconds": 60})
    report(service, "w1", at=clock.now, stats={1: traffic(100), 2: traffic(50)})
    event = service.tick("web")
    assert event is not None and event.kind == "decision" and "60 more seconds" in event.reason
    clock.now += 61
    event = service.tick("web")
    assert event is not None and event.kind == "step"


def test_canary_rolls_back_on_errors_and_history_says_why(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="canary")
    report(service, "w1", at=clock.now, stats={1: traffic(2000, errors=10),
                                               2: traffic(150, errors=6)})
    event = service.tick("web")
    assert event is not None and event.kind == "rolled_back" and event.actor == CONTROLLER
    assert "z-test" in event.reason
    assert event.details["error_test"]["p_value"] < 0.01
    assert event.details["candidate"]["errors"] == 6
    d = service.get("web")
    assert (d.stable_version, d.candidate_version, d.phase, d.weight) == (1, None, "stable", 0)
    assert service.history("web")[0] == event


def test_status_sums_the_current_rollout_dead_workers_included(
        service: DeploymentService, clock: Clock) -> None:
    service.deploy("web", "models:/iris/1")
    service.deploy("web", "models:/iris/2", strategy="canary")
    report(service, "old", at=clock.now - 100, rollout=0, stats={1: traffic(999)})
    report(service, "gone", at=clock.now - 100, stats={1: traffic(10), 2: traffic(3)})
    report(service, "w1", at=clock.now, stats={1: traffic(20), 2: traffic(4, errors=1)})
    status = service.status("web")
    assert status.stats[1].requests == 30 and status.stats[2].requests == 7
    assert status.stats[2].errors == 1
    assert [w.report.worker_id for w in status.live_workers] == ["w1"]
    assert status.verdict is not None and status.verdict.action == "wait"
    assert status.config == DeploymentConfig()


def test_two_controllers_ticking_at_once_apply_one_change(
        parts: tuple[SqlDeploymentStore, RegistryService], clock: Clock) -> None:
    store, registry = parts
    a = DeploymentService(store, registry, clock=clock)
    b = DeploymentService(SqlDeploymentStore(store.engine), registry, clock=clock)
    a.deploy("web", "models:/iris/1")
    a.deploy("web", "models:/iris/2", strategy="canary", config={"min_requests": 10})
    report(a, "w1", at=clock.now, stats={1: traffic(100), 2: traffic(20)})
    seen = a.get("web")

    # b reads the same revision as a, and writes after a did: compare-and-set refuses it.
    real_get = b.store.get_deployment
    b.store.get_deployment = lambda name: seen  # type: ignore[method-assign]
    first = a.tick("web")
    second = b.tick("web")
    b.store.get_deployment = real_get  # type: ignore[method-assign]
    assert first is not None and first.kind == "step"
    assert second is None
    d = a.get("web")
    assert (d.step, d.weight, d.revision) == (1, 25.0, seen.revision + 1)
    assert [e.kind for e in a.history("web")].count("step") == 1


def test_the_controller_runs_the_same_through_a_server(tmp_path: Path, clock: Clock) -> None:
    """Workers that follow a deployment on an ``mlcycle server`` tick through its REST API."""
    import mlcycle as mc
    from mlcycle.config import Settings
    from mlcycle.store.rest.deployments import RestDeploymentStore
    from mlcycle.testing.server import live_server

    with live_server(Settings(home=tmp_path / "server")) as url, \
            mc.Client(url, settings=Settings(home=tmp_path / "client")) as client:
        with client.start_run(experiment="iris", log_system=False) as run:
            pass
        for _ in range(2):
            client.registry.register_model("iris", f"runs:/{run.run_id}/model")
        assert isinstance(client.deployments.store, RestDeploymentStore)
        service = DeploymentService(client.deployments.store, client.registry, clock=clock)
        service.deploy("web", "models:/iris/1")
        service.deploy("web", "models:/iris/2", strategy="canary", config={"min_requests": 10})
        report(service, "w1", at=clock.now, stats={1: traffic(100), 2: traffic(10)})
        event = service.tick("web")
        assert event is not None and event.kind == "step"
        assert service.get("web").weight == 25.0
        report(service, "w1", at=clock.now, stats={1: traffic(100), 2: traffic(40, errors=8)})
        event = service.tick("web")
        assert event is not None and event.kind == "rolled_back"
        assert "max_error_rate" in event.reason
        assert service.status("web").deployment.candidate_version is None
