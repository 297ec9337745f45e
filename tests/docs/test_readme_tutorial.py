"""The README's tutorial runs as written: its ```python blocks in order in one namespace, its
```bash lines as real commands (``mlcycle serve`` and ``mlcycle ui`` as servers on free
loopback ports, the rest to completion), in an empty folder with its own ``.mlcycle`` store
(the autouse ``_isolated`` fixture of tests/conftest.py)."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import mlcycle as mc

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- tutorial:start -->", "<!-- tutorial:end -->"
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Commands that serve until stopped, and the path that says they are ready.
SERVERS = {"serve": "/v2/health/ready", "ui": "/health"}
DEFAULT_PORTS = {"serve": 8000, "ui": 5000}

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # where the code starts in README.md, for tracebacks that point there


def tutorial_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "tutorial markers missing"
    start = text.index(START)
    section = text[start : text.index(END)]
    first_line = text[:start].count("\n") + 1
    return [
        Block(m.group(1), m.group(2), first_line + section[: m.start(2)].count("\n"))
        for m in BLOCK.finditer(section)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(argv: list[str]) -> list[str]:
    assert argv[0] == "mlcycle", f"the tutorial's shell lines run mlcycle, got {argv}"
    return [sys.executable, "-m", "mlcycle", *argv[1:]]


def _with_port(argv: list[str], port: int) -> tuple[list[str], int]:
    """*argv* listening on *port*; also the port the README names (to rewrite its URLs)."""
    if "--port" in argv:
        at = argv.index("--port") + 1
        return [*argv[:at], str(port), *argv[at + 1 :]], int(argv[at])
    return [*argv, "--port", str(port)], DEFAULT_PORTS[argv[1]]


class Shell:
    """Runs the tutorial's shell lines; servers stay up until :meth:`stop`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.ports: dict[int, int] = {}  # the README's port -> the one used here
        self.outputs: dict[str, str] = {}
        self.servers: list[tuple[subprocess.Popen[bytes], Any]] = []

    def run(self, line: str) -> None:
        argv = shlex.split(line, comments=True)
        if not argv:
            return
        if len(argv) > 1 and argv[1] in SERVERS:
            self._start(argv)
            return
        done = subprocess.run(
            _command(argv), cwd=self.cwd, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        self.outputs[" ".join(argv)] = done.stdout

    def _start(self, argv: list[str]) -> None:
        port = _free_port()
        argv, named = _with_port(argv, port)
        self.ports[named] = port
        log = (self.cwd / f"{argv[1]}-{port}.log").open("wb")
        process = subprocess.Popen(
            _command(argv), cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        self.servers.append((process, log))
        url = f"http://127.0.0.1:{port}{SERVERS[argv[1]]}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{' '.join(argv)} exited: {self._log(log)}"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{' '.join(argv)}: {url} not ready in 60 s: {self._log(log)}")

    def localize(self, code: str) -> str:
        """The README's URLs pointed at the ports the servers got here."""
        for named, port in self.ports.items():
            code = code.replace(f"127.0.0.1:{named}", f"127.0.0.1:{port}")
        return code

    @staticmethod
    def _log(log: Any) -> str:
        log.flush()
        return Path(log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C would: a model server flushes its logs and says goodbye."""
        for process, log in self.servers:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    monkeypatch.setattr(mc, "_experiment", None)  # set_experiment's default, put back after
    runner = Shell(tmp_path)
    try:
        yield runner
    finally:
        runner.stop()


def test_the_readme_tutorial_runs_and_closes_the_loop(shell: Shell, tmp_path: Path) -> None:
    blocks = tutorial_blocks()
    assert [b.language for b in blocks].count("python") >= 10
    assert any(
        b.language == "bash" and "mlcycle serve --deployment flights" in b.code for b in blocks
    )
    ns: dict[str, Any] = {"__name__": "readme_tutorial"}
    try:
        for block in blocks:
            if block.language == "bash":
                for line in block.code.splitlines():
                    shell.run(line)
                continue
            code = "\n" * (block.line - 1) + shell.localize(block.code)
            exec(compile(code, str(README), "exec"), ns)
    finally:
        if "http" in ns:
            ns["http"].close()

    client = mc.get_client()
    # Data: the winter sample versioned, contracted, validated and split.
    assert ns["v1"].ref == "flights@v1" and ns["v1"].num_rows == 20_000
    assert ns["report"].passed
    assert client.data.get_version("flights.train").parents == ("flights@v1",)
    # A sweep of nested trial runs, the winner registered and gated into production.
    assert len(ns["sweep"].trials) == 3
    v1 = client.registry.get_version("flights-delay", 1)
    assert v1.evaluation["passed"] is True
    assert {"origin JFK", "carrier UA"} <= {s.name for s in ns["result"].segments}
    assert ("flights.train", "v1") in {(d.dataset, d.version) for d in v1.datasets}

    # Served by a real `mlcycle serve`: answers carry the version that made them.
    assert ns["answer"].status_code == 200 and ns["answer"].headers["x-model-version"] in ("1", "2")
    assert len(ns["request_ids"]) == 30

    # The monitor saw July fall under the alert level; the trigger retrained, gated, and the
    # serving worker's controller decided the canary.
    check = ns["check"]
    assert check.result.status == "alert" and check.alert is not None
    assert check.result.details["rows"] >= 600
    [fired] = ns["fired"]
    assert fired.status == "succeeded" and fired.model_version == 2, fired.reason
    assert fired.cause["kind"] == "quality"  # as the README says: accuracy, not drift
    assert fired.data["feedback"] == "flights.feedback@v1"
    deployment = client.deployments.get("flights")
    assert deployment.candidate_version is None, "the canary was not decided"
    events = client.deployments.history("flights")
    assert events[0].actor == "controller" and events[0].kind in ("promoted", "rolled_back")

    # Lineage from a prediction and from the retrained version.
    assert ns["chain"].model["uri"] == "models:/flights-delay/1"
    assert ns["chain"].prediction["deployment"] == "flights"
    said = " ".join(shell.outputs["mlcycle lineage models:/flights-delay/2"].split())
    assert "trigger run" in said and "flights-drift" in said
    assert (tmp_path / "flights-monitor.html").stat().st_size > 1000
