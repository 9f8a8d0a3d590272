"""Z-API callbacks (CONTRACTS §2.1, reference/zapi.md §4)."""

import gzip
import json

import pytest

from tests.conftest import ZAPI_INSTANCE_ID, ZAPI_WEBHOOK_TOKEN

Q = f"?token={ZAPI_WEBHOOK_TOKEN}"


def received(message_id="3EB0796DC6B777C0C7CD", **extra):
    body = {
        "type": "ReceivedCallback", "instanceId": ZAPI_INSTANCE_ID, "messageId": message_id,
        "phone": "5511988887777", "fromMe": False, "momment": 1732000000000, "status": "RECEIVED",
        "senderName": "Maria", "isGroup": False, "isNewsletter": False, "broadcast": False,
        "isStatusReply": False, "waitingMessage": False, "text": {"message": "Oi, quero agendar uma visita"},
    }
    body.update(extra)
    return body


def test_received_message_becomes_whatsapp_inbound_keyed_by_message_id(relay):
    resp = relay.post("/webhooks/whatsapp" + Q, json=received())
    assert resp.status_code == 202
    again = relay.post("/webhooks/whatsapp" + Q, json=received())
    assert again.json() == {"event_id": resp.json()["event_id"], "duplicate": True}
    [row] = relay.rows()
    assert (row["event_type"], row["source"], row["queue"], row["idempotency_key"]) == (
        "whatsapp.inbound", "whatsapp", "integrations-high", "3EB0796DC6B777C0C7CD")
    assert row["payload"]["message"] == "Oi, quero agendar uma visita"
    assert row["payload"]["phone"] == "5511988887777"
    assert row["occurred_at"].year == 2024  # from `momment` (ms)
    assert row["filtered_reason"] is None


def test_token_in_header_is_enough_and_missing_or_wrong_token_is_401(relay):
    ok = relay.post("/webhooks/whatsapp", json=received("A1"), headers={"z-api-token": ZAPI_WEBHOOK_TOKEN})
    assert ok.status_code == 202
    assert relay.post("/webhooks/whatsapp", json=received("A2")).status_code == 401
    assert relay.post("/webhooks/whatsapp?token=wrong", json=received("A3")).status_code == 401
    assert len(relay.rows()) == 1


def test_another_instance_is_refused(relay):
    resp = relay.post("/webhooks/whatsapp" + Q, json=received(instanceId="SOMEONEELSE"))
    assert resp.status_code == 403
    assert relay.rows() == []


def test_gzip_bodies_are_accepted(relay):
    raw = gzip.compress(json.dumps(received("GZ1")).encode())
    resp = relay.post("/webhooks/whatsapp" + Q, content=raw,
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status_code == 202
    assert relay.rows()[0]["idempotency_key"] == "GZ1"
    bad = relay.post("/webhooks/whatsapp" + Q, content=b"not gzip",
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "extra,reason",
    [
        ({"fromMe": True}, "from_me"),
        ({"isGroup": True, "phone": "120363019502650977-group"}, "group"),
        ({"isNewsletter": True}, "newsletter"),
        ({"broadcast": True}, "broadcast"),
        ({"isStatusReply": True}, "status_reply"),
        ({"notification": "CALL_MISSED_VOICE", "notificationParameters": []}, "notification"),
        ({"waitingMessage": True}, "waiting_message"),
    ],
)
def test_filtered_callbacks_are_recorded_but_marked_not_to_dispatch(relay, extra, reason):
    resp = relay.post("/webhooks/whatsapp" + Q, json=received("F1", **extra))
    assert resp.status_code == 202
    [row] = relay.rows()
    assert row["event_type"] == "whatsapp.inbound" and row["filtered_reason"] == reason


def test_rating_button_reply_becomes_feedback_received(relay):
    body = received("R1", buttonsResponseMessage={"buttonId": "rating_4", "message": "⭐⭐⭐⭐ 4 - Muito Bom"},
                    referenceMessageId="D241XXXX732339502B68")
    body.pop("text")
    assert relay.post("/webhooks/whatsapp" + Q, json=body).status_code == 202
    other = received("R2", buttonsResponseMessage={"buttonId": "confirm", "message": "Confirm"})
    assert relay.post("/webhooks/whatsapp" + Q, json=other).status_code == 202
    rows = relay.rows()
    assert rows[0]["event_type"] == "feedback.received" and rows[0]["queue"] == "integrations"
    assert rows[0]["payload"]["rating"] == 4 and rows[0]["payload"]["channel"] == "whatsapp"
    assert rows[0]["payload"]["reference_message_id"] == "D241XXXX732339502B68"
    assert rows[1]["event_type"] == "whatsapp.inbound"


def status(status, ids):
    return {"type": "MessageStatusCallback", "instanceId": ZAPI_INSTANCE_ID, "status": status, "ids": ids,
            "momment": 1732000500000, "phone": "5511988887777", "isGroup": False}


def test_message_status_never_moves_backwards(relay):
    read = relay.post("/webhooks/whatsapp/status" + Q, json=status("READ", ["B", "A"]))
    late = relay.post("/webhooks/whatsapp/status" + Q, json=status("RECEIVED", ["A"]))
    dup = relay.post("/webhooks/whatsapp/status" + Q, json=status("READ", ["A", "B"]))
    played = relay.post("/webhooks/whatsapp/status" + Q, json=status("PLAYED", ["A"]))
    assert [r.status_code for r in (read, late, dup, played)] == [202] * 4
    assert dup.json() == {"event_id": read.json()["event_id"], "duplicate": True}
    rows = relay.rows()
    assert [(r["event_type"], r["idempotency_key"], r["filtered_reason"]) for r in rows] == [
        ("whatsapp.status", "READ:A,B", None),
        ("whatsapp.status", "RECEIVED:A", "stale_status"),
        ("whatsapp.status", "PLAYED:A", None),
    ]
    assert relay.store.message_status("A") == "PLAYED"
    assert relay.store.message_status("B") == "READ"


def test_status_callback_validation(relay):
    assert relay.post("/webhooks/whatsapp/status" + Q, json=status("READ", [])).status_code == 422
    assert relay.post("/webhooks/whatsapp/status" + Q, json={"instanceId": ZAPI_INSTANCE_ID}).status_code == 422


def test_delivery_callback_on_the_main_url(relay):
    ok = {"type": "DeliveryCallback", "instanceId": ZAPI_INSTANCE_ID, "phone": "554499999999",
          "messageId": "M9", "zaapId": "Z9", "momment": 1777494009341}
    failed = dict(ok, messageId="M10", error="Phone number does not exist")
    assert relay.post("/webhooks/whatsapp" + Q, json=ok).status_code == 202
    assert relay.post("/webhooks/whatsapp" + Q, json=failed).status_code == 202
    rows = relay.rows()
    assert [(r["event_type"], r["payload"]["status"]) for r in rows] == [("whatsapp.status", "SENT"), ("whatsapp.status", "FAILED")]
    assert rows[1]["payload"]["error"] == "Phone number does not exist"


def test_connection_callbacks_feed_the_instance_state_and_are_not_dispatched(relay):
    down = {"type": "DisconnectedCallback", "instanceId": ZAPI_INSTANCE_ID, "momment": 1580163342,
            "error": "Device has been disconnected", "disconnected": True}
    up = {"type": "ConnectedCallback", "instanceId": ZAPI_INSTANCE_ID, "connected": True,
          "momment": 1732000600000, "phone": "5544999999999"}
    assert relay.post("/webhooks/whatsapp" + Q, json=down).status_code == 202
    state = relay.store.whatsapp_connection_state()
    assert state["connected"] is False and state["since"].year == 2020 and "disconnected" in state["error"]
    assert relay.post("/webhooks/whatsapp" + Q, json=up).status_code == 202
    assert relay.store.whatsapp_connection_state()["connected"] is True
    presence = {"type": "PresenceChatCallback", "instanceId": ZAPI_INSTANCE_ID, "phone": "5511988887777", "status": "COMPOSING"}
    assert relay.post("/webhooks/whatsapp" + Q, json=presence).status_code == 202
    rows = relay.rows()
    assert [(r["event_type"], r["filtered_reason"]) for r in rows] == [
        ("whatsapp.connection", "connection"), ("whatsapp.connection", "connection"), ("whatsapp.presence", "presence")]


def test_callback_without_type_or_message_id_is_422(relay):
    assert relay.post("/webhooks/whatsapp" + Q, json={"instanceId": ZAPI_INSTANCE_ID}).status_code == 422
    body = received()
    body.pop("messageId")
    resp = relay.post("/webhooks/whatsapp" + Q, json=body)
    assert resp.status_code == 422 and resp.json()["field"] == "messageId"
    assert relay.rows() == []
