"""``MonitorScheduler``: the loop ``mlcycle server`` runs to run monitors on their interval.

Every ``poll_interval`` seconds it asks the service which monitors are due and runs them one at
a time, each in a worker thread (a run reads Parquet and talks to the database, which must not
block the event loop). A failing run is logged and the loop goes on; cancelling the task stops
it between two runs or while it waits.

>>> task = asyncio.create_task(MonitorScheduler(service).run_forever())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging

from mlcycle.monitoring.service import MonitorRun, MonitorService

__all__ = ["MonitorScheduler"]

logger = logging.getLogger("mlcycle.monitoring")


class MonitorScheduler:
    def __init__(self, service: MonitorService, *, poll_interval: float = 30.0) -> None:
        self.service = service
        self.poll_interval = poll_interval

    async def tick(self) -> list[MonitorRun]:
        """Run the monitors due now, one after the other."""
        runs: list[MonitorRun] = []
        try:
            due = await asyncio.to_thread(self.service.due)
        except Exception:
            logger.exception("monitor scheduler: listing the due monitors failed")
            return runs
        for monitor in due:
            try:
                runs.append(await asyncio.to_thread(self.service.run, monitor))
            except Exception:
                logger.exception("monitor %s: the scheduled run failed", monitor.name)
        return runs

    async def run_forever(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.poll_interval)
