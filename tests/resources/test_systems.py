"""The internal-system clients against the sandbox's real HTTP simulators."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import date

import pytest
from dagster import ConfigurableResource, Definitions, job, op

from carinho_pipelines.kernel.errors import ERROR_CLASSES, ActionError, parse_retry_after
from carinho_pipelines.resources import (
    RESOURCE_KEYS,
    CrmResource,
    EmailResource,
    FinanceiroResource,
    MarketingResource,
    ZApiResource,
    build_resources,
)
from carinho_sandbox import Sandbox

from .conftest import CRM_WEBHOOK_SECRET, PAGE_SIZE

LEAD = {
    "name": "Joana Lima",
    "phone": "5511988887777",
    "email": "joana@example.com.br",
    "source": "site",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "cuidado-idosos",
    "message": "Preciso de cuidadora para minha mãe",
}


def last_call(sb: Sandbox, name: str) -> dict:
    return sb.calls(name)[-1]


# -- headers -----------------------------------------------------------------------------------


def test_every_call_carries_the_internal_headers_and_writes_an_idempotency_key(sb, system):
    crm = system("crm")
    created = crm.create_lead(LEAD, idempotency_key="evt-1:crm_upsert_lead")
    write = last_call(sb, "crm")
    crm.find_leads_by_phone("5511988887777")
    read = last_call(sb, "crm")

    for call in (write, read):
        headers = call["headers"]
        assert headers["authorization"] == "Bearer sandbox-crm-token"
        assert headers["x-internal-token"] == "sandbox-crm-token"
        assert headers["x-source-system"] == "integracoes"
        assert headers["accept"] == "application/json"
        uuid.UUID(headers["x-request-id"])
    assert write["headers"]["idempotency-key"] == "evt-1:crm_upsert_lead"
    assert "idempotency-key" not in read["headers"]
    assert write["headers"]["x-request-id"] != read["headers"]["x-request-id"]
    assert write["json"] == LEAD
    assert created["id"] and created["name"] == "Joana Lima"


def test_a_retried_write_with_the_same_key_creates_nothing_new(sb, system):
    crm = system("crm")
    first = crm.create_lead(LEAD, idempotency_key="evt-2:crm_upsert_lead")
    again = crm.create_lead(LEAD, idempotency_key="evt-2:crm_upsert_lead")
    assert again["id"] == first["id"]
    assert len(sb.records("crm", "leads")) == 1


def test_writes_require_an_idempotency_key(system):
    crm = system("crm")
    with pytest.raises(TypeError):
        crm.create_lead(LEAD)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        crm.create_lead(LEAD, idempotency_key="")


# -- the §4 calls, envelope and paging ---------------------------------------------------------


def test_crm_calls_unwrap_the_data_envelope(sb, system):
    crm = system("crm")
    lead = crm.create_lead({**LEAD, "phone": "(11) 98888-7777"}, idempotency_key="k1")
    assert "data" not in lead and lead["phone"] == "5511988887777"

    found = crm.find_leads_by_phone("+55 (11) 98888-7777")
    assert [f["id"] for f in found] == [lead["id"]]
    assert last_call(sb, "crm")["query"] == {"phone": "5511988887777"}

    updated = crm.update_lead(lead["id"], {"interaction_count": 1, "last_contact_at": "2025-06-01T10:00:00-03:00"},
                              idempotency_key="k2")
    assert updated["interaction_count"] == 1
    assert last_call(sb, "crm")["method"] == "PUT"

    interaction = crm.add_interaction(
        lead["id"],
        {"channel": "whatsapp", "direction": "inbound", "content": "Oi", "message_id": "3EB0AA",
         "received_at": "2025-06-01T10:00:00-03:00"},
        idempotency_key="k3",
    )
    assert interaction["lead_id"] == lead["id"]
    client = crm.create_client({"name": "Joana Lima", "lead_id": lead["id"]}, idempotency_key="k4")
    assert client["id"]


def test_list_calls_follow_the_pages_and_return_every_item(sb, system):
    rows = [{"id": i, "client_id": 10 + i, "contract_id": 20 + i, "service_type": "horista",
             "start_date": "2025-06-02", "end_date": "2025-06-30", "preferences": {}} for i in range(1, 6)]
    sb.seed({"crm": {"pending_schedules": rows}})
    crm = system("crm")

    pending = crm.pending_schedules()

    assert [p["id"] for p in pending] == [1, 2, 3, 4, 5]
    pages = [c["query"].get("page", "1") for c in sb.calls("crm")]
    assert len(pages) == -(-len(rows) // PAGE_SIZE) == 3
    assert pages == ["1", "2", "3"]


def test_sync_feeds_and_confirmations(sb, system):
    sb.seed({
        "crm": {
            "pending_schedules": [{"id": 7, "client_id": 1, "contract_id": 2, "service_type": "horista",
                                   "start_date": "2025-06-02", "end_date": "2025-06-03", "preferences": {}}],
            "contracts": [{"id": 40, "client_id": 1, "billing_type": "monthly", "value": 3200.0,
                           "payment_method": "pix"}],
        },
        "operacao": {"services": [{"id": 90, "client_id": 1, "service_type": "horista", "hours": 6,
                                   "hourly_rate": 45.0, "total": 270.0, "extras": [],
                                   "completed_at": "2025-06-01T18:00:00-03:00", "billed": False}]},
        "cuidadores": {"updates": [{"id": 5, "caregiver_id": 300, "changes": {"phone": "5511977776666"},
                                    "updated_at": "2025-06-01T09:00:00-03:00"}]},
    })
    crm, operacao, financeiro, cuidadores = (system(n) for n in ("crm", "operacao", "financeiro", "cuidadores"))

    assert [s["id"] for s in crm.pending_schedules()] == [7]
    schedule = operacao.create_schedule({"client_id": 1, "crm_contract_id": 2, "service_type": "horista",
                                         "start_date": "2025-06-02", "end_date": "2025-06-03",
                                         "preferences": {}}, idempotency_key="sync:7:schedule")
    crm.confirm_schedule(7, schedule["id"], idempotency_key="sync:7:confirm")
    assert last_call(sb, "crm")["json"] == {"operacao_schedule_id": schedule["id"]}
    assert crm.pending_schedules() == []

    assert [b["id"] for b in crm.pending_billing_setups()] == [40]
    setup = financeiro.billing_setup({"crm_client_id": 1, "crm_contract_id": 40, "billing_type": "monthly",
                                      "amount": 3200.0, "payment_method": "pix"}, idempotency_key="sync:40:setup")
    crm.confirm_billing_setup(40, setup["id"], idempotency_key="sync:40:confirm")
    assert crm.pending_billing_setups() == []

    services = operacao.completed_services(date(2025, 6, 1))
    assert [s["id"] for s in services] == [90]
    assert sb.calls("operacao")[-1]["query"] == {"date": "2025-06-01"}
    invoice = financeiro.create_invoice({"client_id": 1, "operacao_service_id": 90,
                                         "items": [{"description": "Atendimento", "hours": 6, "unit_price": 45.0,
                                                    "total": 270.0}],
                                         "due_date": "2025-06-04"}, idempotency_key="sync:90:invoice")
    billed = operacao.mark_billed(90, invoice["id"], idempotency_key="sync:90:billed")
    assert billed["billed"] is True and last_call(sb, "operacao")["method"] == "PUT"

    assert [u["id"] for u in cuidadores.pending_updates()] == [5]
    cuidadores.confirm_update(5, idempotency_key="sync:5:confirm")
    assert cuidadores.pending_updates() == []


def test_marketing_404_means_no_campaign(sb, system):
    marketing = system("marketing")
    assert marketing.find_campaign_by_utm("google", "cpc", "inexistente") is None

    sb.seed({"marketing": {"campaigns": [{"id": 3, "utm_source": "google", "utm_medium": "cpc",
                                          "utm_campaign": "cuidado-idosos"}]}})
    campaign = marketing.find_campaign_by_utm(utm_source="google", utm_medium="cpc", utm_campaign="cuidado-idosos")
    assert campaign["id"] == 3
    attributed = marketing.attribute_lead(3, {"lead_id": 11, "source": "site"}, idempotency_key="evt-9:mkt")
    assert attributed["campaign_id"] == 3
    converted = marketing.attribute_lead(3, {"lead_id": 11, "client_id": 5, "status": "converted"},
                                         idempotency_key="evt-10:mkt")
    assert converted["status"] == "converted"


# -- error classes -----------------------------------------------------------------------------


def test_503_is_unavailable_with_retry_after(sb, system):
    sb.fail("crm", status=503, count=1, retry_after=2)
    with pytest.raises(ActionError) as caught:
        system("crm").find_leads_by_phone("5511988887777")
    err = caught.value
    assert (err.error_class, err.status, err.retry_after, err.destination) == ("unavailable", 503, 2.0, "crm")
    assert err.retryable


def test_429_is_unavailable_and_honours_retry_after(sb, system):
    sb.fail("financeiro", status=429, count=1, retry_after=7)
    with pytest.raises(ActionError) as caught:
        system("financeiro").create_invoice({"client_id": 1}, idempotency_key="k")
    assert (caught.value.error_class, caught.value.retry_after) == ("unavailable", 7.0)


def test_408_is_unavailable(sb, system):
    sb.fail("cuidadores", status=408, count=1)
    with pytest.raises(ActionError) as caught:
        system("cuidadores").pending_updates()
    assert caught.value.error_class == "unavailable" and caught.value.retry_after is None


def test_422_is_invalid_with_a_masked_body(sb, system):
    with pytest.raises(ActionError) as caught:
        system("crm").create_lead({"email": "", "phone": ""}, idempotency_key="k")
    err = caught.value
    assert (err.error_class, err.status, err.retryable) == ("invalid", 422, False)
    assert "name" in err.response_body


def test_a_wrong_token_is_rejected(system):
    with pytest.raises(ActionError) as caught:
        system("crm", token="not-the-crm-token").pending_schedules()
    assert (caught.value.error_class, caught.value.status) == ("rejected", 401)
    assert not caught.value.retryable


def test_connection_refused_is_unavailable(sb, system):
    operacao = system("operacao")
    sb.down("operacao")
    try:
        with pytest.raises(ActionError) as caught:
            operacao.completed_services("2025-06-01")
    finally:
        sb.up("operacao")
    assert caught.value.error_class == "unavailable" and caught.value.status is None


def test_a_timeout_is_unavailable(sb, system):
    sb.latency("marketing", 1.5)
    started = time.monotonic()
    with pytest.raises(ActionError) as caught:
        system("marketing", timeout_seconds=0.3).find_campaign_by_utm("google")
    assert caught.value.error_class == "unavailable"
    assert "timed out" in caught.value.message
    assert time.monotonic() - started < 1.4


def test_retry_after_as_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412540.0) == 0.0
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert ERROR_CLASSES == ("unavailable", "rejected", "invalid", "error")


def test_action_errors_survive_pickling():
    import pickle

    err = ActionError("unavailable", "x", status=503, retry_after=1.0, destination="crm")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.error_class, clone.status, clone.retry_after, clone.destination) == ("unavailable", 503, 1.0, "crm")


# -- forward -------------------------------------------------------------------------------------


EVENT = {
    "id": "1042",
    "type": "client.updated",
    "timestamp": "2025-06-01T10:00:00-03:00",
    "source": "crm",
    "data": {"id": 5, "name": "Joana Lima", "phone": "5511988887777"},
}


def test_forward_posts_the_canonical_event_signed(sb, system):
    system("crm").forward_event(EVENT)

    call = last_call(sb, "crm")
    assert call["path"] == "/api/v1/webhooks/events" and call["status"] == 202
    assert call["json"] == EVENT
    headers = call["headers"]
    assert headers["webhook-id"] == "1042"
    assert headers["idempotency-key"] == "1042:forward_crm"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    # verify over exactly the bytes that were sent
    raw = call["body"] if call["body"] is not None else json.dumps(call["json"], separators=(",", ":"),
                                                                   ensure_ascii=False)
    key = base64.b64decode(CRM_WEBHOOK_SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw.encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert sb.events("crm")[0]["event_id"] == "1042"


def test_forward_accepts_a_store_row_and_financeiro_has_its_own_inbox(sb, system):
    row = {"id": 77, "event_type": "service.cancelled", "source": "operacao",
           "received_at": "2025-06-01T10:00:00-03:00", "payload": {"id": 9}}
    system("financeiro").forward_event(row, idempotency_key="77:forward_financeiro")
    call = last_call(sb, "financeiro")
    assert call["path"] == "/api/webhooks/events"
    assert call["json"] == {"id": "77", "type": "service.cancelled", "timestamp": "2025-06-01T10:00:00-03:00",
                            "source": "operacao", "data": {"id": 9}}
    assert "webhook-signature" not in call["headers"]  # no secret configured for Financeiro


def test_a_bad_signature_is_rejected_by_the_inbox(system):
    wrong = "whsec_" + base64.b64encode(b"someone-elses-key").decode()
    with pytest.raises(ActionError) as caught:
        system("crm", webhook_secret=wrong).forward_event(EVENT)
    assert caught.value.error_class == "rejected" and caught.value.status == 401


@pytest.mark.parametrize("name", ["operacao", "cuidadores", "atendimento", "marketing", "site", "documentos"])
def test_every_system_has_an_event_inbox(sb, system, name):
    system(name).forward_event(EVENT)
    assert sb.events(name)[0]["type"] == "client.updated"


# -- assembly from the environment -------------------------------------------------------------


def test_build_resources_reads_the_environment_and_runs_in_dagster(sb, monkeypatch):
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    resources = build_resources()
    assert tuple(resources) == RESOURCE_KEYS
    assert set(resources) == {"crm", "operacao", "financeiro", "cuidadores", "atendimento", "marketing", "site",
                              "documentos", "zapi", "email"}
    assert all(isinstance(r, ConfigurableResource) for r in resources.values())
    assert resources["email"].port == 2525 and resources["email"].starttls is False

    seen = {}

    @op
    def use_clients(crm: CrmResource, marketing: MarketingResource, zapi: ZApiResource,
                    financeiro: FinanceiroResource, email: EmailResource) -> None:
        seen["leads"] = crm.find_leads_by_phone("5511900000000")
        seen["campaign"] = marketing.find_campaign_by_utm("nenhuma")
        seen["status"] = zapi.status()

    @job
    def clients_job():
        use_clients()

    result = Definitions(jobs=[clients_job], resources=resources).get_job_def("clients_job").execute_in_process()
    assert result.success
    assert seen == {"leads": [], "campaign": None,
                    "status": {"connected": True, "smartphoneConnected": True, "error": None}}
    assert sb.calls("crm")[-1]["headers"]["authorization"] == "Bearer sandbox-crm-token"


def test_optional_variables_have_defaults(monkeypatch):
    for key in ("CARINHO_SITE_URL", "CARINHO_SITE_TOKEN", "CARINHO_SITE_WEBHOOK_SECRET", "ZAPI_BASE_URL",
                "SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    resources = build_resources()
    assert resources["site"].base_url == "https://site.carinho.com.vc"
    assert resources["zapi"].base_url == "https://api.z-api.io"
    email = resources["email"]
    assert (email.host, email.port, email.starttls, email.user) == ("localhost", 587, True, "")
