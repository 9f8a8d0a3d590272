"""Wrong credentials are 401, missing fields are 422 naming the field — like the real systems."""

from __future__ import annotations

import json

import httpx
import pytest

from carinho_sandbox import Sandbox
from carinho_sandbox.systems import sign_standard_webhook
from tests.sandbox.conftest import SECRET


@pytest.mark.parametrize("system,path", [
    ("crm", "/api/v1/leads?phone=5511988887777"),
    ("operacao", "/api/v1/services/completed?date=2026-01-01"),
    ("cuidadores", "/api/v1/sync/pending-updates"),
    ("marketing", "/api/v1/campaigns/find-by-utm?utm_source=google"),
])
def test_missing_or_wrong_token_is_401_and_creates_nothing(sb: Sandbox, system: str, path: str) -> None:
    url = sb.url(system) + path
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer sandbox-crm-token-but-wrong"})
    assert wrong.status_code == 401
    assert "message" in wrong.json()
    # another system's token is not this system's token
    other = "financeiro" if system != "financeiro" else "crm"
    assert httpx.get(url, headers={"Authorization": f"Bearer {sb.token(other)}"}).status_code == 401


def test_either_bearer_or_internal_token_header_is_enough(sb: Sandbox) -> None:
    url = sb.url("crm") + "/api/v1/leads?phone=1"
    assert httpx.get(url, headers={"Authorization": "Bearer sandbox-crm-token"}).status_code == 200
    assert httpx.get(url, headers={"X-Internal-Token": "sandbox-crm-token"}).status_code == 200


def test_unauthenticated_write_is_not_stored(sb: Sandbox) -> None:
    answer = httpx.post(sb.url("crm") + "/api/v1/leads", json={"name": "X", "phone": "11988887777"})
    assert answer.status_code == 401
    assert sb.records("crm", "leads") == []


@pytest.mark.parametrize("system,path,body,fields", [
    ("crm", "/api/v1/leads", {"email": "a@b.c"}, {"name"}),
    ("crm", "/api/v1/leads", {"name": "Sem contato"}, {"phone"}),
    ("crm", "/api/v1/clients", {"email": "a@b.c"}, {"name"}),
    ("operacao", "/api/v1/schedules", {"client_id": 1}, {"service_type", "start_date"}),
    ("financeiro", "/api/invoices", {"client_id": 1, "items": []}, {"operacao_service_id", "items", "due_date"}),
    ("financeiro", "/api/billing/setup", {"name": "Ana"}, {"crm_client_id"}),
    ("crm", "/api/v1/webhooks/events", {"id": "e1", "data": {}}, {"type"}),
    ("financeiro", "/api/webhooks/events", {"id": "e1", "type": "invoice.created"}, {"data"}),
])
def test_missing_required_fields_is_422_naming_them(sb: Sandbox, api, system, path, body, fields) -> None:
    answer = api(system).post(path, json=body)
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == fields
    assert answer.json()["message"]
    assert sb.dump(system) == {}


def test_interaction_needs_channel_direction_content(sb: Sandbox, api) -> None:
    crm = api("crm")
    lead = crm.post("/api/v1/leads", json={"name": "A", "phone": "11988887777"}).json()["data"]
    answer = crm.post(f"/api/v1/leads/{lead['id']}/interactions", json={"channel": "whatsapp"})
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"direction", "content"}
    assert crm.post("/api/v1/leads/424242/interactions",
                    json={"channel": "whatsapp", "direction": "inbound", "content": "x"}).status_code == 404


def test_confirmations_need_their_reference(sb: Sandbox, api) -> None:
    sb.seed()
    assert api("crm").post("/api/v1/sync/confirm/501", json={}).json()["errors"] == {
        "operacao_schedule_id": ["The operacao_schedule_id field is required."]}
    assert api("crm").post("/api/v1/contracts/701/billing-setup", json={}).status_code == 422
    assert api("operacao").put("/api/v1/services/9001/billed", json={}).status_code == 422
    assert api("crm").post("/api/v1/sync/confirm/9999", json={"operacao_schedule_id": 1}).status_code == 404


def test_malformed_json_is_400(api) -> None:
    answer = api("crm").post("/api/v1/leads", content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400


def test_signed_inbox_rejects_bad_or_missing_signature(sb: Sandbox, api) -> None:
    raw = json.dumps({"id": "e1", "type": "whatsapp.status", "data": {"status": "READ"}}).encode()
    headers = {"Content-Type": "application/json", **sign_standard_webhook(SECRET, "e1", raw)}
    inbox = api("atendimento")
    assert inbox.post("/api/v1/webhooks/events", content=raw, headers={"Content-Type": "application/json"}).status_code == 401
    tampered = raw.replace(b"READ", b"SENT")
    assert inbox.post("/api/v1/webhooks/events", content=tampered, headers=headers).status_code == 401
    stale = sign_standard_webhook(SECRET, "e1", raw, timestamp=1_600_000_000)
    assert inbox.post("/api/v1/webhooks/events", content=raw,
                      headers={"Content-Type": "application/json", **stale}).status_code == 401
    assert sb.events("atendimento") == []
    assert inbox.post("/api/v1/webhooks/events", content=raw, headers=headers).status_code == 202
    assert len(sb.events("atendimento")) == 1
