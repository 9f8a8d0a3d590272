"""Signed webhooks: Standard Webhooks and the legacy X-Webhook-Signature (CONTRACTS §2.2, §10)."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from relay.auth import sign_standard_webhook

SECRET = "whsec_" + base64.b64encode(b"financeiro-signing-key-000000001").decode()
BODY = {"id": 77, "status": "paid", "amount": 150.0}


@pytest.fixture
def signed(relay, monkeypatch):
    monkeypatch.setenv("CARINHO_FINANCEIRO_WEBHOOK_SECRET", SECRET)
    return relay


def _post(relay, raw: bytes, **headers):
    return relay.post("/webhooks/financeiro/payment", "financeiro", content=raw,
                      headers={"Content-Type": "application/json", **headers})


def test_standard_webhooks_signature_is_required_and_verified(signed):
    raw = json.dumps(BODY).encode()
    now = int(time.time())
    good = sign_standard_webhook(SECRET, "msg_1", now, raw)
    resp = _post(signed, raw, **{"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": f"v1,bad {good}"})
    assert resp.status_code == 202
    assert signed.rows()[0]["idempotency_key"] == "msg_1"
    tampered = json.dumps({**BODY, "amount": 1500.0}).encode()
    resp = _post(signed, tampered, **{"webhook-id": "msg_2", "webhook-timestamp": str(now), "webhook-signature": good})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_signature"
    stale = now - 301
    resp = _post(signed, raw, **{"webhook-id": "msg_3", "webhook-timestamp": str(stale),
                                 "webhook-signature": sign_standard_webhook(SECRET, "msg_3", stale, raw)})
    assert resp.status_code == 401
    assert _post(signed, raw).status_code == 401  # unsigned
    assert len(signed.rows()) == 1


def test_legacy_hex_signature_over_the_raw_body(signed):
    raw = json.dumps(BODY).encode()
    sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert _post(signed, raw, **{"X-Webhook-Signature": sig}).status_code == 202
    assert _post(signed, raw + b" ", **{"X-Webhook-Signature": sig}).status_code == 401


def test_systems_without_a_secret_need_no_signature(relay):
    assert relay.post("/webhooks/financeiro/payment", "financeiro", json=BODY).status_code == 202
