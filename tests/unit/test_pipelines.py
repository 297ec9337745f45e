"""Pipelines: the graph, caching and each thing that invalidates it, parallel steps, failures,
retries with backoff, resume, output formats, nested tracking runs, sweeps, and the CLI."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

import mlcycle as mc
from mlcycle.cli import output
from mlcycle.cli.main import app
from mlcycle.config import Settings
from mlcycle.entities import StepRun
from mlcycle.errors import (
    InvalidInputError,
    InvalidStateError,
    PipelineError,
    PipelineRunNotFound,
    StepFailed,
)
from mlcycle.pipelines import (
    Float,
    Int,
    LocalExecutor,
    PipelineResult,
    PipelineRunner,
    pipeline,
)
from mlcycle.pipelines.codehash import cache_key, canonical, code_hash
from mlcycle.testing.clock import FakeClock
from mlcycle.types import RunStatus

CALLS: Counter[str] = Counter()
FAIL = {"transform": False}
FLAKY = {"left": 0}


@mc.step
def load(n: int) -> list[int]:
    CALLS["load"] += 1
    print(f"loading {n} rows")
    return list(range(n))


@mc.step
def is_even(xs: list[int]) -> bool:
    CALLS["is_even"] += 1
    return len(xs) % 2 == 0


@mc.step
def report(flag: bool, label: str = "parity") -> str:
    CALLS["report"] += 1
    return f"{label}: {flag}"


@pipeline
def parity(n: int = 4):
    return report(is_even(load(n)))


@mc.step
def transform(xs: list[int], factor: int = 2) -> list[int]:
    CALLS["transform"] += 1
    if FAIL["transform"]:
        print("about to fail")
        raise ValueError(f"bad row {len(xs)}")
    return [x * factor for x in xs]


@mc.step
def side(n: int) -> int:
    CALLS["side"] += 1
    return n * 10


@mc.step
def combine(xs: list[int], extra: int) -> int:
    CALLS["combine"] += 1
    return sum(xs) + extra


@pipeline
def fragile(n: int = 3):
    xs = load(n)
    return combine(transform(xs), side(n))


@mc.step
def nap(seconds: float, name: str) -> str:
    time.sleep(seconds)
    return name


@mc.step
def both(a: str, b: str) -> str:
    return a + b


@pipeline
def naps():
    return both(nap(0.3, "a"), nap(0.3, "b"))


@mc.step(retries=3, backoff=1.0, backoff_factor=2.0)
def flaky(x: int) -> int:
    CALLS["flaky"] += 1
    if FLAKY["left"] > 0:
        FLAKY["left"] -= 1
        raise ConnectionError("try again")
    return x + 1


@pipeline
def retrying(x: int = 1):
    return flaky(x)


@mc.step(outputs=("head", "tail"))
def split(xs: list[int]) -> tuple[list[int], list[int]]:
    return xs[:2], xs[2:]


@mc.step
def frames(n: int) -> dict[str, Any]:
    return {"pandas": pd.DataFrame({"x": range(n)}), "polars": pl.DataFrame({"y": range(n)})}


@mc.step
def to_pandas(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n), "name": [f"r{i}" for i in range(n)]})


@mc.step
def to_polars(df: pd.DataFrame) -> pl.DataFrame:
    assert isinstance(df, pd.DataFrame)
    return pl.from_pandas(df)


@mc.step
def write_file(df: pl.DataFrame) -> Path:
    path = Path("rows.csv")
    df.write_csv(path)
    return path


@mc.step
def read_file(path: Path) -> int:
    assert isinstance(path, Path) and path.name == "rows.csv"
    return len(path.read_text().splitlines())


@pipeline
def formats_flow(n: int = 5):
    head, tail = split(load(n))
    df = to_pandas(n)
    return {"head": head, "tail": tail, "rows": read_file(write_file(to_polars(df))),
            "df": df}


@mc.step
def logs_metric(x: int) -> int:
    mc.log_metric("doubled", x * 2)
    return x * 2


@pipeline
def tracked(x: int = 3):
    return logs_metric(x)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    FAIL["transform"] = False
    FLAKY["left"] = 0


@pytest.fixture
def client(settings: Settings) -> Iterator[mc.Client]:
    c = mc.Client(settings=settings)
    yield c
    c.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runner(client: mc.Client, clock: FakeClock) -> Iterator[PipelineRunner]:
    executor = LocalExecutor(workers=2)
    with PipelineRunner(client, executor=executor, clock=clock) as r:
        yield r
    executor.close()


def steps_of(result: PipelineResult) -> dict[str, StepRun]:
    return {s.node: s for s in result.steps}


# --- the graph --------------------------------------------------------------------------------


def test_a_step_outside_a_pipeline_is_a_plain_call() -> None:
    assert load(3) == [0, 1, 2]
    assert report(True, label="x") == "x: True"


def test_a_pipeline_runs_its_steps_and_returns_the_values(runner: PipelineRunner) -> None:
    result = runner.run(parity, (), {"n": 4})
    assert result.output == "parity: True"
    assert result.run.status == "finished"
    assert [s.node for s in result.steps] == ["load", "is_even", "report"]
    steps = steps_of(result)
    assert steps["is_even"].upstream == ("load",)
    assert steps["load"].params == {"n": 4}
    assert steps["report"].params == {"flag": {"$input": "flag"}, "label": "parity"}
    assert steps["is_even"].inputs == {"xs": steps["load"].outputs[0].digest}
    assert all(s.status == "finished" and s.attempts == 1 and not s.cache_hit
               for s in result.steps)


def test_handles_have_no_value_while_building(runner: PipelineRunner) -> None:
    @pipeline
    def peeks():
        xs = load(3)
        if xs:
            return xs
        return None

    with pytest.raises(PipelineError, match="no value while the pipeline is being built"):
        runner.run(peeks)


def test_bad_definitions_get_clear_errors(runner: PipelineRunner) -> None:
    @pipeline
    def nothing():
        return 1

    with pytest.raises(InvalidInputError, match="called no step"):
        runner.run(nothing)

    @pipeline
    def wrong_args():
        return load(1, 2, 3)

    with pytest.raises(InvalidInputError, match="step 'load'"):
        runner.run(wrong_args)

    with pytest.raises(InvalidInputError, match="may not be named cache"):
        pipeline(lambda cache: None)  # not a def: refused too
    with pytest.raises(InvalidInputError, match="may not be named cache"):
        def takes_cache(cache: bool) -> None: ...
        pipeline(takes_cache)
    with pytest.raises(InvalidInputError, match="'retries' parameter of step"):
        mc.step(retries=-1)(lambda: None)
    with pytest.raises(InvalidInputError, match="pipeline 'parity'"):
        runner.run(parity, (1, 2))


# --- caching ----------------------------------------------------------------------------------


def test_a_second_run_is_served_from_the_cache(runner: PipelineRunner) -> None:
    first = runner.run(parity, (), {"n": 4})
    second = runner.run(parity, (), {"n": 4})
    assert second.output == first.output
    assert CALLS == {"load": 1, "is_even": 1, "report": 1}
    for before, after in zip(first.steps, second.steps, strict=True):
        assert after.cache_hit and after.status == "finished" and after.attempts == 0
        assert after.reused_from == before.step_run_id
        assert after.run_id == before.run_id  # the tracking run that made the outputs
        assert after.cache_key == before.cache_key and after.outputs == before.outputs
    third = runner.run(parity, (), {"n": 4})  # a hit of a hit points at the maker
    assert [s.reused_from for s in third.steps] == [s.step_run_id for s in first.steps]


def test_a_param_change_reruns_the_step_and_what_its_output_changes(
        runner: PipelineRunner) -> None:
    runner.run(parity, (), {"n": 4})
    changed = steps_of(runner.run(parity, (), {"n": 6}))
    # load's param changed; is_even's input digest changed; report's input (True) did not.
    assert not changed["load"].cache_hit and not changed["is_even"].cache_hit
    assert changed["report"].cache_hit
    assert CALLS == {"load": 2, "is_even": 2, "report": 1}


def test_an_input_change_invalidates_downstream(runner: PipelineRunner) -> None:
    runner.run(parity, (), {"n": 4})
    odd = steps_of(runner.run(parity, (), {"n": 5}))
    assert [odd[k].cache_hit for k in ("load", "is_even", "report")] == [False, False, False]


def test_positional_and_keyword_arguments_give_the_same_key(runner: PipelineRunner) -> None:
    @pipeline
    def positional():
        return report(True, "parity")

    @pipeline
    def keyword():
        return report(label="parity", flag=True)

    a, b = runner.run(positional), runner.run(keyword)
    assert b.steps[0].cache_hit and a.steps[0].cache_key == b.steps[0].cache_key


def test_a_code_change_invalidates_but_comments_and_docstrings_do_not(
        runner: PipelineRunner) -> None:
    def version_1() -> Any:
        def compute(x: int) -> int:
            return x + 1
        return compute

    def version_1_reformatted() -> Any:
        def compute(x: int) -> int:
            """Now documented."""
            # and commented
            return (x
                    + 1)
        return compute

    def version_2() -> Any:
        def compute(x: int) -> int:
            return x + 2
        return compute

    v1, v1_reformatted, v2 = version_1(), version_1_reformatted(), version_2()
    assert code_hash(v1) == code_hash(v1_reformatted) != code_hash(v2)

    def flow_with(fn: Any) -> Any:
        step = mc.step(name="compute")(fn)

        @pipeline
        def flow():
            return step(1)

        return flow

    first = runner.run(flow_with(v1))
    assert runner.run(flow_with(v1_reformatted)).steps[0].cache_hit
    changed = runner.run(flow_with(v2))
    assert not changed.steps[0].cache_hit and changed.output == 3 and first.output == 2


def test_a_change_in_a_same_module_helper_changes_the_code_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"helpers_{uuid.uuid4().hex[:8]}"
    source = textwrap.dedent("""
        import mlcycle as mc

        def scale(x):
            return x * {factor}

        @mc.step
        def apply(x):
            return [scale(v) for v in x]
    """)
    (tmp_path / f"{name}.py").write_text(source.format(factor=2))
    module = importlib.import_module(name)
    before = code_hash(module.apply.fn)
    (tmp_path / f"{name}.py").write_text(source.format(factor=3))
    module = importlib.reload(module)
    assert code_hash(module.apply.fn) != before


def test_the_key_covers_name_version_params_inputs_and_mlcycle() -> None:
    base = {"step": "s", "code": "c", "params": {"a": 1}, "inputs": {"x": "d"}, "version": None}
    key = cache_key(**base)  # type: ignore[arg-type]
    for field, other in [("step", "t"), ("code", "c2"), ("params", {"a": 2}),
                         ("inputs", {"x": "e"}), ("version", "2")]:
        assert cache_key(**{**base, field: other}) != key  # type: ignore[arg-type]
    assert canonical(float("nan")) != canonical(None)
    assert canonical((1, {"b": float("inf")})) == [1, {"b": {"$float": "Infinity"}}]


def test_no_cache_runs_every_step_and_records_keys_for_later(runner: PipelineRunner) -> None:
    first = runner.run(parity, (), {"n": 4})
    forced = runner.run(parity, (), {"n": 4}, cache=False)
    assert not any(s.cache_hit for s in forced.steps)
    assert forced.run.cache is False
    assert CALLS == {"load": 2, "is_even": 2, "report": 2}
    assert [s.cache_key for s in forced.steps] == [s.cache_key for s in first.steps]
    assert all(s.cache_hit for s in runner.run(parity, (), {"n": 4}).steps)


def test_a_step_with_cache_off_always_runs(runner: PipelineRunner) -> None:
    @mc.step(cache=False)
    def now() -> float:
        CALLS["now"] += 1
        return time.time()

    @pipeline
    def clocked():
        return now()

    runner.run(clocked)
    assert not runner.run(clocked).steps[0].cache_hit and CALLS["now"] == 2


def test_a_missing_output_object_is_a_cache_miss(runner: PipelineRunner,
                                                 client: mc.Client) -> None:
    first = runner.run(parity, (), {"n": 4})
    digest = first.steps[0].outputs[0].digest
    obj = Path(client.service.artifacts.root) / "objects" / digest[:2] / digest[2:]  # type: ignore[attr-defined]
    obj.chmod(0o644)
    obj.unlink()
    again = steps_of(runner.run(parity, (), {"n": 4}))
    assert not again["load"].cache_hit and again["is_even"].cache_hit


# --- parallelism ------------------------------------------------------------------------------


def test_independent_steps_run_at_the_same_time(runner: PipelineRunner) -> None:
    result = runner.run(naps)
    steps = steps_of(result)
    a, b, joined = steps["nap"], steps["nap#2"], steps["both"]
    assert result.output == "ab"
    assert a.started_at and a.ended_at and b.started_at and b.ended_at and joined.started_at
    assert a.started_at < b.ended_at and b.started_at < a.ended_at  # the two overlap
    assert joined.started_at >= max(a.ended_at, b.ended_at)  # and the join waits for both


# --- failures, retries, resume ----------------------------------------------------------------


def test_a_raising_step_is_recorded_as_failed(runner: PipelineRunner,
                                              client: mc.Client) -> None:
    FAIL["transform"] = True
    with pytest.raises(StepFailed, match=r"step 'transform'.*ValueError: bad row 3") as info:
        runner.run(fragile, (), {"n": 3})
    prid = info.value.details["pipeline_run_id"]
    assert info.value.details["step"] == "transform"
    record = runner.store.get_pipeline_run(prid)
    assert record.status == "failed" and record.ended_at is not None
    assert record.error == {"step": "transform", "type": "ValueError", "message": "bad row 3"}
    steps = {s.node: s for s in runner.store.list_step_runs(prid)}
    failed = steps["transform"]
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and failed.error["type"] == "ValueError"
    assert "bad row 3" in failed.error["traceback"]
    assert "about to fail" in failed.logs
    assert steps["load"].status == "finished" and steps["side"].status == "finished"
    assert steps["combine"].status == "skipped"
    assert client.get_run(failed.run_id).status == RunStatus.FAILED  # type: ignore[arg-type]
    assert client.get_run(record.run_id).status == RunStatus.FAILED  # type: ignore[arg-type]


def test_retries_wait_with_exponential_backoff(runner: PipelineRunner,
                                               clock: FakeClock) -> None:
    FLAKY["left"] = 2
    result = runner.run(retrying, (), {"x": 1})
    assert result.output == 2
    step = result.steps[0]
    assert step.status == "finished" and step.attempts == 3 and step.error is None
    assert clock.sleeps == [1.0, 2.0]
    assert CALLS["flaky"] == 3


def test_retries_run_out(runner: PipelineRunner, clock: FakeClock) -> None:
    FLAKY["left"] = 10
    with pytest.raises(StepFailed, match="after 4 attempt"):
        runner.run(retrying, (), {"x": 1})
    assert clock.sleeps == [1.0, 2.0, 4.0]
    step = runner.store.list_pipeline_runs().items[0]
    flaky_run = runner.store.list_step_runs(step.pipeline_run_id)[0]
    assert flaky_run.status == "failed" and flaky_run.attempts == 4
    assert flaky_run.error is not None and flaky_run.error["type"] == "ConnectionError"


def test_backoff_is_capped() -> None:
    policy = mc.step(retries=5, backoff=1, backoff_factor=10, max_backoff=30)(
        lambda: None).retry
    assert [policy.delay(n) for n in range(1, 5)] == [1, 10, 30, 30]


def test_resume_reruns_from_the_failed_step_and_reuses_the_rest(
        runner: PipelineRunner) -> None:
    FAIL["transform"] = True
    with pytest.raises(StepFailed) as info:
        runner.run(fragile, (), {"n": 3}, cache=False)
    prid = info.value.details["pipeline_run_id"]
    old = {s.node: s for s in runner.store.list_step_runs(prid)}
    FAIL["transform"] = False  # "fixed"
    resumed = runner.resume(prid)
    assert resumed.output == sum(x * 2 for x in range(3)) + 30
    assert resumed.run.resumed_from == prid and resumed.run.cache is False
    steps = steps_of(resumed)
    for reused in ("load", "side"):
        assert steps[reused].cache_hit and steps[reused].reused_from == old[reused].step_run_id
    assert not steps["transform"].cache_hit and steps["transform"].status == "finished"
    assert steps["combine"].status == "finished"
    assert CALLS == {"load": 1, "side": 1, "transform": 2, "combine": 1}
    with pytest.raises(mc.errors.InvalidStateError, match="nothing to resume"):
        runner.resume(resumed.pipeline_run_id)


def test_resume_of_a_local_pipeline_uses_the_stored_definition(
        runner: PipelineRunner) -> None:
    state = {"fail": True}

    @mc.step
    def maybe(x: int) -> int:
        if state["fail"]:
            raise RuntimeError("not yet")
        return x

    @pipeline
    def local_flow(x: int = 7):
        return maybe(x)

    with pytest.raises(StepFailed) as info:
        runner.run(local_flow)
    record = runner.store.get_pipeline_run(info.value.details["pipeline_run_id"])
    assert record.target is None and record.spec_digest is not None
    # The stored copy is independent of this closure: it fails the same way.
    with pytest.raises(StepFailed, match="not yet"):
        runner.resume(record.pipeline_run_id)


# --- outputs ----------------------------------------------------------------------------------


def test_outputs_are_stored_as_pickle_parquet_and_files(runner: PipelineRunner) -> None:
    result = runner.run(formats_flow, (), {"n": 5})
    assert result.output["head"] == [0, 1] and result.output["tail"] == [2, 3, 4]
    assert result.output["rows"] == 6  # a header and five rows
    pd.testing.assert_frame_equal(result.output["df"], to_pandas.fn(5))
    formats = {s.node: [o.format for o in s.outputs] for s in result.steps}
    assert formats["split"] == ["pickle", "pickle"]
    assert formats["to_pandas"] == ["parquet/pandas"]
    assert formats["to_polars"] == ["parquet/polars"]
    assert formats["write_file"] == ["file/rows.csv"]
    again = runner.run(formats_flow, (), {"n": 5})
    assert all(s.cache_hit for s in again.steps)  # Parquet and files digest stably


def test_a_step_with_several_outputs_must_return_them(runner: PipelineRunner) -> None:
    @mc.step(outputs=("a", "b"))
    def three() -> tuple[int, int, int]:
        return 1, 2, 3

    @pipeline
    def bad():
        a, _ = three()
        return a

    with pytest.raises(StepFailed, match=r"declares outputs \['a', 'b'\]"):
        runner.run(bad)


def test_steps_log_into_nested_runs_of_the_pipeline_run(runner: PipelineRunner,
                                                       client: mc.Client) -> None:
    result = runner.run(tracked, (), {"x": 3})
    parent = client.get_run(result.run.run_id)  # type: ignore[arg-type]
    assert parent.tags["mlcycle.pipeline_run_id"] == result.pipeline_run_id
    assert parent.params == {"x": "3"} and parent.status == RunStatus.FINISHED
    step = result.steps[0]
    child = client.get_run(step.run_id)  # type: ignore[arg-type]
    assert child.parent_run_id == parent.run_id and child.name == "logs_metric"
    assert child.metrics == {"doubled": 6.0} and child.params == {"x": "3"}
    assert child.tags["mlcycle.step_run_id"] == step.step_run_id
    arts = {a.path: a.digest for a in client.list_artifacts(child.run_id)}
    assert arts["outputs/return"] == step.outputs[0].digest


def test_a_pipeline_inside_a_run_nests_under_it(client: mc.Client) -> None:
    with client.start_run(name="outer") as outer:
        result = parity.run(n=2, client=client)
    assert client.get_run(result.run.run_id).parent_run_id == outer.run_id  # type: ignore[arg-type]


def test_the_sdk_decorator_uses_the_sdk_client(tmp_path: Path) -> None:
    @mc.pipeline
    def sdk_flow(n: int = 2):
        return report(is_even(load(n)))

    result = sdk_flow(n=2)
    assert result.output == "parity: True"
    assert mc.get_client().get_run(result.run.run_id).name == "sdk_flow"  # type: ignore[arg-type]


def test_a_remote_client_keeps_pipeline_records_on_its_server(settings: Settings) -> None:
    from mlcycle.client import open_pipeline_store
    from mlcycle.store.rest.pipelines import RestPipelineStore

    client = mc.Client("http://127.0.0.1:9", settings=settings)
    store = PipelineRunner(client).store
    assert isinstance(store, RestPipelineStore) and store.http is client.service.store.http
    with pytest.raises(InvalidStateError, match="no pipeline store goes with object"):
        open_pipeline_store(object())  # type: ignore[arg-type]


def test_the_store_lists_pages_and_refuses_unknown_ids(runner: PipelineRunner) -> None:
    for n in (1, 2, 3):
        runner.run(parity, (), {"n": n})
    first = runner.store.list_pipeline_runs(max_results=2)
    rest = runner.store.list_pipeline_runs(max_results=2, page_token=first.next_page_token)
    assert len(first) == 2 and len(rest) == 1 and rest.next_page_token is None
    assert [r.params["n"] for r in [*first, *rest]] == [3, 2, 1]
    assert len(runner.store.list_pipeline_runs(status="failed")) == 0
    with pytest.raises(PipelineRunNotFound):
        runner.store.get_pipeline_run("0" * 32)
    with pytest.raises(InvalidInputError, match="status"):
        runner.store.list_pipeline_runs(status="done")


def test_a_process_pool_gives_the_same_records(client: mc.Client) -> None:
    with PipelineRunner(client, executor=LocalExecutor(workers=2)) as threads:
        a = threads.run(formats_flow, (), {"n": 4}, cache=False)
    with PipelineRunner(client, executor=LocalExecutor(workers=2, processes=True)) as procs:
        b = procs.run(formats_flow, (), {"n": 4}, cache=False)
    assert b.run.executor == "process" and a.run.executor == "local"
    assert comparable(a) == comparable(b)
    assert a.output["rows"] == b.output["rows"]


def comparable(result: PipelineResult) -> list[tuple[Any, ...]]:
    return [(s.node, s.step, s.status, s.cache_hit, s.cache_key, s.code_hash, s.params,
             s.inputs, s.outputs, s.attempts, s.upstream) for s in result.steps]


# --- sweeps -----------------------------------------------------------------------------------


def quadratic(x: float, kind: str) -> float:
    return (x - 1.0) ** 2 + (0.5 if kind == "b" else 0.0)


@pytest.mark.parametrize(("sampler", "space", "n"), [
    ("grid", {"x": Float(0.0, 2.0, step=1.0), "kind": ["a", "b"]}, 10),
    ("random", {"x": (-2.0, 3.0), "kind": ["a", "b"]}, 5),
    ("tpe", {"x": {"low": -2, "high": 3, "type": "float"}, "kind": ["a", "b"]}, 5),
])
def test_each_sampler_records_trials_as_nested_runs(client: mc.Client, sampler: str,
                                                    space: dict[str, Any], n: int) -> None:
    result = mc.sweep(quadratic, space, n, sampler=sampler, seed=1, client=client)
    expected = 6 if sampler == "grid" else n  # the grid has 3 x 2 points
    assert len(result.trials) == expected
    if sampler == "grid":
        assert sorted((t.params["x"], t.params["kind"]) for t in result.trials) == sorted(
            (x, k) for x in (0.0, 1.0, 2.0) for k in ("a", "b"))
        assert result.best_params == {"x": 1.0, "kind": "a"} and result.best_value == 0.0
    children = client.search_runs(filter=f"attributes.parent_run_id = '{result.run_id}'",
                                  max_results=100)
    assert len(children) == expected
    by_id = {r.run_id: r for r in children}
    for trial in result.trials:
        run = by_id[trial.run_id]
        assert run.status == RunStatus.FINISHED and trial.state == "complete"
        assert run.metrics["objective"] == pytest.approx(quadratic(**trial.params))
        assert run.params["kind"] == trial.params["kind"]
    parent = client.get_run(result.run_id)
    assert parent.params["sampler"] == sampler
    assert parent.tags["mlcycle.sweep.best_run_id"] == result.best_run_id
    assert parent.metrics["best_objective"] == result.best_value
    assert parent.results["sweep"]["best_params"] == dict(result.best_params)  # type: ignore[index]
    assert result.best_value == min(t.value for t in result.trials)  # type: ignore[type-var]


def test_pruned_and_failed_trials_are_recorded(client: mc.Client) -> None:
    import optuna

    def objective(x: int, trial: mc.pipelines.Trial) -> float:
        if x == 2:
            raise ArithmeticError("x=2 is unlucky")
        for step in range(3):
            trial.report(float(x), step)
        return float(x)

    result = mc.sweep(objective, {"x": Int(1, 5)}, 5, sampler="grid", client=client,
                      pruner=optuna.pruners.ThresholdPruner(upper=3.5))
    states = {t.params["x"]: t.state for t in result.trials}
    assert states == {1: "complete", 2: "failed", 3: "complete", 4: "pruned", 5: "pruned"}
    assert result.best_params == {"x": 1}
    failed = next(t for t in result.trials if t.state == "failed")
    assert failed.error is not None and failed.error["type"] == "ArithmeticError"
    run = client.get_run(failed.run_id)
    assert run.status == RunStatus.FAILED and "unlucky" in run.tags["mlcycle.error"]
    pruned = client.get_run(next(t.run_id for t in result.trials if t.state == "pruned"))
    assert pruned.tags["mlcycle.sweep.state"] == "pruned"
    assert pruned.status == RunStatus.FINISHED


def test_sweep_inputs_are_checked(client: mc.Client) -> None:
    with pytest.raises(InvalidInputError, match=r"space\.x"):
        mc.sweep(quadratic, {"x": "wide"}, 2, client=client)
    with pytest.raises(InvalidInputError, match="grid' needs"):
        mc.sweep(quadratic, {"x": Float(0, 1), "kind": ["a"]}, 2, sampler="grid",
                 client=client)
    with pytest.raises(InvalidInputError, match="'sampler' parameter"):
        mc.sweep(quadratic, {"x": (0.0, 1.0)}, 2, sampler="anneal", client=client)
    with pytest.raises(PipelineError, match="no trial of the sweep completed"):
        mc.sweep(lambda x: "nan", {"x": [1, 2]}, 2, client=client)


# --- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of pipelines in the current folder, as a user would have one."""
    monkeypatch.setattr(output.console, "width", 200)
    name = f"flows_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        from pathlib import Path
        import mlcycle as mc

        @mc.step
        def numbers(n: int) -> list[int]:
            return list(range(n))

        @mc.step
        def check(xs: list[int]) -> int:
            if Path("broken").exists():
                raise RuntimeError("the flag file says no")
            return sum(xs)

        @mc.pipeline
        def flow(n: int = 3):
            return check(numbers(n))

        def objective(x: float) -> float:
            return (x - 2) ** 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_cli_run_list_show_resume(flows: str, tmp_path: Path) -> None:
    ran = cli("pipeline", "run", f"{flows}:flow", "--param", "n=4", "--json")
    assert ran.exit_code == 0, ran.output
    body = json.loads(ran.stdout)
    assert body["pipeline_run"]["status"] == "finished"
    assert body["pipeline_run"]["params"] == {"n": 4}
    assert [s["node"] for s in body["steps"]] == ["numbers", "check"]

    again = cli("pipeline", "run", f"{flows}:flow", "-p", "n=4")
    assert again.exit_code == 0 and "hit" in again.stdout and "2 from the cache" in again.output
    forced = cli("pipeline", "run", f"{flows}:flow", "-p", "n=4", "--no-cache", "--json")
    assert not any(s["cache_hit"] for s in json.loads(forced.stdout)["steps"])

    (tmp_path / "broken").touch()
    failed = cli("pipeline", "run", f"{flows}:flow", "-p", "n=5")
    assert failed.exit_code == 1
    assert "Pipeline step failed" in failed.output and "the flag file says no" in failed.output
    prid = next(r for r in json.loads(cli("pipeline", "list", "--json").stdout)[
        "pipeline_runs"] if r["status"] == "failed")["pipeline_run_id"]

    listed = cli("pipeline", "list", "--status", "failed")
    assert listed.exit_code == 0 and prid[:8] in listed.stdout

    shown = cli("pipeline", "show", prid[:8], "--logs")
    assert shown.exit_code == 0, shown.output
    assert "RuntimeError: the flag file says no" in shown.stdout

    (tmp_path / "broken").unlink()
    resumed = cli("pipeline", "resume", prid[:10], "--json")
    assert resumed.exit_code == 0, resumed.output
    body = json.loads(resumed.stdout)
    assert body["pipeline_run"]["resumed_from"] == prid
    assert [s["cache_hit"] for s in body["steps"]] == [True, False]

    missing = cli("pipeline", "show", "ffffffffff")
    assert missing.exit_code == 3 and "Pipeline run not found" in missing.output
    bad = cli("pipeline", "run", f"{flows}:objective")
    assert bad.exit_code == 2 and "not a pipeline" in bad.output


def test_cli_sweep_run(flows: str) -> None:
    result = cli("sweep", "run", f"{flows}:objective", "--space",
                 '{"x": {"low": 0, "high": 4, "step": 1}}', "--sampler", "grid",
                 "--trials", "10", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert len(body["trials"]) == 5
    assert body["best_trial"]["params"] == {"x": 2}
    table = cli("sweep", "run", f"{flows}:objective", "-s", "x: [1.0, 3.0]", "-n", "2")
    assert table.exit_code == 0 and "best: trial" in table.stdout


@pytest.mark.postgres
def test_pipelines_on_postgres(pg_uri: str, settings: Settings) -> None:
    with mc.Client(pg_uri, settings=settings) as client, PipelineRunner(client) as runner:
        first = runner.run(parity, (), {"n": 3})
        second = runner.run(parity, (), {"n": 3})
        FAIL["transform"] = True
        with pytest.raises(StepFailed) as info:
            runner.run(fragile, (), {"n": 2})
        FAIL["transform"] = False
        resumed = runner.resume(info.value.details["pipeline_run_id"])
    assert first.output == second.output == "parity: False"
    assert all(s.cache_hit for s in second.steps)
    assert resumed.run.resumed_from == info.value.details["pipeline_run_id"]
    assert steps_of(resumed)["load"].cache_hit
