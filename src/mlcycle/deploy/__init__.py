"""Deployments: which model versions a serving endpoint answers with, and the controller that
moves traffic from one to the next (direct, blue-green, canary, shadow)."""

from __future__ import annotations

from mlcycle.deploy.stats import LATENCY_BUCKETS, VersionStats, merge_stats

__all__ = ["LATENCY_BUCKETS", "VersionStats", "merge_stats"]
