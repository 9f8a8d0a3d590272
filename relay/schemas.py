"""JSON Schemas of what the relay accepts and answers, beyond the event payloads
(those are the catalogue's: :data:`carinho_pipelines.kernel.catalogue.PAYLOAD_SCHEMAS`).

The relay validates request bodies with these very objects (:mod:`relay.validation`)
and ``/openapi.json`` publishes them (:mod:`relay.openapi`), so the reference and the
checks are one thing. Response schemas describe the operations API for integrators.
"""

from __future__ import annotations

from typing import Any

from carinho_pipelines.kernel import catalogue, settings
from carinho_pipelines.kernel.errors import ERROR_CLASSES
from carinho_pipelines.kernel.queues import QUEUES

from .sync_api import SYNCS

PAYLOADS = catalogue.PAYLOAD_SCHEMAS

#: event types an internal system may post (origins that are systems)
POSTABLE: dict[str, tuple[str, ...]] = {
    name: tuple(o for o in spec.origins if o in settings.SYSTEMS)
    for name, spec in catalogue.CATALOGUE.items()
    if any(o in settings.SYSTEMS for o in spec.origins)
}

IDEMPOTENCY_KEY = {
    "type": "string", "minLength": 1, "maxLength": 255,
    "description": "deduplication key (or the `webhook-id` header); a repeat answers the first event's id",
}
OCCURRED_AT = {"type": ["string", "null"], "format": "date-time", "description": "when it happened (ISO-8601)"}

# -- inbound: envelopes --------------------------------------------------------------

#: ``POST /api/events``: the envelope; ``payload`` is checked against its event type's schema
CANONICAL_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event_type", "source_system", "payload"],
    "properties": {
        "event_type": {"type": "string", "enum": list(catalogue.EVENT_TYPES)},
        "source_system": {"type": "string", "enum": list(settings.SYSTEMS),
                          "description": "must be the system whose token authenticates the request"},
        "payload": {"type": "object", "description": "the event type's payload (components.schemas.<event type>)"},
        "idempotency_key": IDEMPOTENCY_KEY,
        "occurred_at": OCCURRED_AT,
    },
}

#: ``POST /webhooks/systems/{system}``: the type from ``X-Event-Type`` or the body
SYSTEM_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "The event type comes from the `X-Event-Type` header or from `event_type` (also accepted: "
                   "`type`, `event`). The payload is `payload` (or `data`), else the body's other fields.",
    "properties": {
        "event_type": {"type": "string", "enum": list(catalogue.EVENT_TYPES)},
        "payload": {"type": "object"},
        "data": {"type": "object"},
        "idempotency_key": IDEMPOTENCY_KEY,
        "timestamp": OCCURRED_AT,
    },
}
#: what the relay checks of it, besides the event type and the payload
SYSTEM_EVENT_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "properties": {"payload": {"type": "object"}, "data": {"type": "object"}, "idempotency_key": IDEMPOTENCY_KEY},
}

#: route-level rules of the dedicated routes, on top of their event's payload schema
PAYMENT_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["received", "paid", "failed"],
                              "description": "received/paid → payment.received, failed → payment.failed"}},
}
WEBHOOK_EXTRAS: dict[str, Any] = {
    "type": "object",
    "properties": {"idempotency_key": IDEMPOTENCY_KEY},
}

# -- inbound: Z-API callbacks ----------------------------------------------------------


def _callback(kind: str, description: str, required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "title": kind,
        "description": description,
        "required": ["type", *required],
        "properties": {
            "type": {"type": "string", "minLength": 1, "description": f"`{kind}` (compared case-insensitively)",
                     "examples": [kind]},
            "instanceId": {"type": "string", "description": "must be this hub's ZAPI_INSTANCE_ID"},
            "phone": {"type": ["string", "null"]},
            "momment": {"type": ["integer", "number", "null"], "description": "epoch milliseconds"},
            **properties,
        },
    }


_MESSAGE_ID = {"type": "string", "minLength": 1}
ZAPI_RECEIVED = _callback(
    "ReceivedCallback", "A message received (or sent from the phone: `fromMe`).", ("messageId",),
    messageId=_MESSAGE_ID, fromMe={"type": "boolean"}, isGroup={"type": "boolean"},
    senderName={"type": ["string", "null"]}, chatName={"type": ["string", "null"]},
    text={"type": "object", "properties": {"message": {"type": "string"}}},
    buttonsResponseMessage={"type": "object", "properties": {"buttonId": {"type": "string"},
                                                              "message": {"type": "string"}}},
)
ZAPI_RECEIVED["examples"] = [{
    "type": "ReceivedCallback", "instanceId": "3C4E8F0A1B2C3D4E5F60718293A4B5C6", "messageId": "3EB0C431C26A1916E0A6",
    "phone": "5511976543210", "fromMe": False, "momment": 1772454600000, "status": "RECEIVED", "chatName": "Roberto",
    "senderName": "Roberto", "isGroup": False, "text": {"message": "Olá! Vocês têm acompanhante hospitalar?"},
}]
ZAPI_STATUS = _callback(
    "MessageStatusCallback", "Status of messages the hub sent (never moves backwards).", ("status", "ids"),
    status={"type": "string", "minLength": 1, "description": "SENT, RECEIVED, READ, PLAYED"},
    ids={"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    isGroup={"type": "boolean"},
)
ZAPI_STATUS["examples"] = [{"type": "MessageStatusCallback", "instanceId": "3C4E8F0A1B2C3D4E5F60718293A4B5C6",
                            "status": "READ", "ids": ["3EB0C431C26A1916E0A7"], "momment": 1772454660000,
                            "phone": "5511987654321", "isGroup": False}]
ZAPI_DELIVERY = _callback("DeliveryCallback", "A message handed to WhatsApp (or failed: `error`).", ("messageId",),
                          messageId=_MESSAGE_ID, error={"type": ["string", "null"]})
ZAPI_CONNECTION = _callback("ConnectedCallback", "The instance connected (`DisconnectedCallback`: it dropped).",
                            connected={"type": "boolean"}, error={"type": ["string", "null"]})
ZAPI_PRESENCE = _callback("PresenceChatCallback", "Someone is typing / online (recorded only).")
#: callback type (lower case) → its schema; other types are recorded, never dispatched
ZAPI_CALLBACKS: dict[str, dict[str, Any]] = {
    "receivedcallback": ZAPI_RECEIVED,
    "messagestatuscallback": ZAPI_STATUS,
    "deliverycallback": ZAPI_DELIVERY,
    "connectedcallback": ZAPI_CONNECTION,
    "disconnectedcallback": ZAPI_CONNECTION,
    "presencechatcallback": ZAPI_PRESENCE,
}
ZAPI_ANY = _callback("Z-API callback", "Any Z-API callback: dispatched on `type`.")

# -- answers ---------------------------------------------------------------------------

FIELD_PROBLEM = {
    "type": "object", "required": ["field", "reason"],
    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. validation_failed, unauthorized"},
        "message": {"type": "string", "description": "human text"},
        "field": {"type": "string", "description": "422: the first invalid field"},
        "reason": {"type": "string", "description": "422: why the first field is invalid"},
        "fields": {"type": "array", "items": FIELD_PROBLEM, "description": "422: every invalid or missing field"},
        "known": {"type": "array", "items": {"type": "string"}, "description": "the accepted values, when one is unknown"},
    },
}
ACCEPTED: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "duplicate"],
    "properties": {"event_id": {"type": "integer"}, "duplicate": {"type": "boolean"},
                   "status": {"type": "string", "enum": ["received"]}},
    "examples": [{"event_id": 42, "duplicate": False, "status": "received"}],
}

_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
PAGE_META = {
    "type": "object", "required": ["page", "per_page", "total"],
    "properties": {"page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": {"type": "integer"},
                   "scanned": {"type": "integer"}},
}

EVENT_STATES = ["received", "filtered", "scheduled", "dispatched", "running", "succeeded", "failed", "archived"]
EVENT_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event_type", "source", "queue", "status", "received_at"],
    "properties": {
        "id": {"type": "integer"}, "event_type": {"type": "string"}, "source": {"type": "string"},
        "queue": {"type": "string"}, "status": {"type": "string", "enum": EVENT_STATES},
        "filtered_reason": _STR_OR_NULL, "occurred_at": _TIME, "received_at": _TIME, "available_at": _TIME,
        "run_id": _STR_OR_NULL,
    },
}
RUN_REF = {
    "type": "object",
    "properties": {"run_id": {"type": "string"}, "status": {"type": "string"}, "job": {"type": "string"},
                   "parent_run_id": _STR_OR_NULL, "root_run_id": _STR_OR_NULL, "dlq": _STR_OR_NULL},
}
ACTION_OUTCOME = {
    "type": "object",
    "properties": {"action": {"type": "string"}, "status": {"type": "string"}, "error_class": _STR_OR_NULL,
                   "error_message": _STR_OR_NULL, "attempts": _INT_OR_NULL, "run_id": _STR_OR_NULL,
                   "result": {}, "updated_at": _TIME},
}
EVENT_LIST = {"type": "object", "required": ["data", "meta"],
              "properties": {"data": {"type": "array", "items": EVENT_SUMMARY}, "meta": PAGE_META}}
EVENT_DETAIL: dict[str, Any] = {
    "allOf": [EVENT_SUMMARY],
    "type": "object",
    "properties": {
        "idempotency_key": {"type": "string"},
        "payload": {"type": ["object", "null"], "description": "personal data masked"},
        "payload_purged_at": _TIME_OR_NULL,
        "runs": {"type": "array", "items": RUN_REF},
        "actions": {"type": "array", "items": ACTION_OUTCOME},
    },
}

DLQ_ITEM: dict[str, Any] = {
    "type": "object",
    "description": "CONTRACTS §10: a failed run nobody archived (or replayed).",
    "required": ["id", "kind", "status"],
    "properties": {
        "id": {"type": "string", "description": "the run id"},
        "kind": {"type": "string", "enum": ["event", "sync"]},
        "event_id": _INT_OR_NULL, "event_type": _STR_OR_NULL, "sync": _STR_OR_NULL, "source": _STR_OR_NULL,
        "queue": _STR_OR_NULL, "job": {"type": "string"},
        "failed_ops": {"type": "array", "items": {"type": "string"}},
        "error_class": {"type": ["string", "null"], "enum": [*ERROR_CLASSES, None]},
        "error_message": _STR_OR_NULL, "attempts": _INT_OR_NULL,
        "first_failed_at": _TIME_OR_NULL, "last_failed_at": _TIME_OR_NULL,
        "status": {"type": "string", "enum": ["open", "replayed", "archived"]},
        "parent_run_id": _STR_OR_NULL, "root_run_id": _STR_OR_NULL, "run_url": _STR_OR_NULL,
        "archived": {"type": ["object", "null"]},
    },
}
DLQ_LIST = {"type": "object", "required": ["data", "meta"],
            "properties": {"data": {"type": "array", "items": DLQ_ITEM}, "meta": PAGE_META}}
DLQ_DETAIL: dict[str, Any] = {
    "allOf": [DLQ_ITEM],
    "type": "object",
    "properties": {
        "responses": {"type": "array", "description": "the downstream responses that failed"},
        "replays": {"type": "array", "items": {"type": "object", "properties": {
            "run_id": {"type": "string"}, "status": {"type": "string"}}}},
        "payload": {"type": ["object", "null"], "description": "the event's payload, personal data masked"},
        "actions": {"type": "array", "items": ACTION_OUTCOME},
    },
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
DLQ_STATS = {
    "type": "object", "required": ["total"],
    "properties": {"total": {"type": "integer"}, "last_24h": {"type": "integer"}, "last_7d": {"type": "integer"},
                   "archived": {"type": "integer"}, "by_type": _COUNTS, "by_error_class": _COUNTS},
}
RETRY_RESULT = {
    "type": "object", "required": ["id", "new_run_id", "already_replayed"],
    "properties": {"id": {"type": "string"}, "new_run_id": {"type": "string"}, "already_replayed": {"type": "boolean"},
                   "run_url": _STR_OR_NULL},
}
ARCHIVE_BODY = {
    "type": "object", "required": ["reason"],
    "properties": {"reason": {"type": "string", "minLength": 1, "description": "why this item needs no retry"}},
    "examples": [{"reason": "cliente duplicado no CRM"}],
}
ARCHIVE_RESULT = {"type": "object", "required": ["id", "status"],
                  "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["archived"]}}}
FORCE = {"type": "boolean", "default": False,
         "description": "retry even while a destination's circuit breaker is open"}
RETRY_BODY = {"type": "object", "properties": {"force": FORCE}, "examples": [{"force": True}]}
BREAKER_HOLD = {
    "type": "object",
    "description": "409 breaker_open (and retry-all's held_by_breaker): when the automatic re-drive will try",
    "properties": {"id": {"type": "string"}, "message": {"type": "string"},
                   "breakers": {"type": "object", "additionalProperties": {"type": "string"}},
                   "probe_at": {"type": "string", "format": "date-time"}, "auto_redrive": {"type": "boolean"},
                   "redrive_after": {"type": ["string", "null"], "format": "date-time"}},
}
#: retry-all retries at most this many items per request
MAX_RETRY_ALL = 100
RECOVER_BODY = {
    "type": "object", "required": ["from", "to"], "additionalProperties": False,
    "properties": {
        "from": {"type": "string", "format": "date-time", "description": "failed at or after"},
        "to": {"type": "string", "format": "date-time", "description": "failed at or before (at most 31 days after from)"},
        "destination": {"type": "string", "description": "only items that failed against this destination"},
        "event_type": {"type": "string", "enum": sorted(catalogue.CATALOGUE)},
        "error_class": {"type": "string", "enum": list(ERROR_CLASSES)},
        "dry_run": {"type": "boolean", "default": False},
    },
    "examples": [{"from": "2026-12-01T14:10:00-03:00", "to": "2026-12-01T15:40:00-03:00", "destination": "financeiro",
                  "dry_run": True}],
}
_RECOVER_ITEM = {"type": ["object", "null"], "properties": {"id": {"type": "string"}, "event_type": _STR_OR_NULL,
                                                            "sync": _STR_OR_NULL, "created_at": _TIME_OR_NULL}}
RECOVER_RESULT = {
    "type": "object", "required": ["count"],
    "properties": {"count": {"type": "integer"}, "oldest": _RECOVER_ITEM, "newest": _RECOVER_ITEM,
                   "dry_run": {"type": "boolean"}, "run_id": {"type": "string"}, "run_url": _STR_OR_NULL},
}
RETRY_ALL_BODY = {
    "type": "object", "required": ["limit"],
    "properties": {
        "event_type": {"type": "string"}, "source": {"type": "string"},
        "error_class": {"type": "string", "enum": list(ERROR_CLASSES)},
        "kind": {"type": "string", "enum": ["event", "sync"]},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RETRY_ALL},
        "force": FORCE,
    },
    "examples": [{"error_class": "unavailable", "kind": "event", "limit": 20}],
}
RETRY_ALL_RESULT = {
    "type": "object", "required": ["retried", "already_replayed", "matched"],
    "properties": {"retried": {"type": "array", "items": RETRY_RESULT},
                   "already_replayed": {"type": "array", "items": RETRY_RESULT},
                   "held_by_breaker": {"type": "array", "items": BREAKER_HOLD}, "matched": {"type": "integer"}},
}

SYNC_NAMES = list(SYNCS)
SYNC_RUN_BODY = {
    "type": "object",
    "properties": {"date": {"type": "string", "format": "date",
                            "description": "YYYY-MM-DD: the partition (operacao_financeiro only; default today)"}},
    "examples": [{"date": "2026-03-09"}],
}
PAUSE_BODY = {
    "type": "object", "required": ["reason"], "additionalProperties": False,
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500},
                   "until": {"type": ["string", "null"], "format": "date-time",
                             "description": "when the pause ends by itself (at most 7 days ahead)"}},
    "examples": [{"reason": "CRM maintenance window", "until": "2026-12-01T23:00:00-03:00"}],
}
PAUSE_STATE = {"type": ["object", "null"], "properties": {
    "reason": {"type": "string"}, "since": _TIME, "by": {"type": "string"}, "until": _TIME_OR_NULL}}
PAUSE_RESULT = {"type": "object", "required": ["destination", "paused"],
                "properties": {"destination": {"type": "string"}, "paused": PAUSE_STATE}}
RESUME_RESULT = {"type": "object", "required": ["destination", "resumed"],
                 "properties": {"destination": {"type": "string"}, "resumed": {"type": "boolean"}}}
DESTINATION_LIST = {"type": "object", "required": ["destinations"], "properties": {"destinations": {
    "type": "array", "items": {"type": "object", "required": ["destination", "breaker", "paused"], "properties": {
        "destination": {"type": "string"}, "breaker": {"type": "string", "enum": ["closed", "open", "half_open"]},
        "paused": PAUSE_STATE}}}}}
ERASE_BODY = {
    "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
    "properties": {"phone": {"type": "string", "minLength": 1}, "email": {"type": "string", "minLength": 1},
                   "cpf": {"type": "string", "minLength": 1}},
    "description": "exactly one of phone, e-mail or CPF, in any format",
    "examples": [{"phone": "(11) 98888-7777"}],
}
ERASE_RESULT = {
    "type": "object", "required": ["erased"],
    "properties": {"erased": {"type": "object", "properties": {
        "events": {"type": "integer"}, "cancelled_events": {"type": "integer"},
        "cancelled_actions": {"type": "integer"}, "outbox_rows": {"type": "integer"}}}},
}
SYNC_RUN_RESULT = {
    "type": "object", "required": ["run_id", "sync", "status"],
    "properties": {"run_id": {"type": "string"}, "sync": {"type": "string", "enum": SYNC_NAMES},
                   "partition": _STR_OR_NULL, "status": {"type": "string"}, "run_url": _STR_OR_NULL},
}
SYNC_RUN = {
    "type": "object",
    "properties": {"run_id": {"type": "string"}, "status": {"type": "string"}, "partition": _STR_OR_NULL,
                   "trigger": {"type": "string"}, "dlq": _STR_OR_NULL, "created_at": _TIME_OR_NULL,
                   "started_at": _TIME_OR_NULL, "finished_at": _TIME_OR_NULL, "counts": _COUNTS,
                   "failed_items": {"type": "array", "items": {"type": "string"}}, "run_url": _STR_OR_NULL},
}
SYNC_LIST = {
    "type": "object", "required": ["syncs"],
    "properties": {"syncs": {"type": "array", "items": {
        "type": "object", "required": ["name", "runs"],
        "properties": {"name": {"type": "string", "enum": SYNC_NAMES}, "schedule": {"type": "string"},
                       "timezone": {"type": "string"}, "partitioned": {"type": "boolean"},
                       "running": {"type": "boolean"}, "last_success_at": _TIME_OR_NULL,
                       "runs": {"type": "array", "items": SYNC_RUN}}}}},
}

LEVEL = {"type": "string", "enum": ["ok", "alert", "critical"]}
_NUM_OR_NULL = {"type": ["number", "null"]}
STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status", "metrics", "queues"],
    "properties": {
        "status": LEVEL, "timestamp": _TIME, "dagster": {"type": "string", "enum": ["ok", "unavailable"]},
        "metrics": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["value", "level"],
            "properties": {"label": {"type": "string"}, "value": _NUM_OR_NULL, "level": LEVEL,
                           "alert": {"type": "number"}, "critical": {"type": "number"}, "unit": {"type": "string"}}}},
        "queues": {"type": "object", "propertyNames": {"enum": list(QUEUES)}, "additionalProperties": {
            "type": "object",
            "properties": {"sla_seconds": {"type": "integer"}, "level": LEVEL, "pending": {"type": "integer"},
                           "oldest_pending_seconds": _NUM_OR_NULL}}},
        "window_seconds": {"type": "integer"},
        "whatsapp": {"type": "object"},
        "paused_destinations": {"type": "object", "description": "destination → its pause (reason, since, by, until)"},
        "alerts": {"type": "array", "items": {"type": "object"}},
    },
}
HEALTH = {"type": "object", "required": ["status"],
          "properties": {"status": {"type": "string", "enum": ["ok"]}, "timestamp": _TIME}}
HEALTH_READY = {"type": "object", "required": ["status", "store"],
                "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                               "store": {"type": "object", "required": ["status"]}, "timestamp": _TIME}}
HEALTH_DETAILED: dict[str, Any] = {
    "type": "object",
    "required": ["status", "degraded", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "degraded": {"type": "array", "items": {"type": "string"}},
        "timestamp": _TIME,
        "checks": {"type": "object", "additionalProperties": {"type": "object", "required": ["status"]}},
        "whatsapp": {"type": "object", "properties": {"connected": {"type": ["boolean", "null"]},
                                                      "since": _TIME_OR_NULL}},
        "paused": {"type": "object", "description": "destinations paused by ops (not degraded)"},
        "breakers": {"type": "object",
                     "additionalProperties": {"type": "string", "enum": ["closed", "open", "half_open"]}},
    },
}
