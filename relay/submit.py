"""Direct submission: right after an event is committed (and acknowledged), the relay
submits its run to Dagster itself (GraphQL ``launchRun``, the same tags the sensor
would set), instead of waiting for the sensor's next tick.

Exactly once: the relay first *claims* the event (a conditional UPDATE), launches,
then writes the run id back. The dispatch sensor leaves freshly claimed events alone
and is the safety net: when a submission failed or the relay crashed between commit
and submit, the claim goes stale and the sensor dispatches the event (after checking
that no run carries its ``carinho/event_id``). A slow or down Dagster never slows or
fails ingestion: submission happens after the response, bounded, and gives up fast.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import httpx
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from carinho_pipelines.catalogue import CATALOGUE
from carinho_pipelines.queues import QUEUES
from carinho_pipelines.settings import env
from carinho_pipelines.tags import BY_RELAY, event_run_tags

from . import dagster_gql
from .store import EventStore, utcnow
from .tables import events

log = logging.getLogger("relay.submit")

#: after this, a claim whose run never appeared is the sensor's to dispatch
CLAIM_TTL = dt.timedelta(seconds=float(env("CARINHO_SUBMIT_CLAIM_SECONDS", "30") or 30))
#: the whole launch must end well inside the claim's lifetime
LAUNCH_TIMEOUT = httpx.Timeout(5.0, connect=1.0)
#: launches in flight at once (the webserver creates runs in its thread pool)
MAX_IN_FLIGHT = 4
#: events waiting for a launch slot; beyond this they are left to the sensor
MAX_WAITING = 2000


def enabled() -> bool:
    return (env("CARINHO_DIRECT_SUBMIT", "false") or "false").lower() in ("1", "true", "yes", "on")


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
            _priority, event_id = await waiting.get()
            try:
                await run_in_threadpool(self.submit_now, event_id)
            except Exception:  # a failed submission is the sensor's to recover
                log.exception("direct submission of event %s failed; the sensor will dispatch it", event_id)
            finally:
                waiting.task_done()

    async def drain(self) -> None:
        """Wait until every event handed to :meth:`submit` has been tried (tests, shutdown)."""
        if self._waiting is not None:
            await self._waiting.join()

    def claim(self, event_id: int) -> bool:
        # only an unclaimed event: the relay does not check for an existing run, so a
        # stale claim (the sensor's, or an earlier relay's) is the sensor's to resolve
        return event_id in claim_events(self.store.engine, [event_id], utcnow(), take_over_stale=False)

    def submit_now(self, event_id: int, launched_by: str = BY_RELAY) -> str | None:
        if not self.claim(event_id):
            return None
        event = self.store.get_event(event_id)
        spec = CATALOGUE.get(event["event_type"]) if event else None
        if spec is None:
            return None
        try:
            run_id = dagster_gql.launch_job(spec.job_name, event_run_tags(event, launched_by), timeout=LAUNCH_TIMEOUT)
        except (dagster_gql.DagsterUnavailable, dagster_gql.LaunchFailed) as exc:
            log.warning("event %s not submitted (%s); the sensor will dispatch it", event_id, exc)
            return None
        with self.store.engine.begin() as conn:
            conn.execute(
                events.update()
                .where(events.c.id == event_id, events.c.run_id.is_(None))
                .values(run_id=run_id, dispatched_at=utcnow())
            )
        return run_id


def claim_events(engine: sa.Engine, event_ids: list[int], now: dt.datetime, *, take_over_stale: bool) -> set[int]:
    """The one claim taken before launching an event's run, by the relay and by the
    dispatch sensor alike: of ``event_ids``, those due, not filtered, not dispatched and
    not claimed (or, with ``take_over_stale``, whose claim went stale) are claimed now
    and returned. Whoever holds the claim launches; the other skips."""
    if not event_ids:
        return set()
    claimable = sa.not_(claim_is_fresh(now)) if take_over_stale else events.c.submit_claimed_at.is_(None)
    with engine.begin() as conn:
        return set(conn.execute(
            events.update()
            .where(events.c.id.in_(event_ids), events.c.run_id.is_(None), events.c.filtered_reason.is_(None),
                   events.c.available_at <= now, claimable)
            .values(submit_claimed_at=now)
            .returning(events.c.id)
        ).scalars())


def claim_is_fresh(now: dt.datetime):
    """SQL condition for the sensor: the relay is (still) submitting this event."""
    return sa.and_(events.c.submit_claimed_at.is_not(None), events.c.submit_claimed_at > now - CLAIM_TTL)
