"""Every example in docs/ runs."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import mlcycle as mc

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("example", sorted(p.name for p in DOCS.glob("*.py")))
def test_example_runs(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(DOCS / example), run_name="__main__")
    assert capsys.readouterr().out.strip()
    assert len(mc.search_runs()) > 0
