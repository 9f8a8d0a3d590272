"""The WhatsApp outbox, all of it (CONTRACTS §6 contingency): its rows in the event
store, the delivery through Z-API, and the flush job with the sensor that starts it.

A message is written to the outbox first, then sent if Z-API is reachable and the
instance connected. Otherwise it stays ``pending`` (the action's outcome is ``held``)
and the ``whatsapp_outbox_sensor`` flushes it once the instance is back: never lost,
and sent at most once (``pending → sending`` is an atomic claim). A message whose
Z-API slot is more than its queue may wait for (destinations/limits.py ``pace_ahead``:
a burst, a flood) is held the same way and sent by the next flush, paced.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)

from carinho_pipelines.destinations import limits, pauses
from carinho_pipelines.dlq.hooks import dlq_on_failure
from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.kernel.privacy import mask_phone
from carinho_pipelines.kernel.queues import NOTIFICATIONS, QUEUES
from carinho_pipelines.platform.dagster_internals import IN_PROGRESS_RUN_STATUSES
from carinho_pipelines.resources import ZApiResource
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.store import EventStore, dialect_insert, utcnow
from carinho_pipelines.store.tables import whatsapp_outbox

from .ledger import claim_auto_reply

log = logging.getLogger(__name__)

STATUS_CACHE_SECONDS = 10
_status_cache: dict[str, tuple[float, bool]] = {}
_cache_lock = threading.Lock()


def instance_ready(zapi: ZApiResource, *, fresh: bool = False) -> bool:
    """Z-API reachable and the instance connected (cached briefly per process)."""
    key = f"{zapi.base_url}/{zapi.instance_id}"
    with _cache_lock:
        cached = _status_cache.get(key)
    if cached and not fresh and time.monotonic() - cached[0] < STATUS_CACHE_SECONDS:
        return cached[1]
    try:
        ready = bool(zapi.status()["connected"])
    except ActionError:
        ready = False
    with _cache_lock:
        _status_cache[key] = (time.monotonic(), ready)
    return ready


def forget_status() -> None:
    with _cache_lock:
        _status_cache.clear()


def _send(zapi: ZApiResource, row: dict[str, Any]) -> dict[str, Any]:
    body = row["body"]
    if row["kind"] == "button_list":
        return zapi.send_button_list(row["phone"], body["message"], body["buttons"])
    if row["kind"] == "link":
        return zapi.send_link(row["phone"], body["message"], body["link_url"], body["title"], body["link_description"])
    return zapi.send_text(row["phone"], body["message"])


def deliver(store: EventStore, zapi: ZApiResource, row: dict[str, Any],
            ahead: float = limits.MAX_PACE_WAIT_SECONDS) -> dict[str, Any]:
    """Try to send one outbox row, waiting at most ``ahead`` seconds for its Z-API slot
    (limits.pace_ahead). Returns the outcome; raises ActionError only for a message
    Z-API rejected (a person must look at it)."""
    if row["status"] == "sent":
        return {"status": "succeeded", "message_id": row["message_id"], "outbox_id": row["id"]}
    if row["status"] in ("sending", "failed"):
        return {"status": "held", "outbox_status": row["status"], "outbox_id": row["id"]}
    if not instance_ready(zapi):
        return {"status": "held", "reason": "whatsapp unavailable", "outbox_id": row["id"]}
    if not outbox_claim(store, row["id"]):
        return {"status": "held", "reason": "being sent by another run", "outbox_id": row["id"]}
    if not limits.pace(store, "whatsapp", ahead):  # Z-API's rate: a long wait is held, not slept through
        outbox_finish(store, row["id"], "pending", error="paced: the per-second limit is busy")
        return {"status": "held", "reason": "paced (messages per second)", "outbox_id": row["id"]}
    try:
        response = _send(zapi, row)
    except ActionError as err:
        if err.retryable:
            outbox_finish(store, row["id"], "pending", error=err.message)
            forget_status()
            return {"status": "held", "reason": f"whatsapp unavailable ({err.message})", "outbox_id": row["id"]}
        outbox_finish(store, row["id"], "failed", error=err.message)
        raise
    message_id = response.get("messageId") or response.get("id")
    outbox_finish(store, row["id"], "sent", message_id=message_id)
    log.info("whatsapp %s sent to %s", row["kind"], mask_phone(row["phone"]))
    return {"status": "succeeded", "message_id": message_id, "outbox_id": row["id"]}


def flush(store: EventStore, zapi: ZApiResource, limit: int = 200) -> dict[str, int]:
    """Send what the outbox holds, oldest first; stops at the first sign of an outage.
    Nothing goes while ops have WhatsApp paused (destinations/pauses.py)."""
    sent = held = failed = 0
    if pauses.is_paused(store, "whatsapp"):
        return {"sent": 0, "held": len(outbox_pending(store, limit)), "failed": 0}
    for row in outbox_pending(store, limit):
        try:
            outcome = deliver(store, zapi, row)
        except ActionError:
            failed += 1
            continue
        if outcome["status"] == "succeeded":
            sent += 1
        else:
            held += 1
            if outcome.get("reason", "").startswith("whatsapp unavailable"):
                break
    return {"sent": sent, "held": held, "failed": failed}


# -- the outbox rows ----------------------------------------------------------------


def outbox_enqueue(
    store: EventStore,
    *,
    event_id: int,
    action: str,
    phone: str,
    kind: str,
    body: dict[str, Any],
    guard: tuple[str, dt.timedelta] | None = None,
) -> dict[str, Any] | None:
    """The outbox row of (event, action), created if new. With ``guard`` (phone,
    window) the row is only created when the auto-reply guard allows it, in the same
    transaction; returns None when the guard refused."""
    insert = dialect_insert(store.dialect)
    now = utcnow()
    with store.engine.begin() as conn:
        existing = conn.execute(
            sa.select(whatsapp_outbox).where(whatsapp_outbox.c.event_id == event_id, whatsapp_outbox.c.action == action)
        ).mappings().first()
        if existing is not None:
            return dict(existing)
        if guard is not None and not claim_auto_reply(conn, store.dialect, guard[0], now, guard[1]):
            return None
        conn.execute(
            insert(whatsapp_outbox)
            .values(event_id=event_id, action=action, phone=phone, kind=kind, body=body, status="pending", created_at=now)
            .on_conflict_do_nothing(index_elements=["event_id", "action"])
        )
        row = conn.execute(
            sa.select(whatsapp_outbox).where(whatsapp_outbox.c.event_id == event_id, whatsapp_outbox.c.action == action)
        ).mappings().one()
    return dict(row)


def outbox_claim(store: EventStore, outbox_id: int) -> bool:
    """pending → sending, atomically: only one sender sends a message."""
    with store.engine.begin() as conn:
        result = conn.execute(
            whatsapp_outbox.update()
            .where(whatsapp_outbox.c.id == outbox_id, whatsapp_outbox.c.status == "pending")
            .values(status="sending", attempts=whatsapp_outbox.c.attempts + 1)
        )
    return result.rowcount == 1


def outbox_finish(store: EventStore, outbox_id: int, status: str, *, message_id: str | None = None, error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == "sent":
        values.update(message_id=message_id, sent_at=utcnow())
    with store.engine.begin() as conn:
        conn.execute(whatsapp_outbox.update().where(whatsapp_outbox.c.id == outbox_id).values(**values))


def outbox_pending(store: EventStore, limit: int = 100) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(whatsapp_outbox).where(whatsapp_outbox.c.status == "pending").order_by(whatsapp_outbox.c.id).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def outbox_by_message_id(store: EventStore, message_id: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(whatsapp_outbox).where(whatsapp_outbox.c.message_id == message_id)).mappings().first()
    return dict(row) if row else None


def outbox_counts(store: EventStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(whatsapp_outbox.c.status, sa.func.count()).group_by(whatsapp_outbox.c.status)).all()
    return {status: int(n) for status, n in rows}


# -- the flush: a job, and the sensor that starts it -------------------------------------------------------------------


@op(required_resource_keys={"event_store", "zapi"})
def send_held_whatsapp_messages(context) -> None:
    """Sends the messages kept while WhatsApp was unavailable, oldest first."""
    forget_status()
    result = flush(context.resources.event_store.store, context.resources.zapi)
    context.log.info(f"outbox flush: {result}")


@job(
    name="flush_whatsapp_outbox",
    executor_def=in_process_executor,
    tags={tags.QUEUE: NOTIFICATIONS, tags.PRIORITY: str(QUEUES[NOTIFICATIONS].priority)},
    hooks={dlq_on_failure},
    description="Send WhatsApp messages held in the outbox during an outage.",
)
def flush_whatsapp_outbox():
    send_held_whatsapp_messages()


@sensor(
    name="whatsapp_outbox_sensor",
    job=flush_whatsapp_outbox,
    # held messages (an outage, or a burst beyond the per-second rate) go out within
    # one interval; an idle tick is one small query
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="When messages are held and the instance is connected, flush them (paced).",
)
def whatsapp_outbox_sensor(context: SensorEvaluationContext, event_store: EventStoreResource, zapi: ZApiResource):
    if pauses.is_paused(event_store.store, "whatsapp"):
        return SkipReason("WhatsApp is paused by ops: held messages wait")
    pending = outbox_pending(event_store.store, limit=1)
    if not pending:
        return SkipReason("outbox empty")
    in_flight = context.instance.get_runs(
        filters=RunsFilter(job_name="flush_whatsapp_outbox", statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1
    )
    if in_flight:
        return SkipReason("a flush is already running")
    if not instance_ready(zapi, fresh=True):
        return SkipReason("messages held: WhatsApp still unavailable")
    return RunRequest(run_key=None, tags={tags.LAUNCHED_BY: tags.BY_OUTBOX_SENSOR})
