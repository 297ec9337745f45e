from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import pytest

from mlcycle.entities import Metric
from mlcycle.errors import InvalidStateError, StoreError
from mlcycle.store.sql import SqlTrackingStore
from mlcycle.tracking.writer import MetricWriter


class RecordingStore(SqlTrackingStore):
    """A real SQLite store that records each batch, and can be told to fail."""

    def __init__(self, uri: str) -> None:
        from mlcycle.store.sql import connect

        super().__init__(connect(uri))
        self.batches: list[int] = []
        self.fail_with: Exception | None = None
        self.threads: set[str] = set()

    def log_batch(self, run_id: str, *, metrics: Sequence[Metric] = (),
                  params: Mapping[str, str] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(len(metrics))
        super().log_batch(run_id, metrics=metrics, params=params, tags=tags)


@pytest.fixture
def store(tmp_path) -> RecordingStore:  # type: ignore[no-untyped-def]
    return RecordingStore(f"sqlite:///{tmp_path / 'w.db'}")


def _run(store: RecordingStore) -> str:
    exp = store.create_experiment("w")
    return store.create_run(exp.experiment_id, name="r", start_time=0).run_id


def test_put_returns_at_once_and_flush_writes_in_batches(store: RecordingStore) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=60, batch=1000)
    for i in range(2500):
        writer.put(run_id, Metric("x", float(i), i, 1))
    writer.flush(run_id)
    assert sum(store.batches) == 2500
    assert max(store.batches) <= 1000 and len(store.batches) >= 3
    assert len(store.get_metric_history(run_id, "x")) == 2500


def test_the_interval_writes_without_a_flush(store: RecordingStore) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=0.05, batch=10_000)
    writer.put(run_id, Metric("x", 1.0, 0, 1))
    deadline = time.monotonic() + 5
    while not store.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.batches == [1]
    assert store.threads == {"mlcycle-metric-writer"}


def test_errors_surface_at_flush_for_their_run(store: RecordingStore) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=60, batch=100)
    store.fail_with = InvalidStateError("run is deleted")
    writer.put(run_id, Metric("x", 1.0, 0, 1))
    with pytest.raises(InvalidStateError):
        writer.flush(run_id)
    store.fail_with = None
    writer.flush(run_id)  # reported once, then the writer carries on
    writer.put(run_id, Metric("x", 2.0, 1, 1))
    writer.flush(run_id)
    assert list(store.get_metric_history(run_id, "x").values) == [2.0]


def test_store_errors_are_retried(store: RecordingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=60, batch=100)
    calls = {"n": 0}
    original = RecordingStore.log_batch

    def flaky(self, run_id, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("database is locked", retryable=True)
        return original(self, run_id, **kw)

    monkeypatch.setattr(RecordingStore, "log_batch", flaky)
    writer.put(run_id, Metric("x", 1.0, 0, 1))
    writer.flush(run_id)
    assert calls["n"] == 2
    assert len(store.get_metric_history(run_id, "x")) == 1


def test_many_threads_logging_lose_nothing(store: RecordingStore) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=0.01, batch=500)

    def log(t: int) -> None:
        for i in range(1000):
            writer.put(run_id, Metric(f"t{t}", float(i), i, 1))

    threads = [threading.Thread(target=log, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    writer.flush(run_id)
    for t in range(4):
        assert len(store.get_metric_history(run_id, f"t{t}")) == 1000


def test_errors_that_may_have_applied_are_not_retried(
    store: RecordingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _run(store)
    writer = MetricWriter(store, interval=60, batch=100)
    calls = {"n": 0}

    def timed_out(self, run_id, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise StoreError("read timeout: the server may have stored the batch")

    monkeypatch.setattr(RecordingStore, "log_batch", timed_out)
    writer.put(run_id, Metric("x", 1.0, 0, 1))
    with pytest.raises(StoreError, match="read timeout"):
        writer.flush(run_id)
    assert calls["n"] == 1  # a retry could store the points twice
