"""The fan-out's bookkeeping in the event store (plain SQLAlchemy, no Dagster):
the per-action ledger, derived events, dispatch marks and the auto-reply guard (the
WhatsApp outbox has its own module, :mod:`.whatsapp_outbox`)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.store import Envelope, EventStore, Ingested, dialect_insert, utcnow
from carinho_pipelines.store.claims import claim_is_fresh, own_event
from carinho_pipelines.store.tables import auto_reply_guard, event_actions, events

from . import submission

#: ledger statuses after which an action is never run again
DONE = ("succeeded", "skipped", "held", "erased")  # "erased": cancelled by an erasure (people/erasure.py)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionRecord:
    status: str
    result: dict[str, Any] | None
    attempts: int
    run_id: str | None
    error_class: str | None
    error_message: str | None


def _upsert_action(store: EventStore, event_id: int, action: str, values: dict[str, Any]) -> None:
    insert = dialect_insert(store.dialect)
    stmt = insert(event_actions).values(event_id=event_id, action=action, updated_at=utcnow(), **values)
    update = {k: stmt.excluded[k] for k in (*values, "updated_at") if k != "attempts"}
    if "attempts" in values:
        update["attempts"] = event_actions.c.attempts + 1
    stmt = stmt.on_conflict_do_update(index_elements=["event_id", "action"], set_=update)
    with store.engine.begin() as conn:
        conn.execute(stmt)


def get_action(store: EventStore, event_id: int, action: str) -> ActionRecord | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(event_actions).where(event_actions.c.event_id == event_id, event_actions.c.action == action)
        ).mappings().first()
    if row is None:
        return None
    return ActionRecord(row["status"], row["result"], row["attempts"], row["run_id"], row["error_class"], row["error_message"])


def actions_of(store: EventStore, event_id: int) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(event_actions).where(event_actions.c.event_id == event_id).order_by(event_actions.c.id)
        ).mappings().all()
    return [dict(r) for r in rows]


def record_outcome(store: EventStore, event_id: int, action: str, status: str, result: dict | None, run_id: str) -> None:
    _upsert_action(
        store, event_id, action,
        {"status": status, "result": result, "run_id": run_id, "error_class": None, "error_message": None, "attempts": 1},
    )


def record_failure(store: EventStore, event_id: int, action: str, error: ActionError | Exception, run_id: str) -> None:
    error_class = error.error_class if isinstance(error, ActionError) else "error"
    message = (error.message if isinstance(error, ActionError) else f"{error.__class__.__name__}: {error}")[:2000]
    _upsert_action(
        store, event_id, action,
        {"status": "failed", "result": None, "run_id": run_id, "error_class": error_class, "error_message": message,
         "attempts": 1},
    )


# -- derived events -----------------------------------------------------------------


def emit_event(store: EventStore, env: Envelope) -> Ingested:
    """Store an event the hub itself creates (idempotent on source + key).

    With direct submission on, a new event that is due now (a lead from an unknown
    WhatsApp phone, say) has its run submitted at once, as the relay does for the events
    it receives, instead of waiting up to a sensor tick (5 s: the whole SLA of
    ``integrations-high``). Delayed events, duplicates and a failed submission are the
    dispatch sensor's, as ever."""
    stored = store.ingest(env)
    if submission.enabled() and not stored.duplicate and env.available_at is None:
        try:
            submission.submit_now(store, stored.event_id, launched_by=tags.BY_EVENT_RUN)
        except Exception:  # noqa: BLE001 - the event is stored; the sensor will dispatch it
            log.exception("direct submission of derived event %s failed; the sensor will dispatch it",
                          stored.event_id)
    return stored


# -- dispatch -----------------------------------------------------------------------


def due_events(store: EventStore, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Events to dispatch: not filtered, not yet marked dispatched, due by ``now``, and
    not being submitted by the relay right now (a fresh direct-submission claim)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(events.c.id, events.c.event_type, events.c.source, events.c.queue, events.c.available_at)
            .where(events.c.run_id.is_(None), events.c.filtered_reason.is_(None), events.c.available_at <= now,
                   sa.not_(claim_is_fresh(now)))
            .order_by(events.c.available_at, events.c.id)
            .limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def claimed_undispatched(store: EventStore, now: dt.datetime, limit: int) -> list[int]:
    """Events freshly claimed (by the relay or a sensor tick) whose run id is not yet
    written back: the sensor looks for their runs to mark them dispatched."""
    with store.engine.connect() as conn:
        return list(conn.execute(
            sa.select(events.c.id).where(events.c.run_id.is_(None), claim_is_fresh(now))
            .order_by(events.c.id).limit(limit)
        ).scalars())


def mark_dispatched(store: EventStore, event_id: int, run_id: str) -> None:
    own_event(store.engine, event_id, run_id, utcnow())


# -- auto-reply guard ---------------------------------------------------------------


def claim_auto_reply(conn: sa.Connection, dialect: str, phone: str, now: dt.datetime, window: dt.timedelta) -> bool:
    """True when no auto-reply went to ``phone`` within ``window`` (and claims it)."""
    stmt = dialect_insert(dialect)(auto_reply_guard).values(phone=phone, last_sent_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["phone"],
        set_={"last_sent_at": stmt.excluded.last_sent_at},
        where=auto_reply_guard.c.last_sent_at <= now - window,
    ).returning(auto_reply_guard.c.phone)
    return conn.execute(stmt).first() is not None


# -- actions waiting for a paused destination ----------------------------------------


def paused_actions(store: EventStore, limit: int = 200) -> list[dict[str, Any]]:
    """Ledger rows ``paused`` (a paused or busy destination), with their event and the
    run that left them waiting (oldest first): what a resume must start."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(event_actions.c.event_id, event_actions.c.action, event_actions.c.result, event_actions.c.run_id,
                      event_actions.c.updated_at, events.c.event_type, events.c.source, events.c.queue)
            .join(events, events.c.id == event_actions.c.event_id)
            .where(event_actions.c.status == "paused")
            .order_by(event_actions.c.event_id).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]
