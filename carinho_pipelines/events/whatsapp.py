"""Outbound WhatsApp through the outbox (CONTRACTS §6 contingency).

A message is written to the outbox first, then sent if Z-API is reachable and the
instance connected. Otherwise it stays ``pending`` (the action's outcome is ``held``)
and the ``whatsapp_outbox_sensor`` flushes it once the instance is back: never lost,
and sent at most once (``pending → sending`` is an atomic claim).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.kernel.privacy import mask_phone
from carinho_pipelines.resources import ZApiResource
from carinho_pipelines.store import EventStore

from . import ledger

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


def deliver(store: EventStore, zapi: ZApiResource, row: dict[str, Any]) -> dict[str, Any]:
    """Try to send one outbox row. Returns the outcome; raises ActionError only for a
    message Z-API rejected (a person must look at it)."""
    if row["status"] == "sent":
        return {"status": "succeeded", "message_id": row["message_id"], "outbox_id": row["id"]}
    if row["status"] in ("sending", "failed"):
        return {"status": "held", "outbox_status": row["status"], "outbox_id": row["id"]}
    if not instance_ready(zapi):
        return {"status": "held", "reason": "whatsapp unavailable", "outbox_id": row["id"]}
    if not ledger.outbox_claim(store, row["id"]):
        return {"status": "held", "reason": "being sent by another run", "outbox_id": row["id"]}
    try:
        response = _send(zapi, row)
    except ActionError as err:
        if err.retryable:
            ledger.outbox_finish(store, row["id"], "pending", error=err.message)
            forget_status()
            return {"status": "held", "reason": f"whatsapp unavailable ({err.message})", "outbox_id": row["id"]}
        ledger.outbox_finish(store, row["id"], "failed", error=err.message)
        raise
    message_id = response.get("messageId") or response.get("id")
    ledger.outbox_finish(store, row["id"], "sent", message_id=message_id)
    log.info("whatsapp %s sent to %s", row["kind"], mask_phone(row["phone"]))
    return {"status": "succeeded", "message_id": message_id, "outbox_id": row["id"]}


def flush(store: EventStore, zapi: ZApiResource, limit: int = 200) -> dict[str, int]:
    """Send what the outbox holds, oldest first; stops at the first sign of an outage."""
    sent = held = failed = 0
    for row in ledger.outbox_pending(store, limit):
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
