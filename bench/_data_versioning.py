"""Versioning raw files: mlcycle's ``snapshot_files`` / ``status_files`` against DVC.

What is measured, on data generated from a fixed seed in a temporary folder (data, DVC's cache
and mlcycle's artifact store and stat cache all on that one filesystem):

1. ``add 1 GiB file``        ``dvc add big.bin`` / ``snapshot_files("big.bin", ...)``
2. ``add 20,000 files``      a folder of 20,000 files of 4 KiB (20 subfolders of 1,000):
                             ``dvc add small`` / ``snapshot_files("small", ...)``
3. ``no-change status``      ``dvc status small.dvc`` / ``status_files("small", manifest, ...)``
                             right after case 2, nothing changed
4. ``re-version 1 edit``     one small file replaced by new bytes of the same size (unlink and
                             write, as an editor saves; identical for both tools), then
                             ``dvc add small`` / ``snapshot_files("small", ...)`` again

How: for every repeat each tool gets a fresh workspace (a real copy of the data, mtimes kept,
made untimed), a fresh ``git init`` + ``dvc init`` repository for DVC, a fresh artifact root
and stat-cache folder for mlcycle. The page cache cannot be dropped here, so the opposite is
made true for both tools: after the copy, dirty pages are flushed (``os.sync``) and every file
is read once, so both tools hash warm data; dirty pages are flushed again before every timed
command, so no command pays for the writeback of the one before (DVC writes a full copy of the
data into its cache). The tools alternate which goes first from one repeat to the next; the
rows hold medians and, for wall time, every sample.

DVC runs as its CLI (``bench/.venvs/dvc/bin/dvc``), one process per case: wall time around the
process, CPU time from the kernel's usage of reaped children. mlcycle runs one worker process
per case (``.venv/bin/python``) that times its call, opening the store and cache included
(``mlcycle``: in-call wall and CPU of all threads). The worker's whole-process wall and CPU,
interpreter start and ``import mlcycle`` included, are reported next to it
(``mlcycle_process``), and so is the start-up of DVC's CLI alone (``dvc --version``), since a
fresh process per command is DVC's normal use and an SDK call is mlcycle's.

Both tools' results are checked: file counts, a clean status, a changed version after the edit.

Usage::

    .venv/bin/python bench/_data_versioning.py          # 1 GiB, 20,000 files, 3 repeats
    .venv/bin/python bench/_data_versioning.py --big-mib 64 --n-small 2000 --repeats 1

``run_versioning_cases()`` returns the rows. DVC lives in its own venv::

    python3 -m venv bench/.venvs/dvc
    bench/.venvs/dvc/bin/pip install -r bench/requirements-dvc.txt
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # after the path tweak above, so the script runs from any directory
    MLCYCLE_PYTHON,
    REPO,
    VENVS_DIR,
    fmt_number,
    machine_info,
    median,
    print_table,
    ratio,
    run_worker,
)

SCRIPT = Path(__file__).resolve()
SEED = 20240601
SMALL_SIZE = 4096
SMALL_PER_FOLDER = 1000
CASES = ("add_big", "add_small", "status", "re_add")
TOOLS = ("dvc", "mlcycle")


def _case_names(big_mib: int, n_small: int) -> dict[str, str]:
    big = f"{big_mib // 1024} GiB" if big_mib % 1024 == 0 else f"{big_mib} MiB"
    return {
        "add_big": f"add {big} file",
        "add_small": f"add {n_small:,} files of 4 KiB",
        "status": f"no-change status, {n_small:,} files",
        "re_add": f"re-version after 1 edit, {n_small:,} files",
    }


# =========================================================================== data


def _stream(label: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes: BLAKE3's extendable output keyed by seed and label
    (GB/s, where ``random.randbytes`` manages ~100 MB/s)."""
    from blake3 import blake3

    return blake3(f"{SEED}:{label}".encode()).digest(length=size)


def make_data(folder: Path, big_mib: int, n_small: int) -> None:
    chunk = 16 << 20
    with open(folder / "big.bin", "wb") as out:
        remaining, i = big_mib << 20, 0
        while remaining:
            out.write(_stream(f"big:{i}", min(chunk, remaining)))
            remaining -= min(chunk, remaining)
            i += 1
    for i in range(n_small):
        sub = folder / "small" / f"part{i // SMALL_PER_FOLDER:03d}"
        if i % SMALL_PER_FOLDER == 0:
            sub.mkdir(parents=True)
        (sub / f"img{i:06d}.bin").write_bytes(_stream(f"small:{i}", SMALL_SIZE))
    # Back-date everything: data being versioned is normally not seconds old.
    past = time.time_ns() - int(3600 * 1e9)
    for path in [folder / "big.bin", *(folder / "small").rglob("*")]:
        os.utime(path, ns=(past, past))


def _copy_workspace(src: Path, dest: Path) -> None:
    """A real, independent copy (both tools change the files they version: DVC moves them
    into its cache, mlcycle makes them read-only), mtimes kept; then flushed and read once."""
    dest.mkdir(parents=True)
    shutil.copy2(src / "big.bin", dest / "big.bin")
    shutil.copytree(src / "small", dest / "small", copy_function=shutil.copy2)
    os.sync()
    for path in [dest / "big.bin", *(p for p in (dest / "small").rglob("*") if p.is_file())]:
        with open(path, "rb") as fh:
            while fh.read(16 << 20):
                pass


def _edit_one(workspace: Path, n_small: int) -> None:
    """Replace one small file (the same one, with the same new bytes, for every tool) with new
    bytes of the same size, the way an editor saves: unlink, then write."""
    i = n_small // 2
    path = workspace / "small" / f"part{i // SMALL_PER_FOLDER:03d}" / f"img{i:06d}.bin"
    path.unlink()
    path.write_bytes(_stream(f"edited:{i}", SMALL_SIZE))


# =========================================================================== timing


def _timed_process(args: Sequence[str], *, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run a command; its wall seconds, its CPU seconds (reaped children), and its stdout.

    Dirty pages are flushed first, so no command pays for the writeback of the one before.
    """
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout}


def _dvc_bin() -> Path:
    dvc = VENVS_DIR / "dvc" / "bin" / "dvc"
    if not dvc.exists():
        sys.exit(
            f"missing {dvc}; create it with:\n  python3 -m venv {VENVS_DIR / 'dvc'} && "
            f"{VENVS_DIR / 'dvc'}/bin/pip install -r {SCRIPT.parent / 'requirements-dvc.txt'}"
        )
    return dvc


_DVC_ENV = {"DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}


def _run_dvc(ws: Path, n_small: int) -> dict[str, dict[str, Any]]:
    dvc = str(_dvc_bin())
    setup = [
        ["git", "init", "-q"],
        [dvc, "init", "-q"],
        [dvc, "config", "core.analytics", "false"],
        [dvc, "config", "core.autostage", "false"],
        # Its hash-state database inside the temporary folder, not under /var/tmp.
        [dvc, "config", "--local", "core.site_cache_dir", str(ws / ".dvc-site-cache")],
    ]
    for command in setup:
        _timed_process(command, cwd=ws, env=_DVC_ENV)
    out: dict[str, dict[str, Any]] = {}
    out["add_big"] = _timed_process([dvc, "add", "-q", "big.bin"], cwd=ws, env=_DVC_ENV)
    out["add_small"] = _timed_process([dvc, "add", "-q", "small"], cwd=ws, env=_DVC_ENV)
    first = (ws / "small.dvc").read_text()
    if f"nfiles: {n_small}" not in first:
        raise RuntimeError(f"dvc add small recorded something else:\n{first}")
    out["status"] = _timed_process([dvc, "status", "small.dvc"], cwd=ws, env=_DVC_ENV)
    if "up to date" not in out["status"]["stdout"]:
        raise RuntimeError(f"dvc status is not clean:\n{out['status']['stdout']}")
    _edit_one(ws, n_small)
    out["re_add"] = _timed_process([dvc, "add", "-q", "small"], cwd=ws, env=_DVC_ENV)
    second = (ws / "small.dvc").read_text()
    md5 = re.compile(r"md5: ([0-9a-f]+)\.dir")
    if md5.findall(first) == md5.findall(second) or f"nfiles: {n_small}" not in second:
        raise RuntimeError(f"dvc add after an edit recorded no change:\n{second}")
    return {case: {k: v for k, v in m.items() if k != "stdout"} for case, m in out.items()}


def _mlcycle_job(job: dict[str, Any]) -> dict[str, Any]:
    os.sync()  # as for DVC's commands: no writeback left over from the step before
    t0 = time.perf_counter()
    result = run_worker(
        MLCYCLE_PYTHON,
        [str(SCRIPT), "--worker", json.dumps(job)],
        timeout=1800,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    result["process_wall_s"] = time.perf_counter() - t0
    return result


def _run_mlcycle(ws: Path, n_small: int) -> dict[str, dict[str, Any]]:
    base = {"store": str(ws / ".mlcycle" / "artifacts"), "cache": str(ws / ".mlcycle" / "cache")}
    out: dict[str, dict[str, Any]] = {}
    out["add_big"] = _mlcycle_job({**base, "op": "snapshot", "path": str(ws / "big.bin")})
    if out["add_big"]["count"] != 1:
        raise RuntimeError(f"mlcycle versioned {out['add_big']['count']} files, not 1")
    out["add_small"] = _mlcycle_job({**base, "op": "snapshot", "path": str(ws / "small")})
    if out["add_small"]["count"] != n_small:
        raise RuntimeError(f"mlcycle versioned {out['add_small']['count']} files, not {n_small}")
    manifest = out["add_small"]["digest"]
    out["status"] = _mlcycle_job(
        {**base, "op": "status", "path": str(ws / "small"), "manifest": manifest}
    )
    if not out["status"]["clean"]:
        raise RuntimeError(f"mlcycle status is not clean: {out['status']}")
    _edit_one(ws, n_small)
    out["re_add"] = _mlcycle_job({**base, "op": "snapshot", "path": str(ws / "small")})
    if out["re_add"]["digest"] == manifest or out["re_add"]["count"] != n_small:
        raise RuntimeError(f"mlcycle recorded no change after an edit: {out['re_add']}")
    return out


# =========================================================================== worker


def _worker_main(job: dict[str, Any]) -> None:
    """One timed call, in a fresh process (mlcycle's venv). Prints one JSON line."""
    t0 = time.perf_counter()
    from mlcycle.datasets.files import FileManifest, StatCache, snapshot_files, status_files
    from mlcycle.store.artifacts.cas import FsspecArtifactStore

    import_s = time.perf_counter() - t0
    c0, t0 = time.process_time(), time.perf_counter()
    store = FsspecArtifactStore(job["store"])
    with StatCache(job["cache"]) as cache:
        if job["op"] == "snapshot":
            manifest = snapshot_files(job["path"], store, cache=cache)
            extra: dict[str, Any] = {"count": manifest.count, "digest": manifest.digest}
        else:
            manifest = FileManifest.from_bytes(store.get_bytes(job["manifest"]))
            status = status_files(job["path"], manifest, cache=cache)
            extra = {"clean": status.clean, "changed": len(status.modified)}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "import_s": import_s, **extra}))


# =========================================================================== driver


def run_versioning_cases(
    repeats: int = 3, big_mib: int = 1024, n_small: int = 20_000
) -> list[dict[str, Any]]:
    """Run the four cases *repeats* times per tool; return bench rows (medians): per case one
    wall-time row (unit ``s``) and one CPU row (unit ``CPU-s``), lower is better.

    Raises ``RuntimeError`` when a tool records something other than the data it was given.
    """
    dvc = _dvc_bin()
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        tool: {case: [] for case in CASES} for tool in TOOLS
    }
    tmp = Path(tempfile.mkdtemp(prefix="mlcycle-bench-versioning-"))
    try:
        need = (4 * big_mib << 20) + 6 * n_small * SMALL_SIZE + (512 << 20)
        free = shutil.disk_usage(tmp).free
        if free < need:
            raise RuntimeError(f"{tmp} has {free >> 20} MiB free; this run needs {need >> 20}")
        source = tmp / "source"
        source.mkdir()
        make_data(source, big_mib, n_small)
        startup = [_timed_process([str(dvc), "--version"], cwd=tmp, env=_DVC_ENV) for _ in range(3)]
        for repeat in range(repeats):
            order = TOOLS if repeat % 2 == 0 else TOOLS[::-1]
            for tool in order:
                ws = tmp / f"{tool}-{repeat}"
                _copy_workspace(source, ws)
                runs = (_run_dvc if tool == "dvc" else _run_mlcycle)(ws, n_small)
                for case in CASES:
                    samples[tool][case].append(runs[case])
                shutil.rmtree(ws)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    names = _case_names(big_mib, n_small)
    dvc_version = _timed_process([str(dvc), "--version"], cwd=REPO, env=_DVC_ENV)["stdout"]
    common = {
        "repeats": repeats,
        "versions": {"dvc": dvc_version.strip()},
        "dvc_startup_s": round(median([s["wall_s"] for s in startup]), 3),
    }
    rows: list[dict[str, Any]] = []
    for case in CASES:
        ml, dv = samples["mlcycle"][case], samples["dvc"][case]
        rows.append(
            {
                "case": names[case],
                "unit": "s",
                "better": "lower",
                "mlcycle": round(median([s["wall_s"] for s in ml]), 4),
                "peers": {"dvc": round(median([s["wall_s"] for s in dv]), 4)},
                "mlcycle_process": round(median([s["process_wall_s"] for s in ml]), 4),
                "samples": {
                    "mlcycle": [round(s["wall_s"], 4) for s in ml],
                    "dvc": [round(s["wall_s"], 4) for s in dv],
                },
                **common,
            }
        )
        rows.append(
            {
                "case": names[case],
                "unit": "CPU-s",
                "better": "lower",
                "mlcycle": round(median([s["cpu_s"] for s in ml]), 4),
                "peers": {"dvc": round(median([s["cpu_s"] for s in dv]), 4)},
                "mlcycle_process": round(median([s["process_cpu_s"] for s in ml]), 4),
                **common,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--n-small", type=int, default=20_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args(argv)
    if args.worker:
        _worker_main(json.loads(args.worker))
        return
    rows = run_versioning_cases(args.repeats, args.big_mib, args.n_small)
    print(json.dumps({"rows": rows, "machine": machine_info()}, indent=2))
    table = []
    for row in rows:
        dvc = row["peers"]["dvc"]
        in_call = ratio(row["mlcycle"], dvc, "lower")
        process = ratio(row["mlcycle_process"], dvc, "lower")
        table.append(
            [
                row["case"],
                row["unit"],
                fmt_number(row["mlcycle"]),
                fmt_number(row["mlcycle_process"]),
                fmt_number(dvc),
                f"{in_call:.1f}x" if in_call else "—",
                f"{process:.1f}x" if process else "—",
            ]
        )
    print_table(
        "Versioning raw files: mlcycle vs DVC",
        [
            "case",
            "unit",
            "mlcycle (call)",
            "mlcycle (process)",
            "dvc (CLI)",
            "faster (call)",
            "faster (process)",
        ],
        table,
        f"medians of {args.repeats} repeats; dvc {rows[0]['versions']['dvc']} (its CLI start-up "
        f"alone, dvc --version: {rows[0]['dvc_startup_s']} s); warm page cache for both tools; "
        "mlcycle (call) times the SDK call, (process) a fresh interpreter + import + call",
        align="llrrrrr",
    )


if __name__ == "__main__":
    main()
