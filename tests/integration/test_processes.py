"""Many processes on one store, fresh stores opened at once, and a client killed mid-run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlcycle as mc
from mlcycle.config import Settings

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import sys, time
    import mlcycle as mc
    uri, start_at, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    while time.time() < start_at:
        time.sleep(0.001)
    client = mc.Client(uri, settings=mc.Settings(flush_interval=0.05, flush_batch=500))
    with client.start_run(experiment="load", log_system=False) as run:
        for i in range(n):
            run.log_metric("x", float(i), step=i)
    print(run.run_id)
    """
)


def _spawn(script: str, *args: str, **kw) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **kw,
    )


def _run_all(script: str, count: int, uri: str, n: int) -> list[str]:
    start_at = time.time() + 1.5  # all processes start writing at the same moment
    procs = [_spawn(script, uri, str(start_at), str(n)) for _ in range(count)]
    outs = [p.communicate(timeout=120) for p in procs]
    errors = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert errors == [], errors[0]
    return [out.strip() for out, _ in outs]


def test_eight_writers_on_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    mc.Client(uri, settings=Settings(home=tmp_path)).close()  # the store exists
    run_ids = _run_all(WRITER, 8, uri, 2000)
    client = mc.Client(uri, settings=Settings(home=tmp_path))
    for run_id in run_ids:
        history = client.get_metric_history(run_id, "x")
        assert list(history.steps) == list(range(2000))
        assert client.get_run(run_id).status is mc.RunStatus.FINISHED


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_four_processes_open_a_fresh_store_at_once(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    uri = (f"sqlite:///{tmp_path / 'fresh.db'}" if kind == "sqlite"
           else request.getfixturevalue("empty_pg_uri"))
    run_ids = _run_all(WRITER, 4, uri, 10)
    client = mc.Client(uri, settings=Settings(home=tmp_path))
    assert len(client.search_runs(experiments=["load"])) == 4
    assert {r.run_id for r in client.search_runs(experiments=["load"])} == set(run_ids)


KILLED = textwrap.dedent(
    """
    import sys, time
    import mlcycle as mc
    client = mc.Client(sys.argv[1], settings=mc.Settings(flush_interval=0.2))
    run = client.start_run(experiment="kill", log_system=False).__enter__()
    print(run.run_id, flush=True)
    for i in range(1000):
        run.log_metric("x", float(i), step=i)
    run.flush()
    print("flushed", flush=True)
    for i in range(1000, 1500):
        run.log_metric("x", float(i), step=i)
    time.sleep(1.0)          # more than flush_interval: the background writer stores these too
    print("waited", flush=True)
    while True:
        run.log_metric("x", -1.0, step=10**6)
        time.sleep(0.001)
    """
)


def test_a_killed_client_leaves_a_readable_store(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    uri = f"sqlite:///{db}"
    proc = _spawn(KILLED, uri)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "flushed"
    assert proc.stdout.readline().strip() == "waited"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    client = mc.Client(uri, settings=Settings(home=tmp_path))
    steps = list(client.get_metric_history(run_id, "x").steps)
    # Everything flushed, and everything logged more than one flush interval before the kill.
    assert steps[:1500] == list(range(1500))
    assert client.get_run(run_id).status is mc.RunStatus.RUNNING
    ended = client.end_run(run_id, "failed")
    assert ended.status is mc.RunStatus.FAILED
