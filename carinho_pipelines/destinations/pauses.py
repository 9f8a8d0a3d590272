"""Pause and resume a destination (issue 16): a maintenance window, announced.

While a destination is paused its actions *wait*: the action op records ``paused`` in the
ledger and ends without calling (the run succeeds: not failed, not in the DLQ, holding no
run-queue slot or worker afterwards); the run is tagged ``carinho/paused``. When the
destination is resumed, or its ``until`` passes, ``paused_actions_sensor`` starts one
new run per waiting event; the ledger makes it call only what waited (nothing twice).
A run's other actions go on meanwhile; an action that depends on a paused one waits too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from carinho_pipelines.kernel.settings import SYSTEMS
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import destination_pauses

#: every destination an action calls (the catalogue's, but the hub's own bookkeeping)
DESTINATIONS: tuple[str, ...] = (*SYSTEMS, "whatsapp", "email")
#: the ledger status of an action waiting for its destination
PAUSED = "paused"


def pause(store: EventStore, destination: str, reason: str, until: dt.datetime | None, who: str) -> dict[str, Any]:
    """Pause (or re-pause with a new reason/until) ``destination``."""
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(destination_pauses.delete().where(destination_pauses.c.destination == destination))
        conn.execute(destination_pauses.insert().values(destination=destination, reason=reason[:500], paused_at=now,
                                                        paused_by=who[:64], until=as_utc(until)))
    return active(store, now)[destination]


def resume(store: EventStore, destination: str) -> bool:
    """Resume ``destination``; False when it was not paused."""
    with store.engine.begin() as conn:
        return conn.execute(destination_pauses.delete().where(
            destination_pauses.c.destination == destination)).rowcount > 0


def active(store: EventStore, now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """The destinations paused now (a pause whose ``until`` passed is over)."""
    now = now or utcnow()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(destination_pauses)).mappings().all()
    out = {}
    for row in rows:
        until = as_utc(row["until"])
        if until is None or until > now:
            out[row["destination"]] = {"reason": row["reason"], "since": as_utc(row["paused_at"]).isoformat(),
                                       "by": row["paused_by"], "until": until.isoformat() if until else None}
    return out


def is_paused(store: EventStore, destination: str, now: dt.datetime | None = None) -> dict[str, Any] | None:
    return active(store, now).get(destination)
