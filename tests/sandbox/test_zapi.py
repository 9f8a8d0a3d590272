"""The Z-API simulator answers and calls back like the real one (reference/zapi.md)."""

from __future__ import annotations

import time

import httpx
import pytest

from carinho_sandbox import CallbackFailed, NoWebhook, Sandbox


def test_unknown_instance_or_token_is_404(sb: Sandbox) -> None:
    base = sb.url("zapi")
    headers = {"Client-Token": "sandbox-client-token"}
    wrong_token = f"{base}/instances/{sb.zapi_state.instance_id}/token/WRONGTOKEN/send-text"
    wrong_instance = f"{base}/instances/OTHER/token/{sb.zapi_state.token}/status"
    assert httpx.post(wrong_token, json={"phone": "5511988887777", "message": "x"}, headers=headers).json() == {
        "error": "Instance not found"}
    assert httpx.get(wrong_instance, headers=headers).status_code == 404
    assert sb.zapi.sent() == []


def test_client_token_missing_is_400_and_wrong_is_403(sb: Sandbox) -> None:
    url = sb.zapi_api_url() + "/send-text"
    body = {"phone": "5511988887777", "message": "Olá"}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 400
    assert missing.json() == {"error": "your client-token is not configured"}
    wrong = httpx.post(url, json=body, headers={"Client-Token": "nope"})
    assert wrong.status_code == 403
    assert wrong.json() == {"error": "Client-Token nope not allowed"}
    assert sb.zapi.sent() == []


def test_send_text_button_list_and_link(sb: Sandbox, zapi) -> None:
    text = zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá, Ana!"})
    buttons = zapi.post("/send-button-list", json={
        "phone": "5511988887777", "message": "Avalie de 1 a 5",
        "buttonList": {"buttons": [{"id": f"rating_{i}", "label": f"{i} ⭐"} for i in range(1, 6)]}})
    link = zapi.post("/send-link", json={
        "phone": "5511988887777", "message": "Avalie: https://carinho.com.vc/f/1", "linkUrl": "https://carinho.com.vc/f/1",
        "title": "Avaliar Atendimento", "linkDescription": "Leva 1 minuto"})
    for answer in (text, buttons, link):
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"zaapId", "messageId", "id"}
        assert body["messageId"] == body["id"]
    sent = sb.zapi.sent()
    assert [m["kind"] for m in sent] == ["text", "button-list", "link"]
    assert sent[1]["buttons"][4] == {"id": "rating_5", "label": "5 ⭐"}
    assert sent[2]["link"]["linkUrl"] == "https://carinho.com.vc/f/1"
    assert [m["messageId"] for m in sent] == [a.json()["messageId"] for a in (text, buttons, link)]


@pytest.mark.parametrize("path,body,error", [
    ("/send-text", {"message": "x"}, "phone is required"),
    ("/send-text", {"phone": "5511988887777"}, "message is required"),
    ("/send-button-list", {"phone": "5511988887777", "message": "x"}, "buttonList.buttons is required"),
    ("/send-link", {"phone": "5511988887777", "message": "x"}, "linkUrl, title, linkDescription is required"),
])
def test_invalid_sends_are_400(sb: Sandbox, zapi, path: str, body: dict, error: str) -> None:
    answer = zapi.post(path, json=body)
    assert answer.status_code == 400 and answer.json() == {"error": error}
    assert sb.zapi.sent() == []


def test_unknown_route_and_wrong_content_type(zapi) -> None:
    assert zapi.post("/send-telegram", json={}).json()["error"] == "NOT_FOUND"
    assert zapi.post("/send-text", content=b"phone=1", headers={"Content-Type": "text/plain"}).status_code == 415


def test_status_follows_connection_and_sends_queue_while_disconnected(sb: Sandbox, zapi) -> None:
    assert zapi.get("/status").json() == {"connected": True, "error": "You are already connected.",
                                          "smartphoneConnected": True}
    sb.zapi.disconnect()
    assert zapi.get("/status").json()["connected"] is False
    assert zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"}).status_code == 200
    assert zapi.get("/queue/count").json() == {"count": 1}
    assert sb.zapi.sent()[0]["status"] == "QUEUED"
    sb.zapi.connect()
    assert zapi.get("/status").json()["connected"] is True
    assert sb.zapi.sent()[0]["status"] == "SENT"


def test_sends_can_be_refused_while_disconnected(sb: Sandbox, zapi) -> None:
    assert zapi.put("/update-queue-settings", json={"disableEnqueueWhenDisconnected": True}).json() == {"success": True}
    sb.zapi.disconnect()
    refused = zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"})
    assert refused.status_code == 400 and "error" in refused.json()
    assert sb.zapi.sent() == []


def test_received_callback_shape_and_headers(sb: Sandbox, hub) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    mid = sb.zapi.emit_received("(11) 98888-7777", text="Oi, preciso de um cuidador", sender_name="Maria")
    [request] = hub.received()
    assert request["path"] == "/webhooks/whatsapp"
    assert request["query"] == {"token": "sandbox-webhook-token"}
    headers = request["headers"]
    assert headers["z-api-token"] == sb.zapi_state.token
    assert headers["origin"] == "https://api.z-api.io" and headers["server"] == "Z-API"
    assert headers["user-agent"].startswith("Mozilla/5.0")
    body = request["json"]
    assert body["type"] == "ReceivedCallback" and body["messageId"] == mid
    assert body["instanceId"] == sb.zapi_state.instance_id
    assert body["phone"] == "5511988887777" and body["fromMe"] is False and body["isGroup"] is False
    assert body["text"] == {"message": "Oi, preciso de um cuidador"}
    assert body["senderName"] == "Maria"
    assert abs(body["momment"] - time.time() * 1000) < 60_000


def test_button_reply_references_the_button_message(sb: Sandbox, hub, zapi) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    sent = zapi.post("/send-button-list", json={
        "phone": "5511988887777", "message": "Avalie",
        "buttonList": {"buttons": [{"id": f"rating_{i}", "label": f"{i} ⭐"} for i in range(1, 6)]}}).json()
    sb.zapi.emit_received("5511988887777", button_id="rating_5")
    body = hub.received()[-1]["json"]
    assert body["buttonsResponseMessage"] == {"buttonId": "rating_5", "message": "5 ⭐"}
    assert body["referenceMessageId"] == sent["messageId"]
    assert "text" not in body


def test_gzip_callback(sb: Sandbox, hub) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    sb.zapi.emit_received("5511988887777", text="comprimido", gzip=True)
    request = hub.received()[-1]
    assert request["headers"]["content-encoding"] == "gzip"
    assert request["raw"][:2] == b"\x1f\x8b"
    assert request["json"]["text"]["message"] == "comprimido"


def test_status_callbacks_go_to_the_status_route(sb: Sandbox, hub) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp?token=hub-secret")
    sb.zapi.emit_status(["ID1", "ID2"], "READ", phone="5511988887777")
    sb.zapi.emit_delivery("ID1", phone="5511988887777")
    status, delivery = hub.received()
    assert status["path"] == "/webhooks/whatsapp/status" and status["query"] == {"token": "hub-secret"}
    assert status["json"]["type"] == "MessageStatusCallback"
    assert status["json"]["ids"] == ["ID1", "ID2"] and status["json"]["status"] == "READ"
    assert delivery["path"] == "/webhooks/whatsapp"
    assert delivery["json"]["type"] == "DeliveryCallback" and delivery["json"]["messageId"] == "ID1"
    assert "error" not in delivery["json"]


def test_connection_callbacks(sb: Sandbox, hub) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    sb.zapi.disconnect()
    sb.zapi.disconnect()  # no change, no second callback
    sb.zapi.connect()
    types = [r["json"]["type"] for r in hub.received()]
    assert types == ["DisconnectedCallback", "ConnectedCallback"]
    disconnected, connected = (r["json"] for r in hub.received())
    assert disconnected["disconnected"] is True and disconnected["error"]
    assert connected["connected"] is True and connected["phone"]


def test_auto_callbacks_after_a_send_and_scripted_delivery_failure(sb: Sandbox, hub, zapi) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    sb.zapi.set_auto_callbacks(0.01)
    sb.zapi.fail_delivery("5511900000000", "Phone number does not exist")
    ok = zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"}).json()
    bad = zapi.post("/send-text", json={"phone": "5511900000000", "message": "Olá"}).json()
    deadline = time.monotonic() + 3
    while len(hub.received()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    seen = [(r["json"]["type"], r["json"].get("status"), r["json"].get("error"),
             r["json"].get("messageId") or r["json"]["ids"][0]) for r in hub.received()]
    assert ("DeliveryCallback", None, None, ok["messageId"]) in seen
    assert ("MessageStatusCallback", "RECEIVED", None, ok["messageId"]) in seen
    assert ("MessageStatusCallback", "READ", None, ok["messageId"]) in seen
    assert ("DeliveryCallback", None, "Phone number does not exist", bad["messageId"]) in seen
    assert len(seen) == 4


def test_queued_messages_are_delivered_on_reconnection(sb: Sandbox, hub, zapi) -> None:
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    sb.zapi.set_auto_callbacks(0.01)
    sb.zapi.disconnect()
    queued = zapi.post("/send-text", json={"phone": "5511988887777", "message": "Olá"}).json()
    time.sleep(0.1)
    assert [r["json"]["type"] for r in hub.received()] == ["DisconnectedCallback"]
    sb.zapi.connect()
    deadline = time.monotonic() + 3
    while len(hub.received()) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    delivered = [r["json"] for r in hub.received() if r["json"]["type"] == "DeliveryCallback"]
    assert [d["messageId"] for d in delivered] == [queued["messageId"]]


def test_emit_raises_when_the_hub_refuses_or_no_webhook(sb: Sandbox, hub) -> None:
    with pytest.raises(NoWebhook):
        sb.zapi.emit_received("5511988887777", text="x")
    sb.zapi.set_webhook(hub.url + "/webhooks/whatsapp")
    hub.status = 401
    with pytest.raises(CallbackFailed) as failed:
        sb.zapi.emit_received("5511988887777", text="x")
    assert failed.value.status == 401
    assert sb.zapi.emit_received("5511988887777", text="x", check=False)
    assert [c["status"] for c in sb.zapi.callbacks()] == [401, 401]


def test_webhooks_configured_through_zapis_own_api(sb: Sandbox, hub, zapi) -> None:
    url = hub.url + "/webhooks/whatsapp?token=t"
    assert zapi.put("/update-every-webhooks", json={"value": url, "notifySentByMe": False}).json() == {"value": True}
    assert zapi.put("/update-webhook-message-status", json={"value": hub.url + "/webhooks/whatsapp/status?token=t"}).json() == {"value": True}
    assert zapi.put("/update-webhook-received", json={"value": "ftp://nope"}).status_code == 400
    sb.zapi.emit_status("ID9", "RECEIVED")
    sb.zapi.emit_received("5511988887777", text="oi")
    assert [r["path"] for r in hub.received()] == ["/webhooks/whatsapp/status", "/webhooks/whatsapp"]
