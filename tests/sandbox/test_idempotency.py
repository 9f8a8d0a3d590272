"""A write repeating an Idempotency-Key returns the first answer and creates nothing new."""

from __future__ import annotations

from carinho_sandbox import Sandbox


def test_same_key_same_answer_nothing_new(sb: Sandbox, api) -> None:
    crm = api("crm", **{"Idempotency-Key": "evt-1:crm.create_lead"})
    first = crm.post("/api/v1/leads", json={"name": "Ana", "phone": "11988887777"})
    second = crm.post("/api/v1/leads", json={"name": "Ana", "phone": "11988887777"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(sb.records("crm", "leads")) == 1
    assert [c.get("replayed", False) for c in sb.calls("crm")] == [False, True]


def test_different_keys_create_different_records(sb: Sandbox, api) -> None:
    for key in ("a", "b"):
        api("financeiro", **{"Idempotency-Key": key}).post("/api/billing/setup", json={"crm_client_id": 1})
    assert len(sb.records("financeiro", "billing_setups")) == 2


def test_keys_are_per_system(sb: Sandbox, api) -> None:
    api("operacao", **{"Idempotency-Key": "k"}).post(
        "/api/v1/schedules", json={"client_id": 1, "service_type": "x", "start_date": "2026-01-01"})
    api("financeiro", **{"Idempotency-Key": "k"}).post("/api/billing/setup", json={"crm_client_id": 1})
    assert len(sb.records("operacao", "schedules")) == 1
    assert len(sb.records("financeiro", "billing_setups")) == 1


def test_rejected_write_can_be_corrected_with_the_same_key(sb: Sandbox, api) -> None:
    crm = api("crm", **{"Idempotency-Key": "evt-2"})
    assert crm.post("/api/v1/clients", json={}).status_code == 422
    assert crm.post("/api/v1/clients", json={"name": "Ana"}).status_code == 201
    assert len(sb.records("crm", "clients")) == 1


def test_retry_after_an_injected_failure_creates_once(sb: Sandbox, api) -> None:
    sb.fail("financeiro", status=503, count=1)
    fin = api("financeiro", **{"Idempotency-Key": "inv-9001"})
    body = {"client_id": 1, "operacao_service_id": 9001, "items": [{"description": "x", "total": 10}],
            "due_date": "2026-01-04"}
    assert fin.post("/api/invoices", json=body).status_code == 503
    first = fin.post("/api/invoices", json=body)
    again = fin.post("/api/invoices", json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert len(sb.records("financeiro", "invoices")) == 1


def test_replay_still_requires_credentials(sb: Sandbox, api) -> None:
    import httpx

    api("crm", **{"Idempotency-Key": "k1"}).post("/api/v1/clients", json={"name": "Ana"})
    stolen = httpx.post(sb.url("crm") + "/api/v1/clients", json={"name": "Ana"}, headers={"Idempotency-Key": "k1"})
    assert stolen.status_code == 401


def test_put_is_idempotent_too(sb: Sandbox, api) -> None:
    sb.seed()
    ops = api("operacao", **{"Idempotency-Key": "billed-9001"})
    first = ops.put("/api/v1/services/9001/billed", json={"invoice_id": 1})
    second = ops.put("/api/v1/services/9001/billed", json={"invoice_id": 2})
    assert second.json() == first.json()
    assert sb.systems["operacao"].get("services", 9001)["invoice_id"] == 1
