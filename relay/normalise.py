"""Normalisation of every inbound shape into the canonical :class:`Envelope`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from carinho_pipelines.kernel import catalogue
from carinho_pipelines.kernel.privacy import PHONE_KEYS, normalize_phone
from carinho_pipelines.kernel.settings import WHATSAPP_SOURCE

from . import schemas, validation
from .errors import ApiError, invalid
from carinho_pipelines.store import Envelope, utcnow

#: Types recorded for audit/health but never dispatched (not in the catalogue).
RECORDED_ONLY = ("whatsapp.connection", "whatsapp.presence", "whatsapp.other")
_RATING = re.compile(r"^rating_([1-5])$")


def body_hash(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def parse_time(value: Any) -> dt.datetime | None:
    """ISO-8601 strings and epoch seconds/milliseconds (Z-API's ``momment``)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            # in UTC: PostgreSQL refuses offsets beyond ±15:59 (ISO allows up to ±23:59)
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
        except (ValueError, OverflowError):  # not ISO-8601, or out of range once in UTC
            return None
    return None


def event_type_problems(event_type: Any) -> list[dict[str, str]]:
    if not isinstance(event_type, str) or not event_type:
        return [{"field": "event_type", "reason": "required"}]
    if event_type not in catalogue.CATALOGUE:
        return [{"field": "event_type", "reason": f"unknown event type {event_type!r}"}]
    return []


def invalid_event(found: list[dict[str, str]]) -> ApiError:
    """The 422 for ``found``; ``unknown_event_type`` (with the known ones) when the type is."""
    error = validation.failed(found)
    if any(p["field"] == "event_type" for p in found):
        error.extra["known"] = list(catalogue.EVENT_TYPES)
        if any(p["field"] == "event_type" and p["reason"].startswith("unknown") for p in found):
            error.error = "unknown_event_type"
    return error


def check_origin(source: str, event_type: str) -> None:
    if not catalogue.may_post(source, event_type):
        origins = ", ".join(catalogue.CATALOGUE[event_type].origins)
        raise ApiError(403, "forbidden", f"{source!r} may not post {event_type!r} (origin: {origins})")


def _normalise_phones(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key in PHONE_KEYS & out.keys():
        value = out[key]
        if value in (None, ""):
            continue
        if not isinstance(value, (str, int)):
            raise invalid(key, "must be a phone number string")
        phone = normalize_phone(str(value))
        if phone is None:
            raise invalid(key, "is not a valid phone number")
        out[key] = phone
    return out


def payload_problems(event_type: str, payload: Any, prefix: str = "") -> list[dict[str, str]]:
    """Every problem of ``payload`` against its event type's schema (the catalogue's)."""
    if not isinstance(payload, dict):
        return [{"field": prefix or "payload", "reason": "must be a JSON object"}]
    return validation.payload_problems(event_type, payload, prefix)


def validate_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The catalogue's schema (required fields, types, e-mails, phones); phones normalised."""
    found = payload_problems(event_type, payload)
    if found:
        raise validation.failed(found)
    return _normalise_phones(payload)


def system_envelope(
    *,
    event_type: str,
    source: str,
    payload: dict[str, Any],
    idempotency_key: str | None,
    occurred_at: Any = None,
    problems: list[dict[str, str]] | None = None,
) -> Envelope:
    """The envelope of a system's event; every problem (``problems`` found by the route,
    the payload's, the idempotency key's) in one 422."""
    found = [*(problems or []), *payload_problems(event_type, payload)]
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 255):
        found.append({"field": "idempotency_key", "reason": "must be a non-empty string of at most 255 characters"})
    found = validation.unique(found)
    if found:
        raise validation.failed(found)
    payload = _normalise_phones(payload)
    key = idempotency_key or body_hash(source, event_type, payload)
    return Envelope(
        event_type=event_type,
        source=source,
        idempotency_key=key,
        queue=catalogue.queue_for(event_type),
        payload=payload,
        occurred_at=parse_time(occurred_at) or utcnow(),
    )


# -- Z-API ----------------------------------------------------------------------

_CONTENT_KINDS = ("text", "image", "audio", "video", "document", "contact", "location", "sticker", "reaction",
                  "buttonsResponseMessage", "listResponseMessage")


def _filter_reason(cb: dict[str, Any]) -> str | None:
    if cb.get("fromMe"):
        return "from_me"
    if cb.get("isGroup"):
        return "group"
    if cb.get("isNewsletter"):
        return "newsletter"
    if cb.get("broadcast"):
        return "broadcast"
    if cb.get("isStatusReply"):
        return "status_reply"
    if "notification" in cb:
        return "notification"
    if cb.get("waitingMessage"):
        return "waiting_message"
    return None


def _message_text(cb: dict[str, Any]) -> str | None:
    text = cb.get("text")
    if isinstance(text, dict):
        return text.get("message")
    for kind in ("image", "video"):
        if isinstance(cb.get(kind), dict):
            return cb[kind].get("caption")
    button = cb.get("buttonsResponseMessage")
    if isinstance(button, dict):
        return button.get("message")
    listed = cb.get("listResponseMessage")
    if isinstance(listed, dict):
        return listed.get("message") or listed.get("title")
    return None


def _media_url(cb: dict[str, Any]) -> str | None:
    for kind, key in (("image", "imageUrl"), ("audio", "audioUrl"), ("video", "videoUrl"), ("document", "documentUrl"),
                      ("sticker", "stickerUrl")):
        if isinstance(cb.get(kind), dict):
            return cb[kind].get(key)
    return None


def received_envelope(cb: dict[str, Any]) -> Envelope:
    validation.check(schemas.ZAPI_RECEIVED, cb)
    message_id = cb["messageId"]
    key = message_id
    if cb.get("isEdit"):
        key = f"{message_id}:edit:{cb.get('editMessageId') or cb.get('momment')}"
    occurred = parse_time(cb.get("momment")) or utcnow()
    reason = _filter_reason(cb)
    raw_phone = cb.get("phone")
    phone = normalize_phone(str(raw_phone)) if raw_phone and reason is None else raw_phone
    kind = next((k for k in _CONTENT_KINDS if k in cb), None)
    normalised = {
        "message_id": message_id,
        "phone": phone,
        "name": cb.get("senderName") or cb.get("chatName"),
        "message": _message_text(cb),
        "kind": kind,
        "media_url": _media_url(cb),
        "reference_message_id": cb.get("referenceMessageId"),
        "received_at": occurred.isoformat(),
        "zapi": cb,
    }
    button = cb.get("buttonsResponseMessage")
    if reason is None and isinstance(button, dict):
        match = _RATING.match(str(button.get("buttonId", "")))
        if match:
            normalised.update(rating=int(match.group(1)), channel="whatsapp")
            return Envelope(
                event_type="feedback.received",
                source=WHATSAPP_SOURCE,
                idempotency_key=key,
                queue=catalogue.queue_for("feedback.received"),
                payload=normalised,
                occurred_at=occurred,
            )
    if reason is None and not phone:
        reason = "no_phone"
    return Envelope(
        event_type="whatsapp.inbound",
        source=WHATSAPP_SOURCE,
        idempotency_key=key,
        queue=catalogue.queue_for("whatsapp.inbound"),
        payload=normalised,
        occurred_at=occurred,
        filtered_reason=reason,
    )


def status_envelope(cb: dict[str, Any]) -> tuple[Envelope, tuple[str, list[str]]]:
    validation.check(schemas.ZAPI_STATUS, cb)
    status, ids = cb["status"], sorted(set(cb["ids"]))
    status = status.upper()
    payload = {
        "status": status,
        "ids": ids,
        "phone": normalize_phone(str(cb["phone"])) if cb.get("phone") and not cb.get("isGroup") else cb.get("phone"),
        "is_group": bool(cb.get("isGroup")),
        "zapi": cb,
    }
    env = Envelope(
        event_type="whatsapp.status",
        source=WHATSAPP_SOURCE,
        idempotency_key=f"{status}:{','.join(ids)}"[:255] if len(",".join(ids)) < 200 else body_hash(status, ids),
        queue=catalogue.queue_for("whatsapp.status"),
        payload=payload,
        occurred_at=parse_time(cb.get("momment")) or utcnow(),
        filtered_reason="group" if cb.get("isGroup") else None,
    )
    return env, (status, ids)


def delivery_envelope(cb: dict[str, Any]) -> tuple[Envelope, tuple[str, list[str]]]:
    """A DeliveryCallback (handed to WhatsApp, or failed) as a ``whatsapp.status``."""
    validation.check(schemas.ZAPI_DELIVERY, cb)
    message_id = cb["messageId"]
    failed = bool(cb.get("error"))
    status = "FAILED" if failed else "SENT"
    payload = {
        "status": status,
        "ids": [message_id],
        "phone": normalize_phone(str(cb["phone"])) if cb.get("phone") else None,
        "error": cb.get("error"),
        "error_code": cb.get("errorCode"),
        "delivery": True,
        "zapi": cb,
    }
    env = Envelope(
        event_type="whatsapp.status",
        source=WHATSAPP_SOURCE,
        idempotency_key=f"delivery:{message_id}:{'error' if failed else 'ok'}",
        queue=catalogue.queue_for("whatsapp.status"),
        payload=payload,
        occurred_at=parse_time(cb.get("momment")) or utcnow(),
    )
    return env, (status, [message_id])


def recorded_envelope(event_type: str, reason: str, cb: dict[str, Any]) -> Envelope:
    return Envelope(
        event_type=event_type,
        source=WHATSAPP_SOURCE,
        idempotency_key=body_hash(event_type, cb),
        queue="none",
        payload={"zapi": cb},
        occurred_at=parse_time(cb.get("momment")) or utcnow(),
        filtered_reason=reason,
    )
