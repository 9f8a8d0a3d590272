"""The relay's direct submission: after an event is committed (and acknowledged), its
run is submitted in the background, in queue-priority order, through
:mod:`carinho_pipelines.events.submission` (claim, launch, record). A slow or down
Dagster never slows or fails ingestion: submission happens after the response, bounded,
and gives up fast; the dispatch sensor is the safety net.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.concurrency import run_in_threadpool

from carinho_pipelines.events import submission
from carinho_pipelines.kernel.queues import HIGH, QUEUES
from carinho_pipelines.kernel.settings import current
from carinho_pipelines.platform import broker_queues
from carinho_pipelines.store import EventStore
from carinho_pipelines.kernel.tags import BY_RELAY

log = logging.getLogger("relay.submit")

#: launches in flight at once (the webserver creates runs in its thread pool)
MAX_IN_FLIGHT = 4
#: events waiting for a launch slot; beyond this they are left to the sensor
MAX_WAITING = 2000
#: strict priority at launch: while integrations-high's Celery queue has a backlog, an
#: event of another queue waits (at most broker_queues.YIELD_TO_HIGH_MAX_SECONDS) before
#: its run is launched, so the webserver's launches and the database's work for them do
#: not take the CPU the leads' runs need (benchmarks/README.md, "The burst"); the same
#: signal holds those runs in their workers (platform/celery_app.yield_to_high) and the
#: dispatch sensor's launches (events/sensors.py). One broker answer every
#: YIELD_POLL_SECONDS serves every launcher.
_HIGH_PRIORITY = -QUEUES[HIGH].priority


enabled = submission.enabled


class Submitter:
    """Launches runs in queue-priority order: in a burst, an ``integrations-high`` event
    acknowledged after 100 ``notifications`` ones is still submitted first. Nothing is
    claimed while it waits here, so a relay that stops with events waiting leaves them
    to the sensor, which dispatches unclaimed events at its next tick."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._waiting: asyncio.PriorityQueue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task] = []  # held: the loop keeps only weak references
        self._broker_url = current().celery_broker_url  # None: no warm workers, no backlog
        self._held_since: dict[int, float] = {}
        self._backlog: tuple[float, int] = (0.0, 0)  # (asked at, answer)

    def _start(self) -> asyncio.PriorityQueue:
        loop = asyncio.get_running_loop()
        if self._waiting is None or self._loop is not loop:  # first use, or a new event loop
            self._loop, self._waiting = loop, asyncio.PriorityQueue(MAX_WAITING)
            self._workers = [loop.create_task(self._launch_loop(self._waiting)) for _ in range(MAX_IN_FLIGHT)]
        return self._waiting

    async def submit(self, event_id: int, queue: str | None = None) -> None:
        """Background task after the 202: never raises, never blocks the relay."""
        spec = QUEUES.get(queue or "")
        try:
            self._start().put_nowait((-(spec.priority if spec else 0), event_id))
        except asyncio.QueueFull:
            log.warning("direct submission saturated; the sensor will dispatch event %s", event_id)

    async def _launch_loop(self, waiting: asyncio.PriorityQueue) -> None:
        while True:
            priority, event_id = await waiting.get()
            try:
                if await self._yields_to_high(priority, event_id):
                    waiting.put_nowait((priority, event_id))  # back in line: a lead that came meanwhile goes first
                    await asyncio.sleep(broker_queues.YIELD_POLL_SECONDS)
                    continue
                await run_in_threadpool(self.submit_now, event_id)
            except Exception:  # a failed submission is the sensor's to recover
                log.exception("direct submission of event %s failed; the sensor will dispatch it", event_id)
            finally:
                waiting.task_done()

    async def _yields_to_high(self, priority: int, event_id: int) -> bool:
        """Hold an event of another queue while integrations-high has a backlog, for at
        most ``broker_queues.YIELD_TO_HIGH_MAX_SECONDS`` per event."""
        if self._broker_url is None or priority <= _HIGH_PRIORITY:
            return False
        now = time.monotonic()
        held_since = self._held_since.setdefault(event_id, now)
        if now - held_since < broker_queues.YIELD_TO_HIGH_MAX_SECONDS:
            asked_at, backlog = self._backlog
            if now - asked_at >= broker_queues.YIELD_POLL_SECONDS:
                backlog = await run_in_threadpool(broker_queues.high_backlog, self._broker_url)
                self._backlog = (time.monotonic(), backlog)
            if backlog > 0:
                return True
        self._held_since.pop(event_id, None)
        return False

    async def close(self) -> None:
        """At shutdown: stop launching. The events still waiting were never claimed, so
        the dispatch sensor dispatches them at its next tick; a launch already under way
        ends within its timeout."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._waiting = None

    async def drain(self) -> None:
        """Wait until every event handed to :meth:`submit` has been tried (tests, shutdown)."""
        if self._waiting is not None:
            await self._waiting.join()

    def claim(self, event_id: int) -> bool:
        return submission.claim(self.store, event_id)

    def submit_now(self, event_id: int, launched_by: str = BY_RELAY) -> str | None:
        return submission.submit_now(self.store, event_id, launched_by)
