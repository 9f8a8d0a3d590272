"""The 15-minute disconnect rule, with the sandbox's disconnect fault, its callbacks
delivered to the real relay, and a controlled clock."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import AssetKey, build_sensor_context

from carinho_pipelines.monitoring import whatsapp_health
from relay.app import create_app
from carinho_pipelines.store import EventStore, utcnow
from tests.support import ServerThread

OPERACAO = "operacao@carinho.com.vc"


@pytest.fixture
def relay(mon):
    server = ServerThread(create_app(EventStore(mon.url))).start()
    mon.sb.zapi.set_webhook(f"{server.url}/webhooks/whatsapp")
    yield server
    mon.sb.zapi.set_webhook(None)
    server.stop()


def check(mon, now, cursor=0):
    return whatsapp_health.check(mon.store, mon.zapi, mon.email, now, callback_cursor=cursor)


def test_disconnected_over_15_minutes_alerts_once_and_recovery_once(mon, relay):
    assert check(mon, utcnow()).connected
    mon.sb.zapi.disconnect()
    state = mon.store.whatsapp_connection_state()  # the relay stored Z-API's DisconnectedCallback
    assert state is not None and state["connected"] is False
    t0 = state["since"]  # the incident starts there, not at the first check
    assert utcnow() - t0 < dt.timedelta(seconds=5)

    for minutes in (0, 5, 14, 15):
        result = check(mon, t0 + dt.timedelta(minutes=minutes))
        assert not result.connected and result.transitions == []
    assert mon.mails() == []

    result = check(mon, t0 + dt.timedelta(minutes=15, seconds=30))
    [change] = result.transitions
    assert (change.level, change.recipients, change.sent) == (1, [OPERACAO], True)
    [mail] = mon.mails()
    assert mail["subject"] == "[Carinho] ALERTA nível 1 (Operação): WhatsApp (Z-API) desconectado"
    assert "You are not connected." in mail["text"] and "QR code" in mail["text"]
    assert "http://dagster.test:3000/assets/whatsapp/instance" in mail["text"]

    for minutes in (16, 30, 120):  # the incident holds: nothing more
        assert check(mon, t0 + dt.timedelta(minutes=minutes)).transitions == []

    mon.sb.zapi.connect()
    result = check(mon, t0 + dt.timedelta(minutes=121))
    assert result.connected and [(c.level, c.recipients) for c in result.transitions] == [(0, [OPERACAO])]
    assert mon.mails()[-1]["subject"] == "[Carinho] Normalizado: WhatsApp (Z-API) conectado"
    assert "por 1 h 45 min" in mon.mails()[-1]["text"]
    assert check(mon, t0 + dt.timedelta(minutes=122)).transitions == []
    assert len(mon.mails()) == 2


def test_a_short_disconnection_alerts_nobody(mon, relay):
    mon.sb.zapi.disconnect()
    t0 = utcnow()
    check(mon, t0 + dt.timedelta(minutes=10))
    mon.sb.zapi.connect()
    check(mon, t0 + dt.timedelta(minutes=11))
    mon.sb.zapi.disconnect()  # a new incident: its 15 minutes start again
    t1 = mon.store.whatsapp_connection_state()["since"]
    assert check(mon, t1 + dt.timedelta(minutes=14)).transitions == []
    assert mon.mails() == []


def test_the_disconnected_callback_dates_the_incident(mon, monkeypatch):
    """The relay received the DisconnectedCallback 20 minutes before the first check saw it."""
    monkeypatch.setenv("CARINHO_WHATSAPP_ALERT_EMAIL", "celular@carinho.com.vc")
    mon.sb.zapi.disconnect()
    now = utcnow()
    mon.store.record_connection(mon.sb.zapi_state.instance_id, False, "Device has been disconnected",
                                now - dt.timedelta(minutes=20))
    [change] = check(mon, now).transitions
    assert change.level == 1 and change.recipients == ["celular@carinho.com.vc"]
    assert "(há 20 min)" in mon.mails()[0]["text"]


def test_a_stale_callback_does_not_date_a_new_incident(mon):
    now = utcnow()
    mon.store.record_connection(mon.sb.zapi_state.instance_id, False, "old", now - dt.timedelta(days=1))
    assert check(mon, now - dt.timedelta(minutes=1)).connected  # a good check after that old callback
    mon.sb.zapi.disconnect()  # no new callback (lost): the incident starts at the last good check
    assert check(mon, now).transitions == []
    assert [c.level for c in check(mon, now + dt.timedelta(minutes=15)).transitions] == [1]


def test_unreachable_zapi_counts_as_disconnected(mon):
    mon.sb.down("zapi")
    try:
        t0 = utcnow()
        result = check(mon, t0)
        assert not result.connected and not result.reachable and "Z-API inacessível" in result.error
        assert [c.level for c in check(mon, t0 + dt.timedelta(minutes=16)).transitions] == [1]
        assert "a API não respondeu" in mon.mails()[0]["text"]
    finally:
        mon.sb.up("zapi")


def test_the_sensor_records_observations_of_the_instance_asset(mon, relay):
    def tick(cursor):
        with build_sensor_context(instance=mon.instance, resources=mon.resources(), cursor=cursor) as context:
            return whatsapp_health.whatsapp_health_sensor(context)

    first = tick(None)
    [obs] = first.asset_events
    assert obs.asset_key == AssetKey(["whatsapp", "instance"])
    meta = {k: v.value for k, v in obs.metadata.items()}
    assert meta["connected"] is True and meta["smartphoneConnected"] is True and meta["source"] == "status"
    assert tick(first.cursor).asset_events == []  # unchanged, heartbeat not due

    mon.sb.zapi.disconnect()  # a callback reaches the relay and the status changes
    third = tick(first.cursor)
    sources = [(e.metadata["source"].value, e.metadata["connected"].value) for e in third.asset_events]
    assert sources == [("callback", False), ("status", False)]
    assert third.asset_events[1].metadata["error"].value == "You are not connected."
    assert json.loads(third.cursor)["callback_id"] >= 1
    assert tick(third.cursor).asset_events == []  # the callback is consumed once
