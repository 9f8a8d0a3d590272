"""A duplicate answers 202 with the original event id and is never stored twice."""

import concurrent.futures

import httpx

from tests.conftest import TOKENS


def test_duplicate_by_webhook_id_header(relay):
    first = relay.post("/webhooks/crm/client-registered", "crm", json={"id": 1, "name": "A"}, headers={"webhook-id": "msg_1"})
    # a retry of the same delivery, even with a changed body, is the same event
    second = relay.post("/webhooks/crm/client-registered", "crm", json={"id": 1, "name": "A."}, headers={"webhook-id": "msg_1"})
    assert first.status_code == second.status_code == 202
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True, "status": "received"}
    assert len(relay.rows()) == 1


def test_without_a_key_the_body_hash_decides(relay):
    a = relay.post("/webhooks/operacao/service-completed", "operacao", json={"id": 9, "client_id": 1})
    b = relay.post("/webhooks/operacao/service-completed", "operacao", json={"client_id": 1, "id": 9})
    c = relay.post("/webhooks/operacao/service-completed", "operacao", json={"id": 10, "client_id": 1})
    assert b.json()["duplicate"] is True and b.json()["event_id"] == a.json()["event_id"]
    assert c.json()["duplicate"] is False
    assert len(relay.rows()) == 2


def test_same_key_from_different_sources_are_different_events(relay):
    a = relay.post("/api/events", "crm", json={"event_type": "lead.updated", "source_system": "crm", "payload": {"id": 1}, "idempotency_key": "k"})
    b = relay.post("/api/events", "financeiro", json={"event_type": "invoice.created", "source_system": "financeiro", "payload": {"id": 1}, "idempotency_key": "k"})
    assert a.json()["event_id"] != b.json()["event_id"]


def test_concurrent_duplicates_store_one_event(relay):
    def post(_):
        with httpx.Client(base_url=relay.url, timeout=20) as client:
            return client.post(
                "/webhooks/site/lead",
                json={"name": "Ana", "phone": "11988887777"},
                headers={"Authorization": f"Bearer {TOKENS['site']}", "webhook-id": "same-delivery"},
            )

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(32)))
    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["event_id"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if not r.json()["duplicate"]) == 1
    assert len(relay.rows()) == 1
