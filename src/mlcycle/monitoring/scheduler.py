"""``MonitorScheduler``: the loop ``mlcycle server`` runs to run monitors on their interval.

Every ``poll_interval`` seconds it asks the service which monitors are due and runs them one at
a time, each in a worker thread (a run reads Parquet and talks to the database, which must not
block the event loop). A failing run is logged and the loop goes on. Cancelling the task stops
the loop at once, but a run already in its thread (a monitor, or a whole retraining) goes on
until it ends: a retraining that a process exit cuts short stays ``running`` until the trigger
store takes it as abandoned (after 6 hours), so shut a server down between retrainings.

*leader*, when given, is asked before each beat whether this process is the one that runs it
(``mlcycle server`` hands in a lease held in the metadata store, so that of its workers, and of
several servers over one database, one runs the monitors and the triggers).

*reactions* is what else follows the beat: the server hands in the retraining triggers
(``mlcycle.retrain.TriggerService``, a layer above this one), whose ``on_monitor_run`` fires
the drift and quality triggers after each monitor run, and whose ``run_due`` fires the
schedule and new-data triggers once per poll. Their failures are logged like a monitor's.

>>> task = asyncio.create_task(MonitorScheduler(service).run_forever())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from mlcycle.monitoring.service import MonitorRun, MonitorService

__all__ = ["MonitorScheduler", "Reactions"]

logger = logging.getLogger("mlcycle.monitoring")


class Reactions(Protocol):
    """What runs after each monitor run, and once per poll."""

    def on_monitor_run(self, run: MonitorRun) -> object: ...

    def run_due(self) -> object: ...


class MonitorScheduler:
    def __init__(self, service: MonitorService, *, poll_interval: float = 30.0,
                 reactions: Reactions | None = None,
                 leader: Callable[[], bool] | None = None) -> None:
        self.service = service
        self.poll_interval = poll_interval
        self.reactions = reactions
        self.leader = leader

    async def tick(self) -> list[MonitorRun]:
        """Run the monitors due now, one after the other, each followed by the reactions to
        it; then the reactions due by the clock. Nothing when another process leads."""
        runs: list[MonitorRun] = []
        if self.leader is not None:
            try:
                leading = await asyncio.to_thread(self.leader)
            except Exception:
                logger.exception("monitor scheduler: checking the lease failed")
                leading = False
            if not leading:
                return runs
        try:
            due = await asyncio.to_thread(self.service.due)
        except Exception:
            logger.exception("monitor scheduler: listing the due monitors failed")
            due = []
        for monitor in due:
            try:
                run = await asyncio.to_thread(self.service.run, monitor)
            except Exception:
                logger.exception("monitor %s: the scheduled run failed", monitor.name)
                continue
            runs.append(run)
            if self.reactions is not None:
                try:
                    await asyncio.to_thread(self.reactions.on_monitor_run, run)
                except Exception:
                    logger.exception("monitor %s: reacting to its run failed", monitor.name)
        if self.reactions is not None:
            try:
                await asyncio.to_thread(self.reactions.run_due)
            except Exception:
                logger.exception("monitor scheduler: the triggers due by the clock failed")
        return runs

    async def run_forever(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.poll_interval)
