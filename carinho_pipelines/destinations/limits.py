"""Per-destination pacing and concurrency (issue 16): one table, with its defaults.

* **Concurrency** (calls in flight at once to a destination, across every run and
  worker) is Dagster's own mechanism, its concurrency pools: ``destination-<name>``,
  whose limits :func:`apply_pool_limits` writes into the instance (``carinho instance
  limits``; ``carinho run`` and the deploy's migrate step run it), shown in the UI
  (Deployment → Concurrency). The action op claims its slot around the call itself
  (destinations/slots.py) rather than declaring ``pool=``. What pools can do: bound the
  calls across all runs, by run priority. What they can't: a rate (calls per second), a
  limit per pool written in dagster.yaml (only ``concurrency.pools.default_limit``
  is), and, declared on an op, a wait that doesn't hold the run and its worker (the
  executor retries a blocked claim after 1 s, growing to 15 s).
* **Rate** (Z-API messages per second per instance) is :func:`reserve`: an atomic
  conditional UPDATE in the event store hands each call its slot; the caller waits for
  it, or holds the message in the outbox when the slot is further away than its queue
  may wait (:func:`pace_ahead`). Z-API spaces the real WhatsApp sends 1–3 s apart in
  its own queue (shared/reference/zapi.md §2.7); the rate bounds what the hub hands it.

Defaults (override none: change the table and redeploy):

=============== =========== =============== ====================
destination     concurrency per second      a sync run's calls
=============== =========== =============== ====================
crm             4                           8
operacao        4                           8
financeiro      4                           8
cuidadores      4                           8
atendimento     2                           4
marketing       2                           4
site            2                           4
documentos      2                           4
email           2                           4
whatsapp        2           20 per instance 4
=============== =========== =============== ====================
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from carinho_pipelines.kernel.queues import HIGH
from carinho_pipelines.store import EventStore, dialect_insert
from carinho_pipelines.store.tables import destination_pace


@dataclass(frozen=True)
class DestinationLimit:
    #: event actions' calls in flight at once, across every run (a Dagster concurrency pool)
    concurrency: int
    #: calls per second (None: unpaced)
    per_second: float | None = None
    #: a sync run's calls in flight at once (its pages and writes; syncs/limits.py,
    #: overridable with CARINHO_SYNC_CONCURRENCY)
    sync_per_run: int = 4


LIMITS: dict[str, DestinationLimit] = {
    "crm": DestinationLimit(4, sync_per_run=8), "operacao": DestinationLimit(4, sync_per_run=8),
    "financeiro": DestinationLimit(4, sync_per_run=8), "cuidadores": DestinationLimit(4, sync_per_run=8),
    "atendimento": DestinationLimit(2), "marketing": DestinationLimit(2),
    "site": DestinationLimit(2), "documentos": DestinationLimit(2), "email": DestinationLimit(2),
    # 20/s: a burst's auto-replies reach Z-API within ~2 s (at 5/s, 33 of them took 7 s;
    # at 1/s the 10x mix alone waited ~30 s): benchmarks/README.md
    "whatsapp": DestinationLimit(2, per_second=20.0),
}
#: how long an action waits in its worker for one of its destination's concurrency slots
#: (destinations/slots.py) before it waits outside the run instead
SLOT_WAIT_SECONDS = 5.0

#: how far ahead a paced call may book its slot, by the queue of its event; a call whose
#: slot would be further away is *held* without booking one (the outbox sends it later,
#: paced, from one flush run). Lower-priority messages never book more than
#: ``PACE_AHEAD_SECONDS`` ahead, so in a burst a lead's auto-reply (integrations-high)
#: still finds a slot within about that, and no worker sleeps long for a slot.
MAX_PACE_WAIT_SECONDS = 10.0
PACE_AHEAD_SECONDS = 0.25
PACE_AHEAD_BY_QUEUE = {HIGH: MAX_PACE_WAIT_SECONDS}
#: slots are this much further apart than 1/rate, so that a call delayed on its way (a
#: loaded machine) never makes the receiver see more than the rate in any 1 s window
PACE_GUARD = 1.1


def pace_ahead(queue: str | None) -> float:
    """How far ahead a call of an event on ``queue`` may book (None: the outbox flush)."""
    return MAX_PACE_WAIT_SECONDS if queue is None else PACE_AHEAD_BY_QUEUE.get(queue, PACE_AHEAD_SECONDS)


def pool_of(destination: str) -> str | None:
    """The Dagster concurrency pool of a destination's actions (None: not limited)."""
    return f"destination-{destination}" if destination in LIMITS else None


def reserve(store: EventStore, destination: str, now: float | None = None,
            ahead: float = MAX_PACE_WAIT_SECONDS) -> float | None:
    """Book the destination's next call slot if it starts within ``ahead`` seconds;
    returns the seconds to wait for it (0 when the destination is not paced), or None
    (nothing booked) when the next slot is further away. Atomic across processes: one
    conditional UPDATE moves the slot."""
    limit = LIMITS.get(destination)
    if limit is None or not limit.per_second:
        return 0.0
    interval = PACE_GUARD / limit.per_second
    now = time.time() if now is None else now
    with store.engine.begin() as conn:
        conn.execute(dialect_insert(store.dialect)(destination_pace).values(destination=destination, next_at=now)
                     .on_conflict_do_nothing(index_elements=["destination"]))
        start = sa.case((destination_pace.c.next_at > now, destination_pace.c.next_at), else_=now)
        next_at = conn.execute(destination_pace.update()
                               .where(destination_pace.c.destination == destination, start <= now + ahead)
                               .values(next_at=start + interval).returning(destination_pace.c.next_at)).scalar()
    return None if next_at is None else max(0.0, next_at - interval - now)


def pace(store: EventStore, destination: str, ahead: float = MAX_PACE_WAIT_SECONDS) -> bool:
    """Wait for the destination's next slot; False (without waiting or booking) when it
    is more than ``ahead`` seconds away (the caller holds the call instead)."""
    wait = reserve(store, destination, ahead=ahead)
    if wait is None:
        return False
    if wait > 0:
        time.sleep(wait)  # the pacing itself: this call's slot is ``wait`` seconds away
    return True


def apply_pool_limits(instance) -> dict[str, int]:
    """Write every destination's concurrency into ``instance`` (a DagsterInstance) as its
    pool's slot count; idempotent. Returns pool → limit."""
    applied = {}
    for destination, limit in LIMITS.items():
        pool = pool_of(destination)
        instance.event_log_storage.set_concurrency_slots(pool, limit.concurrency)
        applied[pool] = limit.concurrency
    return applied
