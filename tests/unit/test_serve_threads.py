"""`mlcycle serve` caps the native thread pools a model call may use (``--threads``, default 1):
requests run in parallel across workers, not inside one call of a few rows."""

from __future__ import annotations

import os

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlcycle.cli.serve import THREAD_VARIABLES, limit_threads
from mlcycle.config import Settings


def test_limit_threads_caps_the_loaded_pools_and_those_loaded_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn.ensemble  # noqa: F401 - loads OpenMP (and BLAS through NumPy)

    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)  # restored after the test
    before = {pool["prefix"]: pool["num_threads"] for pool in threadpool_info()}
    assert before, "no native thread pool loaded"
    try:
        limit_threads(1)
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}
        assert all(os.environ[v] == "1" for v in THREAD_VARIABLES)  # for pools loaded later
    finally:
        threadpool_limits(limits=before)


def test_one_thread_per_worker_is_the_default_and_the_setting_is_checked() -> None:
    assert Settings().serve_threads == 1
    assert Settings(serve_threads=4).serve_threads == 4
    with pytest.raises(ValueError, match="serve_threads"):
        Settings(serve_threads=0)
