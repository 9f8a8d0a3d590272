"""Each sync's calls and fields against the sandbox (CONTRACTS §5, §10)."""

from __future__ import annotations

import datetime as dt

from tests.syncs.conftest import PAGE_SIZE, checks, materializations, service, today, writes


def test_crm_operacao_creates_schedules_and_confirms_them(hub):
    sb = hub.sb
    sb.seed({"crm": {"pending_schedules": [
        {"id": 500 + i, "client_id": 100 + i, "contract_id": 700 + i, "service_type": "cuidador_idoso",
         "start_date": "2026-03-02T08:00:00-03:00", "end_date": "2026-03-02T20:00:00-03:00",
         "preferences": {"observacoes": "Paciente com Alzheimer leve"}}
        for i in range(1, 6)
    ]}})

    result = hub.run("crm_operacao")

    assert result.success
    # five items over pages of two: the feed was read to its last page
    gets = [c for c in sb.calls("crm") if c["method"] == "GET"]
    assert len(gets) == 3 and len(gets) > 5 // PAGE_SIZE
    created = writes(sb, "operacao", "POST", "/api/v1/schedules")
    assert [c["json"] for c in created if c["json"]["client_id"] == 101] == [{
        "client_id": 101, "crm_contract_id": 701, "service_type": "cuidador_idoso",
        "start_date": "2026-03-02T08:00:00-03:00", "end_date": "2026-03-02T20:00:00-03:00",
        "preferences": {"observacoes": "Paciente com Alzheimer leve"},
    }]
    assert {c["headers"]["idempotency-key"] for c in created} == {f"sync:crm_operacao:schedule:{500 + i}" for i in range(1, 6)}
    confirms = writes(sb, "crm", "POST", "/api/v1/sync/confirm/")
    schedules = {str(s["crm_contract_id"]): s["id"] for s in sb.records("operacao", "schedules")}
    assert {c["path"]: c["json"]["operacao_schedule_id"] for c in confirms} == {
        f"/api/v1/sync/confirm/{500 + i}": schedules[str(700 + i)] for i in range(1, 6)
    }
    meta = materializations(result)["operacao/schedules"]
    assert (meta["read"], meta["written"], meta["confirmed"], meta["failed"]) == (5, 5, 5, 0)
    # health notes never reach the UI: the preview shows the preference keys only
    assert "Alzheimer" not in str(meta["preview"])
    assert checks(result)["no_pending_schedule_older_than_2h"].passed


def test_operacao_financeiro_invoices_the_day_and_marks_services_billed(hub):
    sb = hub.sb
    day = today() - dt.timedelta(days=1)
    sb.seed({"operacao": {"services": [
        service(9001, 101, day, hours=12, rate=30.0),
        service(9002, 103, day, hours=6, rate=35.0, extras=[{"description": "Deslocamento", "value": 25.0}]),
        service(9003, 104, day, billed=True),  # invoiced already: never again
        service(9004, 105, day + dt.timedelta(days=1)),  # another day: another partition
    ]}})

    result = hub.run("operacao_financeiro", day)

    assert result.success
    get = [c for c in sb.calls("operacao") if c["method"] == "GET"][0]
    assert get["path"] == "/api/v1/services/completed" and get["query"]["date"] == day.isoformat()
    invoices = {c["json"]["operacao_service_id"]: c for c in writes(sb, "financeiro", "POST", "/api/invoices")}
    assert sorted(invoices) == [9001, 9002]
    due = (day + dt.timedelta(days=3)).isoformat()
    assert invoices[9002]["json"] == {
        "client_id": 103, "operacao_service_id": 9002, "due_date": due,
        "items": [
            {"description": "Serviço de cuidador - cuidador_idoso", "hours": 6, "unit_price": 35.0, "total": 235.0},
            {"description": "Deslocamento", "hours": 0, "unit_price": 25.0, "total": 25.0},
        ],
    }
    assert invoices[9001]["headers"]["idempotency-key"] == "sync:operacao_financeiro:invoice:9001"
    billed = {r["id"]: r for r in sb.records("operacao", "services")}
    stored = {r["operacao_service_id"]: r["id"] for r in sb.records("financeiro", "invoices")}
    assert billed[9001]["billed"] and billed[9001]["invoice_id"] == stored[9001]
    assert billed[9002]["invoice_id"] == stored[9002]
    assert not billed[9004]["billed"]
    meta = materializations(result)
    assert meta["financeiro/invoices"]["written"] == 2
    assert meta["financeiro/invoices"]["skipped_already_synced"] == 1
    assert meta["financeiro/invoices"]["partition"] == day.isoformat()
    assert meta["operacao/services_billed"]["confirmed"] == 2
    assert checks(result)["every_completed_service_invoiced_once"].passed


def test_crm_financeiro_sets_up_billing_and_confirms_the_contract(hub):
    sb = hub.sb
    sb.seed({"crm": {"contracts": [
        {"id": 701, "client_id": 101, "billing_type": "mensal", "value": 4800.00, "payment_method": "boleto"},
        {"id": 702, "client_id": 102, "billing_type": "por_servico", "value": 360.00, "payment_method": "pix"},
        {"id": 703, "client_id": 103, "billing_type": "mensal", "value": 100.0, "payment_method": "pix",
         "financeiro_id": 9},  # set up already: not pending
    ]}})

    result = hub.run("crm_financeiro")

    assert result.success
    setups = writes(sb, "financeiro", "POST", "/api/billing/setup")
    assert [c["json"] for c in setups if c["json"]["crm_contract_id"] == 701] == [{
        "crm_client_id": 101, "crm_contract_id": 701, "billing_type": "mensal", "amount": 4800.0,
        "payment_method": "boleto",
    }]
    assert len(setups) == 2
    contracts = {c["id"]: c for c in sb.records("crm", "contracts")}
    created = {s["crm_contract_id"]: s["id"] for s in sb.records("financeiro", "billing_setups")}
    assert contracts[701]["financeiro_id"] == created[701] and contracts[702]["financeiro_id"] == created[702]
    assert materializations(result)["financeiro/billing_setups"]["written"] == 2


def test_cuidadores_crm_forwards_caregiver_updated_and_confirms(hub):
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": [
        {"id": 801, "caregiver_id": 301, "changes": {"phone": "5511976540301", "name": "Joana Lima"},
         "updated_at": "2026-03-01T17:00:00-03:00"},
        {"id": 802, "caregiver_id": 302, "changes": {"status": "inactive"}, "updated_at": "2026-03-02T07:45:00-03:00"},
    ]}})

    result = hub.run("cuidadores_crm")

    assert result.success
    events = {e["event_id"]: e for e in sb.events("crm")}
    assert set(events) == {"sync:cuidadores_crm:update:801", "sync:cuidadores_crm:update:802"}
    assert events["sync:cuidadores_crm:update:801"]["type"] == "caregiver.updated"
    assert events["sync:cuidadores_crm:update:801"]["data"] == {
        "caregiver_id": 301, "changes": {"phone": "5511976540301", "name": "Joana Lima"},
        "timestamp": "2026-03-01T17:00:00-03:00",
    }
    assert all(u.get("confirmed_at") for u in sb.records("cuidadores", "updates"))
    meta = materializations(result)["crm/caregiver_updates"]
    assert meta["written"] == 2 and meta["confirmed"] == 2
    # the preview says which fields changed, never the new phone or name
    shown = str(meta["preview"])
    assert "phone" in shown and "5511976540301" not in shown and "Joana" not in shown


def test_invalid_items_are_reported_not_sent(hub):
    sb = hub.sb
    day = today()
    sb.seed({"operacao": {"services": [
        service(9101, 101, day),
        service(9102, None, day),  # no client: cannot be invoiced
        {**service(9103, 102, day), "total": "abc"},
    ]}})

    result = hub.run("operacao_financeiro", day)

    assert result.success  # bad source data waits for a person, it is not retried
    assert [c["json"]["operacao_service_id"] for c in writes(sb, "financeiro", "POST")] == [9101]
    meta = materializations(result)["financeiro/invoices"]
    assert meta["invalid"] == 2
    assert {r["id"]: r["reason"] for r in meta["invalid_items"]} == {
        "9102": "client_id missing", "9103": "total not a number"}
    check = checks(result)["every_completed_service_invoiced_once"]
    assert not check.passed
    assert check.metadata["without_invoice_ids"].value == "9102, 9103"
