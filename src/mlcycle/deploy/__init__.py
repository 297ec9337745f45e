"""Deployments: which model versions a serving endpoint answers with, and the controller that
moves traffic from one to the next (direct, blue-green, canary, shadow)."""

from __future__ import annotations

from mlcycle.deploy.canary import Verdict, decide
from mlcycle.deploy.config import STEP_STATE_KEY, DeploymentConfig
from mlcycle.deploy.service import (
    CONTROLLER,
    DeploymentService,
    DeploymentStatus,
    WorkerStatus,
)
from mlcycle.deploy.stats import LATENCY_BUCKETS, VersionStats, merge_stats

__all__ = [
    "CONTROLLER",
    "LATENCY_BUCKETS",
    "STEP_STATE_KEY",
    "DeploymentConfig",
    "DeploymentService",
    "DeploymentStatus",
    "Verdict",
    "VersionStats",
    "WorkerStatus",
    "decide",
    "merge_stats",
]
