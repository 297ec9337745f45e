from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlcycle as mc
from mlcycle.config import Settings


def test_demo_flights_fast_runs_the_story_on_real_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mlcycle.demo_flights", "--fast"], cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "120"},
    )
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr
    said = " ".join(out.stdout.split())
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

    # The replay: the monitor alerted on a month, the trigger retrained on the training data
    # plus the labelled production rows, judged on held-out rows of that month.
    statuses = [r.status for r in client.monitors.results("flights-drift")]
    assert len(statuses) == 3 and "alert" in statuses, statuses
    from mlcycle.retrain import TriggerService

    [retrained] = TriggerService(client).runs("flights-retrain")
    assert retrained.data["feedback"] == "flights.feedback@v1"
    assert data.get_version("flights.recent@v1").num_rows == 1_000
    # The data and the models are seeded: the gates pass, and the serving worker's controller
    # decides the canary.
    assert retrained.status == "succeeded" and retrained.model_version == 2, retrained.reason
    assert client.registry.get_version("flights-delay", 2).evaluation["passed"] is True
    events = [(e.kind, e.actor) for e in client.deployments.history("flights")]
    assert ("rollout_started", f"trigger-run:{retrained.run_id}") in events
    assert events[0][1] == "controller", events
    assert "canary promoted" in said or "canary rolled back" in said
    assert not client.deployments.status("flights").live_workers  # the server said goodbye
    client.close()
