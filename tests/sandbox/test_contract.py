"""Every CONTRACTS §4 call answers at its path, with its fields, inside ``{"data": ...}``."""

from __future__ import annotations

import pytest

from carinho_sandbox import Sandbox


def test_crm_lead_lifecycle_create_find_by_phone_update_and_interact(sb: Sandbox, api) -> None:
    crm = api("crm")
    created = crm.post("/api/v1/leads", json={
        "name": "João Pereira", "phone": "+55 (11) 98888-7777", "email": "joao@example.com", "source": "site",
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidado-idosos", "message": "Preciso de ajuda",
    })
    assert created.status_code == 201
    lead = created.json()["data"]
    assert lead["id"] and lead["phone"] == "5511988887777"
    assert lead["interaction_count"] == 0 and lead["last_contact_at"]

    # found by any spelling of the same phone, not by another one
    assert [x["id"] for x in crm.get("/api/v1/leads", params={"phone": "011 98888 7777"}).json()["data"]] == [lead["id"]]
    assert crm.get("/api/v1/leads", params={"phone": "5521911112222"}).json() == {"data": []}

    updated = crm.put(f"/api/v1/leads/{lead['id']}", json={"last_contact_at": "2026-01-02T10:00:00-03:00",
                                                           "interaction_count": 1})
    assert updated.status_code == 200
    assert updated.json()["data"]["interaction_count"] == 1
    assert crm.put("/api/v1/leads/999999", json={"interaction_count": 1}).status_code == 404

    interaction = crm.post(f"/api/v1/leads/{lead['id']}/interactions", json={
        "channel": "whatsapp", "direction": "inbound", "content": "Oi", "message_id": "3EB0AA",
        "received_at": "2026-01-02T11:00:00-03:00",
    })
    assert interaction.status_code == 201
    assert interaction.json()["data"]["lead_id"] == lead["id"]
    after = crm.get(f"/api/v1/leads/{lead['id']}").json()["data"]
    assert after["interaction_count"] == 2
    assert after["last_contact_at"] == "2026-01-02T11:00:00-03:00"


def test_crm_clients(api) -> None:
    crm = api("crm")
    created = crm.post("/api/v1/clients", json={"name": "Ana Lima", "email": "ana@example.com", "lead_id": 3})
    assert created.status_code == 201
    client_id = created.json()["data"]["id"]
    assert crm.get(f"/api/v1/clients/{client_id}").json()["data"]["name"] == "Ana Lima"


def test_operacao_schedules(api, sb: Sandbox) -> None:
    body = {"client_id": 101, "crm_contract_id": 701, "service_type": "cuidador_idoso",
            "start_date": "2026-03-01T08:00:00-03:00", "end_date": "2026-03-01T20:00:00-03:00",
            "preferences": {"turno": "diurno"}}
    created = api("operacao").post("/api/v1/schedules", json=body)
    assert created.status_code == 201
    data = created.json()["data"]
    assert data["id"] and data["crm_contract_id"] == 701
    assert sb.records("operacao", "schedules")[0]["preferences"] == {"turno": "diurno"}


def test_financeiro_invoices_and_billing_setup(api, sb: Sandbox) -> None:
    fin = api("financeiro")
    invoice = fin.post("/api/invoices", json={
        "client_id": 101, "operacao_service_id": 9001, "due_date": "2026-03-04",
        "items": [{"description": "Cuidador 12h", "hours": 12, "unit_price": 30.0, "total": 360.0},
                  {"description": "Deslocamento", "hours": 0, "unit_price": 25.0, "total": 25.0}],
    })
    assert invoice.status_code == 201
    assert invoice.json()["data"]["amount"] == 385.0
    setup = fin.post("/api/billing/setup", json={"crm_client_id": 101, "name": "Ana", "email": "a@example.com"})
    assert setup.status_code == 201
    assert setup.json()["data"]["crm_client_id"] == 101
    assert len(sb.records("financeiro", "invoices")) == 1
    assert len(sb.records("financeiro", "billing_setups")) == 1


def test_marketing_campaign_by_utm_and_404_when_none(sb: Sandbox, api) -> None:
    sb.seed()
    mkt = api("marketing")
    found = mkt.get("/api/v1/campaigns/find-by-utm",
                    params={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
    assert found.status_code == 200
    campaign = found.json()["data"]
    none = mkt.get("/api/v1/campaigns/find-by-utm", params={"utm_source": "facebook", "utm_campaign": "x"})
    assert none.status_code == 404
    attached = mkt.post(f"/api/v1/campaigns/{campaign['id']}/leads", json={"lead_id": 7, "source": "site"})
    assert attached.status_code == 201
    converted = mkt.post(f"/api/v1/campaigns/{campaign['id']}/leads",
                         json={"lead_id": 7, "client_id": 12, "status": "converted"})
    assert converted.json()["data"]["status"] == "converted"
    assert mkt.post("/api/v1/campaigns/999/leads", json={"lead_id": 7}).status_code == 404


@pytest.mark.parametrize("system", ["crm", "operacao", "financeiro", "cuidadores", "atendimento", "marketing",
                                    "site", "documentos"])
def test_every_system_has_an_event_inbox(sb: Sandbox, api, system: str) -> None:
    path = "/api/webhooks/events" if system == "financeiro" else "/api/v1/webhooks/events"
    event = {"id": "evt-1", "type": "lead.updated", "timestamp": "2026-03-01T10:00:00-03:00", "source": "crm",
             "data": {"id": 1}}
    if system == "atendimento":  # configured with a signing secret in this suite
        from carinho_sandbox.systems import sign_standard_webhook
        import json
        from tests.sandbox.conftest import SECRET
        raw = json.dumps(event).encode()
        answer = api(system).post(path, content=raw, headers={"Content-Type": "application/json",
                                                               **sign_standard_webhook(SECRET, "evt-1", raw)})
    else:
        answer = api(system).post(path, json=event)
    assert answer.status_code == 202
    assert answer.json()["data"]["event_id"] == "evt-1"
    stored = sb.events(system)
    assert [(e["type"], e["event_id"], e["data"]) for e in stored] == [("lead.updated", "evt-1", {"id": 1})]


def test_financeiro_inbox_is_not_under_v1(api) -> None:
    assert api("financeiro").post("/api/v1/webhooks/events", json={"type": "x", "data": {}}).status_code == 404


def test_calls_record_method_path_headers_and_body(sb: Sandbox, api) -> None:
    api("crm", **{"Idempotency-Key": "lead-created:evt-9"}).post("/api/v1/leads", json={"name": "Rita", "phone": "11977776666"})
    call = sb.calls("crm")[-1]
    assert call["method"] == "POST" and call["path"] == "/api/v1/leads" and call["status"] == 201
    assert call["headers"]["x-source-system"] == "integracoes"
    assert call["headers"]["x-request-id"] == "test-request"
    assert call["headers"]["idempotency-key"] == "lead-created:evt-9"
    assert call["json"] == {"name": "Rita", "phone": "11977776666"}
