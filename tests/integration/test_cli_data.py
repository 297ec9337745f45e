"""``mlcycle data …`` over a real SQLite store: ingest, list, show, diff, profile, contracts,
segments, validate (tables, JSON, HTML, exit codes), prepare and raw files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from mlcycle.cli import output
from mlcycle.cli.main import app

runner = CliRunner()


def _orders(n: int = 120, *, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": range(n),
        "region": ["EU", "US", "APAC"] * (n // 3),
        "age": [18 + (i * 7) % 70 for i in range(n)],
        "amount": [round(5 + i * 0.25 + shift, 2) for i in range(n)],
    })


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(output.console, "width", 200)
    uri = f"sqlite:///{tmp_path}/m.db"

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--tracking-uri", uri, *args])

    return run


def test_ingest_list_show_and_unchanged(cli, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    _orders().to_csv(path, index=False)
    out = cli("data", "ingest", "orders", str(path), "--description", "first")
    assert out.exit_code == 0, out.output
    assert "Ingested orders@v1: 120 rows, 4 columns" in out.output
    again = cli("data", "ingest", "orders", str(path))
    assert again.exit_code == 0 and "Unchanged: orders@v1" in again.output
    listing = cli("data", "list")
    assert "orders" in listing.output and "v1" in listing.output
    shown = cli("data", "show", "orders@v1")
    assert "amount" in shown.output and "double" in shown.output and "first" in shown.output
    as_json = json.loads(cli("data", "show", "orders@v1", "--json").output)
    assert as_json["num_rows"] == 120 and as_json["kind"] == "table"
    versions = json.loads(cli("data", "show", "orders", "--json").output)
    assert [v["version"] for v in versions["versions"]] == [1]


def test_diff_and_profile(cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _orders().to_csv(a, index=False)
    _orders(shift=100.0).drop(columns=["age"]).to_csv(b, index=False)
    assert cli("data", "ingest", "orders", str(a)).exit_code == 0
    assert cli("data", "ingest", "orders", str(b)).exit_code == 0
    diff = cli("data", "diff", "orders@v1", "orders@v2")
    assert diff.exit_code == 0, diff.output
    assert "columns removed" in diff.output and "age" in diff.output
    body = json.loads(cli("data", "diff", "orders@v1", "orders@v2", "--json").output)
    assert body["schema"]["removed"] == ["age"]
    prof = cli("data", "profile", "orders@v1")
    assert prof.exit_code == 0 and "region" in prof.output and "EU" in prof.output
    prof_json = json.loads(cli("data", "profile", "orders@v1", "--json").output)
    assert prof_json["num_rows"] == 120


def test_contract_segments_and_validate(cli, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    _orders().to_csv(good, index=False)
    frame = _orders()
    frame.loc[[1, 2], "region"] = "MARS"
    frame.to_csv(bad, index=False)
    assert cli("data", "ingest", "orders", str(good)).exit_code == 0
    inferred = cli("data", "contract", "infer", "orders@v1", "-o", str(tmp_path / "c.yaml"))
    assert inferred.exit_code == 0, inferred.output
    assert "orders@contract-v1" in inferred.output
    text = (tmp_path / "c.yaml").read_text()
    assert "region" in text
    assert cli("data", "contract", "set", "orders", str(tmp_path / "c.yaml")).exit_code == 0
    listed = json.loads(cli("data", "contract", "list", "orders", "--json").output)
    assert [c["version"] for c in listed["contracts"]] == [2, 1]
    seg = cli("data", "segments", "orders", "--set", "eu=region == 'EU'", "--set",
              "old=age >= 65")
    assert seg.exit_code == 0 and "eu" in seg.output
    ok = cli("data", "validate", "orders@v1")
    assert ok.exit_code == 0, ok.output
    html = tmp_path / "report.html"
    failed = cli("data", "validate", str(bad), "--dataset", "orders", "--html", str(html))
    assert failed.exit_code == 1, failed.output
    assert "MARS" in html.read_text()
    report = json.loads(cli("data", "validate", str(bad), "--dataset", "orders", "--json").output)
    assert report["passed"] is False
    assert set(report["segments"]) == {"eu", "old"}
    broken = cli("data", "segments", "orders", "--set", "nope")
    assert broken.exit_code == 2 and "NAME=EXPRESSION" in broken.output


def test_prepare_from_a_yaml_spec(cli, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    _orders().to_csv(path, index=False)
    assert cli("data", "ingest", "orders", str(path)).exit_code == 0
    spec = tmp_path / "prep.yaml"
    spec.write_text(
        "target: region\n"
        "steps:\n"
        "  - {op: drop_where, expr: \"amount > 30\", action: quarantine}\n"
        "features:\n"
        "  - {op: scale, columns: [age, amount]}\n"
        "split: {method: random, test: 0.25, seed: 3}\n"
    )
    out = cli("data", "prepare", "orders@v1", str(spec), "--json")
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert set(body["versions"]) == {"train", "test", "quarantine"}
    assert body["versions"]["quarantine"] == "orders.quarantine@v1"
    typo = tmp_path / "typo.yaml"
    typo.write_text("split: {method: randm}\n")
    bad = cli("data", "prepare", "orders@v1", str(typo))
    assert bad.exit_code == 2 and "line 1" in bad.output


def test_files_add_status_checkout(cli, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"file {i}\n")
    added = cli("data", "add", "raw", str(folder))
    assert added.exit_code == 0, added.output
    assert "raw@v1: 3 files" in added.output
    assert cli("data", "status", "raw", str(folder)).exit_code == 0
    (folder / "9.txt").write_text("new")
    changed = cli("data", "status", "raw", str(folder))
    assert changed.exit_code == 1 and "9.txt" in changed.output
    restored = cli("data", "checkout", "raw@v1", str(tmp_path / "out"), "--copy")
    assert restored.exit_code == 0, restored.output
    assert (tmp_path / "out" / "2.txt").read_text() == "file 2\n"


def test_errors_have_exit_codes(cli, tmp_path: Path) -> None:
    missing = cli("data", "show", "nope@v1")
    assert missing.exit_code == 3 and "nope" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    out = cli("data", "ingest", "bad", str(bad))
    assert out.exit_code == 2 and "line 3" in out.output
