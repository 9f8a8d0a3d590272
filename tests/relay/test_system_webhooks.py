"""Site and internal systems' webhooks (CONTRACTS §2.2)."""

import pytest

from carinho_pipelines.store import as_utc

from carinho_pipelines.kernel.catalogue import EVENT_TYPES


def test_site_lead_is_stored_as_lead_created_with_normalised_phone(relay):
    resp = relay.post(
        "/webhooks/site/lead",
        "site",
        json={"name": "Ana", "phone": "+55 (11) 98888-7777", "utm_source": "google", "form_id": "home"},
    )
    assert resp.status_code == 202
    body = resp.json()
    assert body["duplicate"] is False and isinstance(body["event_id"], int)
    [row] = relay.rows()
    assert (row["id"], row["event_type"], row["source"], row["queue"]) == (
        body["event_id"], "lead.created", "site", "integrations-high")
    assert row["payload"]["phone"] == "5511988887777"
    assert row["payload"]["form_id"] == "home"
    assert row["filtered_reason"] is None


@pytest.mark.parametrize(
    "path,system,body,event_type,queue",
    [
        ("/webhooks/crm/client-registered", "crm", {"id": 7, "name": "Bia", "cpf": "123"}, "client.registered", "integrations"),
        ("/webhooks/operacao/service-completed", "operacao", {"id": 9, "client_id": 7}, "service.completed", "integrations"),
        ("/webhooks/financeiro/payment", "financeiro", {"id": 1, "status": "paid"}, "payment.received", "integrations"),
        ("/webhooks/financeiro/payment", "financeiro", {"id": 2, "status": "received"}, "payment.received", "integrations"),
        ("/webhooks/financeiro/payment", "financeiro", {"id": 3, "status": "failed"}, "payment.failed", "integrations"),
        ("/webhooks/financeiro/payout", "financeiro", {"id": 4, "caregiver_id": 2}, "payout.processed", "notifications"),
        ("/webhooks/cuidadores/feedback", "cuidadores", {"rating": 5, "caregiver_id": 2}, "feedback.received", "integrations"),
    ],
)
def test_dedicated_routes_store_their_event(relay, path, system, body, event_type, queue):
    resp = relay.post(path, system, json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "received"
    [row] = relay.rows()
    assert (row["event_type"], row["source"], row["queue"]) == (event_type, system, queue)


@pytest.mark.parametrize(
    "path,system,body,field",
    [
        ("/webhooks/site/lead", "site", {"name": "sem contato"}, "phone or email"),
        ("/webhooks/site/lead", "site", {"name": "x", "phone": "12"}, "phone"),
        ("/webhooks/site/lead", "site", {"name": "x", "email": "not-an-email"}, "email"),
        ("/webhooks/crm/client-registered", "crm", {"name": "Bia"}, "id"),
        ("/webhooks/operacao/service-completed", "operacao", {"id": 9}, "client_id"),
        ("/webhooks/financeiro/payment", "financeiro", {"id": 1, "status": "refunded"}, "status"),
        ("/webhooks/financeiro/payment", "financeiro", {"id": 1}, "status"),
        ("/webhooks/cuidadores/feedback", "cuidadores", {"rating": 9}, "rating"),
    ],
)
def test_invalid_payloads_get_422_naming_the_field_and_store_nothing(relay, path, system, body, field):
    resp = relay.post(path, system, json=body)
    assert resp.status_code == 422
    assert resp.json()["error"] == "validation_failed"
    assert resp.json()["field"] == field
    assert relay.rows() == []


def test_missing_and_wrong_credentials_are_401(relay):
    assert relay.post("/webhooks/site/lead", json={"phone": "11988887777"}).status_code == 401
    resp = relay.post("/webhooks/site/lead", json={"phone": "11988887777"}, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    for header in ("X-Internal-Token", "X-API-Key"):
        from tests.conftest import TOKENS
        ok = relay.post("/webhooks/site/lead", json={"phone": "11988887777", "idempotency_key": header},
                        headers={header: TOKENS["site"]})
        assert ok.status_code == 202
    assert len(relay.rows()) == 2


def test_a_system_cannot_post_on_another_systems_route_or_type(relay):
    assert relay.post("/webhooks/financeiro/payment", "crm", json={"id": 1, "status": "paid"}).status_code == 403
    resp = relay.post("/webhooks/systems/crm", "crm", json={"event_type": "payment.received", "id": 1})
    assert resp.status_code == 403
    resp = relay.post("/webhooks/systems/financeiro", "crm", json={"event_type": "payment.received", "id": 1})
    assert resp.status_code == 403
    assert relay.rows() == []


def test_generic_system_route_takes_type_from_header_body_or_legacy_envelope(relay):
    r1 = relay.post("/webhooks/systems/crm", "crm", json={"id": 5, "name": "x"}, headers={"X-Event-Type": "client.updated"})
    r2 = relay.post("/webhooks/systems/operacao", "operacao", json={"event_type": "service.started", "id": 8})
    # Cuidadores' legacy client sends {source, event_type, data, timestamp}
    r3 = relay.post("/webhooks/systems/operacao", "operacao",
                    json={"type": "caregiver.assigned", "data": {"service_id": 1, "caregiver_id": 2},
                          "source": "operacao", "timestamp": "2026-11-29T10:00:00-03:00"})
    assert [r.status_code for r in (r1, r2, r3)] == [202, 202, 202]
    rows = relay.rows()
    assert [r["event_type"] for r in rows] == ["client.updated", "service.started", "caregiver.assigned"]
    assert rows[1]["payload"] == {"id": 8}
    assert rows[2]["payload"] == {"service_id": 1, "caregiver_id": 2}
    assert as_utc(rows[2]["occurred_at"]).hour == 13  # 10:00 -03:00 is 13:00 UTC


def test_unknown_event_type_is_422_listing_the_known_ones(relay):
    resp = relay.post("/webhooks/systems/crm", "crm", json={"event_type": "lead.exploded"})
    assert resp.status_code == 422
    assert resp.json()["error"] == "unknown_event_type"
    assert resp.json()["known"] == list(EVENT_TYPES)
    assert relay.post("/webhooks/systems/nowhere", "crm", json={"event_type": "lead.updated"}).status_code == 404


def test_canonical_post_api_events(relay):
    body = {"event_type": "invoice.created", "source_system": "financeiro", "payload": {"id": 3}, "idempotency_key": "inv-3"}
    resp = relay.post("/api/events", "financeiro", json=body)
    assert resp.status_code == 202 and resp.json()["duplicate"] is False
    again = relay.post("/api/events", "financeiro", json=body)
    assert again.json() == {"event_id": resp.json()["event_id"], "duplicate": True}
    [row] = relay.rows()
    assert row["idempotency_key"] == "inv-3" and row["payload"] == {"id": 3}
    # the token decides the source: a mismatch is 403
    assert relay.post("/api/events", "crm", json=body).status_code == 403
    bad = relay.post("/api/events", "financeiro", json={"event_type": "invoice.created", "source_system": "financeiro"})
    assert bad.status_code == 422 and bad.json()["field"] == "payload"
