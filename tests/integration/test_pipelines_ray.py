"""The same pipelines and sweeps on the local executor and on a local Ray (started once for
this module, dashboard off): the same records and results, failures, retries and resume."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlcycle as mc
from mlcycle.config import Settings
from mlcycle.errors import StepFailed
from mlcycle.pipelines import (
    Float,
    LocalExecutor,
    PipelineResult,
    PipelineRunner,
    RayExecutor,
    pipeline,
)
from mlcycle.testing.clock import FakeClock
from mlcycle.types import RunStatus

pytestmark = pytest.mark.slow


@mc.step
def numbers(n: int) -> list[int]:
    print(f"making {n} numbers")
    return list(range(n))


@mc.step(outputs=("low", "high"))
def halves(xs: list[int]) -> tuple[list[int], list[int]]:
    return xs[: len(xs) // 2], xs[len(xs) // 2:]


@mc.step
def slow_sum(xs: list[int], pause: float) -> int:
    time.sleep(pause)
    mc.log_metric("partial", float(sum(xs)))
    return sum(xs)


@mc.step
def frame(low: int, high: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"x": range(low + high)})


@mc.step
def finish(low: int, high: int, df: Any, flag: str = "") -> dict[str, Any]:
    if flag and Path(flag).exists():
        raise RuntimeError(f"{flag} is there")
    return {"total": low + high, "rows": len(df)}


@pipeline
def flow(n: int = 6, flag: str = ""):
    low, high = halves(numbers(n))
    a, b = slow_sum(low, 0.5), slow_sum(high, 0.5)  # the two may run at once
    return finish(a, b, frame(a, b), flag)


@mc.step(retries=2, backoff=0.5, backoff_factor=3.0)
def always_fails(x: int) -> int:
    print("trying")
    raise OSError(f"disk {x} is gone")


@pipeline
def doomed():
    return always_fails(numbers(1))


def objective(x: float, kind: str) -> float:
    return (x - 1.0) ** 2 + (0.25 if kind == "b" else 0.0)


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    executor = RayExecutor(num_cpus=2, init_options={"log_to_driver": False}).start()
    assert executor.workers == 2  # a local Ray, started once for the module
    yield executor
    executor.shutdown()


def client_in(folder: Path) -> mc.Client:
    return mc.Client(settings=Settings(home=folder, flush_interval=0.2))


def comparable(result: PipelineResult) -> list[tuple[Any, ...]]:
    return [(s.node, s.step, s.status, s.cache_hit, s.cache_key, s.code_hash, dict(s.params),
             dict(s.inputs), tuple(s.outputs), s.attempts, tuple(s.upstream))
            for s in result.steps]


def test_local_and_ray_give_the_same_records_and_results(
        tmp_path: Path, ray_executor: RayExecutor) -> None:
    results = {}
    for name, executor in (("local", LocalExecutor(workers=2)), ("ray", ray_executor)):
        with client_in(tmp_path / name) as client, PipelineRunner(
                client, executor=executor) as runner:
            result = runner.run(flow, (), {"n": 6})
            results[name] = result
            steps = {s.node: s for s in result.steps}
            first, second = steps["slow_sum"], steps["slow_sum#2"]
            assert first.started_at and first.ended_at and second.started_at and second.ended_at
            assert first.started_at < second.ended_at and second.started_at < first.ended_at
            assert "making 6 numbers" in steps["numbers"].logs
            child = client.get_run(first.run_id)  # type: ignore[arg-type]
            assert child.metrics == {"partial": 3.0} and child.status == RunStatus.FINISHED
            assert child.parent_run_id == result.run.run_id
            again = runner.run(flow, (), {"n": 6})
            assert all(s.cache_hit for s in again.steps) and again.output == result.output
        if executor is not ray_executor:
            executor.close()
    local, ray = results["local"], results["ray"]
    assert local.output == ray.output == {"total": 15, "rows": 15}
    assert comparable(local) == comparable(ray)
    assert (local.run.executor, ray.run.executor) == ("local", "ray")


def test_a_failing_step_on_ray_is_retried_then_recorded(
        tmp_path: Path, ray_executor: RayExecutor) -> None:
    clock = FakeClock()
    with client_in(tmp_path) as client, PipelineRunner(
            client, executor=ray_executor, clock=clock) as runner:
        with pytest.raises(StepFailed, match=r"OSError: disk \[0\] is gone") as info:
            runner.run(doomed)
        steps = {s.node: s for s in runner.store.list_step_runs(
            info.value.details["pipeline_run_id"])}
    failed = steps["always_fails"]
    assert failed.status == "failed" and failed.attempts == 3
    assert failed.error is not None and failed.error["type"] == "OSError"
    assert "trying" in failed.logs
    assert clock.sleeps == [0.5, 1.5]


def test_resume_on_ray_reuses_what_finished(tmp_path: Path, ray_executor: RayExecutor) -> None:
    flag = tmp_path / "stop"
    flag.touch()
    with client_in(tmp_path / "home") as client, PipelineRunner(
            client, executor=ray_executor) as runner:
        with pytest.raises(StepFailed, match="is there") as info:
            runner.run(flow, (), {"n": 4, "flag": str(flag)})
        flag.unlink()
        resumed = runner.resume(info.value.details["pipeline_run_id"])
    assert resumed.output == {"total": 6, "rows": 6}
    hits = {s.node: s.cache_hit for s in resumed.steps}
    assert hits == {"numbers": True, "halves": True, "slow_sum": True, "slow_sum#2": True,
                    "frame": True, "finish": False}


def test_a_sweep_on_ray_matches_the_local_one(tmp_path: Path,
                                              ray_executor: RayExecutor) -> None:
    space = {"x": Float(-2.0, 3.0), "kind": ["a", "b"]}
    found = {}
    for name, executor in (("local", "local"), ("ray", ray_executor)):
        with client_in(tmp_path / name) as client:
            result = mc.sweep(objective, space, 6, sampler="random", seed=3, client=client,
                              executor=executor)
            children = client.search_runs(
                filter=f"attributes.parent_run_id = '{result.run_id}'")
            assert len(children) == 6
            assert all(r.status == RunStatus.FINISHED for r in children)
            assert client.get_run(result.run_id).tags["mlcycle.executor"] == name
        found[name] = [(t.number, dict(t.params), t.value, t.state) for t in result.trials]
    assert found["local"] == found["ray"]
