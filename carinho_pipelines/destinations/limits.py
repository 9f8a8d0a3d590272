"""Per-destination pacing and concurrency (issue 16): one table, with its defaults.

* **Concurrency** (calls in flight at once to a destination, across every run and
  worker) is Dagster's own mechanism: each action op is in the concurrency pool
  ``destination-<name>`` (events/jobs.py), and :func:`apply_pool_limits` writes these
  limits into the instance (``carinho instance limits``; ``carinho run`` and the deploy's
  migrate step run it). What pools can do: bound the calls across all runs, shown in the
  UI (Deployment → Concurrency). What they can't: a rate (calls per second), a limit
  written in dagster.yaml per pool (only ``concurrency.pools.default_limit`` is), and
  with op granularity an op waiting for a slot keeps its run, and so its worker, busy.
* **Rate** (Z-API messages per second per instance, so the number is not restricted) is
  :func:`reserve`: an atomic UPDATE in the event store hands each call its slot; the
  caller waits for it, or holds the message in the outbox when the wait would be long.

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
whatsapp        2           5 (per instance) 4
=============== =========== =============== ====================
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

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
    # 5/s: above the 10x seed mix's peak, far below a flood (benchmarks/README.md: at 1/s the
    # 10x mix alone waited ~30 s in the run queue behind paced messages)
    "whatsapp": DestinationLimit(2, per_second=5.0),
}
#: a paced call that would wait longer than this is held (the outbox sends it later)
MAX_PACE_WAIT_SECONDS = 10.0


def pool_of(destination: str) -> str | None:
    """The Dagster concurrency pool of a destination's actions (None: not limited)."""
    return f"destination-{destination}" if destination in LIMITS else None


def reserve(store: EventStore, destination: str, now: float | None = None) -> float:
    """Take the destination's next call slot; returns the seconds to wait for it (0 when
    the destination is not paced). Atomic across processes: one UPDATE moves the slot."""
    limit = LIMITS.get(destination)
    if limit is None or not limit.per_second:
        return 0.0
    interval = 1.0 / limit.per_second
    now = time.time() if now is None else now
    with store.engine.begin() as conn:
        conn.execute(dialect_insert(store.dialect)(destination_pace).values(destination=destination, next_at=now)
                     .on_conflict_do_nothing(index_elements=["destination"]))
        start = sa.case((destination_pace.c.next_at > now, destination_pace.c.next_at), else_=now)
        next_at = conn.execute(destination_pace.update().where(destination_pace.c.destination == destination)
                               .values(next_at=start + interval).returning(destination_pace.c.next_at)).scalar_one()
    return max(0.0, next_at - interval - now)


def pace(store: EventStore, destination: str) -> bool:
    """Wait for the destination's next slot; False (without waiting) when the wait would
    exceed :data:`MAX_PACE_WAIT_SECONDS` (the caller holds the call instead)."""
    wait = reserve(store, destination)
    if wait > MAX_PACE_WAIT_SECONDS:
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
