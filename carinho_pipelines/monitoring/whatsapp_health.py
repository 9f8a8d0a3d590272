"""WhatsApp instance health (seed §2.1, CONTRACTS §6): the Z-API instance is an
external asset, ``whatsapp/instance``; a sensor polls ``GET /status`` every minute and
consumes the Connected/Disconnected callbacks the relay stored, recording both as
observations of that asset. Disconnected for more than 15 minutes → one e-mail to the
person responsible; one more when it is connected again.

On reconnection, held messages are sent by ``whatsapp_outbox_sensor`` (events package);
DLQ items are re-driven by the DLQ sensor once the destination is healthy.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from dagster import (
    AssetKey,
    AssetObservation,
    AssetSpec,
    DefaultSensorStatus,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.resources import EmailResource, ZApiResource
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import whatsapp_connection, whatsapp_outbox

from . import alerts, thresholds

ASSET_KEY = AssetKey(["whatsapp", "instance"])
ALERT_KEY = thresholds.WHATSAPP_ALERT_KEY
#: a status observation is recorded when the state changes, and at least this often
HEARTBEAT = dt.timedelta(minutes=10)

whatsapp_instance = AssetSpec(
    ASSET_KEY,
    description="The Z-API WhatsApp instance (external). Observations record connected, smartphoneConnected and "
                "error, from GET /status (every minute) and from the Connected/Disconnected callbacks.",
    group_name="monitoring",
    kinds={"whatsapp"},
)


@dataclass
class Check:
    connected: bool
    smartphone_connected: bool
    error: str | None
    reachable: bool
    disconnected_since: dt.datetime | None
    held_messages: int
    transitions: list[alerts.Transition]
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "smartphoneConnected": self.smartphone_connected, "error": self.error}


def poll(zapi: Any) -> dict[str, Any]:
    """``GET /status``; an unreachable Z-API is reported as disconnected."""
    try:
        status = zapi.status()
    except ActionError as err:
        return {"connected": False, "smartphoneConnected": False, "error": f"Z-API inacessível ({err.error_class})",
                "reachable": False}
    return {**status, "reachable": True}


def callbacks_after(store: EventStore, after_id: int, limit: int = 500) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(whatsapp_connection.c.id, whatsapp_connection.c.connected, whatsapp_connection.c.error,
                      whatsapp_connection.c.occurred_at)
            .where(whatsapp_connection.c.id > after_id).order_by(whatsapp_connection.c.id).limit(limit)
        ).mappings().all()
    return [{**r, "occurred_at": as_utc(r["occurred_at"])} for r in rows]


def held_messages(store: EventStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(whatsapp_outbox).where(whatsapp_outbox.c.status == "pending")
        ).scalar_one()


def check(store: EventStore, zapi: Any, email: Any, now: dt.datetime | None = None, callback_cursor: int = 0) -> Check:
    """Poll the instance, apply the 15-minute rule, e-mail on a change. ``now`` is the
    clock (tests drive it); the disconnection starts at the Disconnected callback when
    the relay received one, else when a check first saw it."""
    now = now or utcnow()
    status = poll(zapi)
    connected = bool(status["connected"])
    callbacks = callbacks_after(store, callback_cursor)
    since = None
    if not connected:
        state = store.whatsapp_connection_state()
        if state is not None and not state["connected"]:
            since = state["since"]
    held = held_messages(store)
    if connected:
        title = "WhatsApp (Z-API) conectado"
        lines = ["A instância está conectada; as mensagens retidas são enviadas automaticamente.",
                 f"Mensagens ainda retidas: {held}"]
    else:
        title = "WhatsApp (Z-API) desconectado"
        lines = [
            f"Erro informado: {status.get('error') or '-'}",
            f"Celular conectado (smartphoneConnected): {'sim' if status.get('smartphoneConnected') else 'não'}",
            f"Mensagens retidas no outbox (enviadas ao reconectar): {held}",
            "Ação: reconectar a instância no painel da Z-API (ler o QR code com o celular da empresa)."
            if status["reachable"] else "Ação: verificar a Z-API (a API não respondeu).",
        ]
    signal = alerts.Signal(
        key=ALERT_KEY,
        level=0 if connected else 1,
        title=title,
        lines=tuple(lines),
        link=f"{thresholds.dagster_ui_url()}/assets/{'/'.join(ASSET_KEY.path)}",
        since=since,
        grace=thresholds.WHATSAPP_DISCONNECT_GRACE,
        recipients=(thresholds.whatsapp_responsible(),),
    )
    transitions = alerts.evaluate(store, email, [signal], now)
    disconnected_since = None if connected else alerts.load(store, [ALERT_KEY])[ALERT_KEY].condition_since
    return Check(connected, bool(status.get("smartphoneConnected")), status.get("error"), bool(status["reachable"]),
                 disconnected_since, held, transitions, callbacks)


def instance_state(store: EventStore) -> dict[str, Any]:
    """What the monitor last concluded: ``{"connected", "disconnected_since", "alerted"}``
    (for the DLQ re-drive or /status; no Z-API call)."""
    state = alerts.load(store, [ALERT_KEY]).get(ALERT_KEY)
    if state is None:
        return {"connected": None, "disconnected_since": None, "alerted": False}
    return {"connected": state.condition_since is None, "disconnected_since": state.condition_since,
            "alerted": state.level > 0}


def _observation(connected: bool, smartphone: bool | None, error: str | None, source: str, at: dt.datetime,
                 extra: dict[str, Any] | None = None) -> AssetObservation:
    metadata: dict[str, Any] = {
        "connected": connected,
        "error": error or "",
        "source": source,
        "observed_at": MetadataValue.timestamp(at.timestamp()),
    }
    if smartphone is not None:
        metadata["smartphoneConnected"] = smartphone
    metadata.update(extra or {})
    return AssetObservation(asset_key=ASSET_KEY, metadata=metadata)


def observations(result: Check, now: dt.datetime, cursor: dict[str, Any]) -> tuple[list[AssetObservation], dict[str, Any]]:
    """Observations for the callbacks consumed and for the polled status (on change, or
    every HEARTBEAT), and the next cursor."""
    out = [
        _observation(bool(cb["connected"]), None, cb["error"], "callback", cb["occurred_at"] or now)
        for cb in result.callbacks
    ]
    last = cursor.get("status")
    observed_at = cursor.get("observed_at")
    stale = observed_at is None or now - dt.datetime.fromisoformat(observed_at) >= HEARTBEAT
    if last != result.status() or stale:
        extra = {"held_messages": result.held_messages}
        if result.disconnected_since is not None:
            extra["disconnected_minutes"] = round((now - result.disconnected_since).total_seconds() / 60, 1)
        out.append(_observation(result.connected, result.smartphone_connected, result.error, "status", now, extra))
        observed_at = now.isoformat()
    next_cursor = {
        "callback_id": max([cursor.get("callback_id", 0), *(cb["id"] for cb in result.callbacks)]),
        "status": result.status(),
        "observed_at": observed_at,
    }
    return out, next_cursor


@sensor(
    name="whatsapp_health_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Polls Z-API GET /status every minute and consumes the connection callbacks; records observations "
                "of whatsapp/instance; disconnected > 15 min → one e-mail to the person responsible, and one on recovery.",
)
def whatsapp_health_sensor(
    context: SensorEvaluationContext, event_store: EventStoreResource, zapi: ZApiResource, email: EmailResource
):
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = utcnow()
    result = check(event_store.store, zapi, email, now, callback_cursor=int(cursor.get("callback_id", 0)))
    for change in result.transitions:
        if change.sent:
            context.log.info(f"whatsapp alert level {change.previous} → {change.level} e-mailed")
        else:
            context.log.warning(f"whatsapp alert level {change.previous} → {change.level} not sent: {change.error}")
    events, next_cursor = observations(result, now, cursor)
    return SensorResult(asset_events=events, cursor=json.dumps(next_cursor))
