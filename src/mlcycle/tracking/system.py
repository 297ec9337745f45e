"""Facts about where a run ran: code version, interpreter, packages, command line, host.

Recorded as tags (``mlcycle.git.commit``, ``mlcycle.python``, …) and two artifacts:
``system/git.diff`` (uncommitted changes, when there are any) and ``system/requirements.txt``
(installed distributions; content-addressed, so identical lists are stored once).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["SystemFacts", "capture"]

_GIT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class SystemFacts:
    tags: dict[str, str]
    diff: bytes | None = None
    requirements: bytes = b""


def _git(*args: str, cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "replace")


@functools.cache
def _requirements() -> bytes:
    # Installed packages do not change under a running program often enough to pay for
    # re-reading them at every run; computed once per process.
    lines = sorted(
        {
            f"{d.metadata['Name']}=={d.version}"
            for d in importlib.metadata.distributions()
            if d.metadata and d.metadata["Name"]
        },
        key=str.lower,
    )
    return ("\n".join(lines) + "\n").encode()


def capture(cwd: str | None = None) -> SystemFacts:
    """Read the facts now (git runs in *cwd*, default the working directory)."""
    cwd = cwd or os.getcwd()
    tags = {
        "mlcycle.python": platform.python_version(),
        "mlcycle.platform": platform.platform(terse=True),
        "mlcycle.host": socket.gethostname(),
        "mlcycle.command": shlex.join(sys.argv)[:8000] if sys.argv else "",
    }
    with contextlib.suppress(Exception):  # no user name in some containers
        tags["mlcycle.user"] = getpass.getuser()
    diff: bytes | None = None
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit:
        tags["mlcycle.git.commit"] = commit.strip()
        branch = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd)
        if branch:
            tags["mlcycle.git.branch"] = branch.strip()
        patch = _git("diff", "HEAD", "--no-color", "--no-ext-diff", cwd=cwd)
        tags["mlcycle.git.dirty"] = "true" if patch else "false"
        if patch:
            diff = patch.encode()
    return SystemFacts(tags=tags, diff=diff, requirements=_requirements())
