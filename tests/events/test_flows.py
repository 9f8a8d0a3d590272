"""Each catalogued flow against the simulators (CONTRACTS §3), executed as Dagster runs."""

import datetime as dt

from carinho_pipelines.kernel import templates
from carinho_pipelines.kernel.business_hours import SAO_PAULO
from carinho_pipelines.events import ledger
from carinho_pipelines.events.feedback_links import verify_token
from carinho_sandbox.seed import EXISTING_LEAD_PHONE

PHONE = "5511988887777"


def test_site_lead_creates_the_crm_lead_replies_and_attributes_the_campaign(hub):
    eid = hub.event("lead.created", "site", {"name": "Ana", "phone": PHONE, "email": "ana@example.com",
                                             "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
    result = hub.run(eid)
    assert result.success
    [create] = hub.calls("crm", "POST", "/api/v1/leads")
    assert create["json"]["name"] == "Ana" and create["json"]["phone"] == PHONE and create["json"]["source"] == "site"
    assert create["headers"]["idempotency-key"] == f"carinho:{eid}:crm_upsert_lead:create"
    assert create["headers"]["x-source-system"] == "integracoes"
    [attribution] = hub.calls("marketing", "POST", "/leads")
    assert attribution["path"] == "/api/v1/campaigns/41/leads"
    lead_id = ledger.get_action(hub.store, eid, "crm_upsert_lead").result["lead_id"]
    assert attribution["json"] == {"lead_id": lead_id, "source": "site"}
    [sent] = hub.sb.zapi.sent()
    assert sent["phone"] == PHONE and sent["message"] == templates.lead_response("Ana")


def test_existing_lead_is_updated_not_duplicated_and_auto_reply_goes_once_per_24h(hub):
    first = hub.event("lead.created", "site", {"name": "Ana", "phone": PHONE})
    second = hub.event("lead.created", "site", {"name": "Ana", "phone": "(11) 98888-7777", "message": "de novo"})
    assert hub.run(first).success and hub.run(second).success
    assert len(hub.calls("crm", "POST", "/api/v1/leads")) == 1
    [update] = hub.calls("crm", "PUT")
    assert update["json"]["interaction_count"] >= 1
    assert len(hub.sb.zapi.sent()) == 1
    assert ledger.get_action(hub.store, second, "whatsapp_lead_response").status == "skipped"


def test_client_registered_welcomes_sets_up_billing_converts_and_forwards(hub):
    eid = hub.event("client.registered", "crm", {"id": 77, "name": "Bia", "email": "bia@example.com", "phone": PHONE,
                                                 "cpf": "12345678900", "lead_id": 5, "campaign_id": 41})
    assert hub.run(eid).success
    [setup] = hub.calls("financeiro", "POST", "/api/billing/setup")
    assert setup["json"] == {"crm_client_id": 77, "name": "Bia", "email": "bia@example.com", "phone": PHONE, "cpf": "12345678900"}
    [conversion] = hub.calls("marketing", "POST", "/api/v1/campaigns/41/leads")
    assert conversion["json"] == {"lead_id": 5, "client_id": 77, "status": "converted"}
    [forward] = hub.calls("crm", "POST", "/api/v1/webhooks/events")
    assert forward["json"]["type"] == "client.registered" and forward["json"]["id"] == str(eid)
    assert forward["json"]["data"]["id"] == 77
    assert hub.sb.zapi.sent()[0]["message"] == templates.welcome("Bia")
    [mail] = hub.mail.messages()
    assert mail["To"] == "bia@example.com" and mail["Subject"] == "Bem-vindo(a) ao Carinho com Você!"


def test_service_completed_notifies_schedules_feedback_in_business_hours_and_forwards(hub):
    # 19:30 São Paulo + 2 h = 21:30, outside business hours → next day 08:00
    completed = dt.datetime(2026, 11, 27, 19, 30, tzinfo=SAO_PAULO)
    eid = hub.event("service.completed", "operacao", {
        "id": 501, "client_id": 7, "client_name": "Carla", "client_phone": PHONE, "client_email": "carla@example.com",
        "caregiver_id": 3, "caregiver_name": "Rosa", "completed_at": completed.isoformat()})
    assert hub.run(eid).success
    assert hub.sb.zapi.sent()[0]["message"] == templates.service_completed("Carla")
    for system, path in (("crm", "/api/v1/webhooks/events"), ("financeiro", "/api/webhooks/events"),
                         ("cuidadores", "/api/v1/webhooks/events")):
        [fwd] = hub.calls(system, "POST", path)
        assert fwd["json"]["type"] == "service.completed"
    assert hub.calls("financeiro", "POST", "/api/invoices") == []  # invoicing is the nightly sync's job
    feedback_id = ledger.get_action(hub.store, eid, "schedule_feedback_request").result["feedback_event_id"]
    feedback = hub.store.get_event(feedback_id)
    assert feedback["event_type"] == "feedback.requested" and feedback["source"] == "hub"
    assert feedback["available_at"].astimezone(SAO_PAULO) == dt.datetime(2026, 11, 28, 8, 0, tzinfo=SAO_PAULO)
    # a duplicate completion of the same service does not ask twice
    again = hub.event("service.completed", "operacao", {"id": 501, "client_id": 7, "completed_at": completed.isoformat()})
    assert hub.run(again).success
    assert ledger.get_action(hub.store, again, "schedule_feedback_request").result["feedback_event_id"] == feedback_id


def test_feedback_request_sends_rating_buttons_and_a_signed_link(hub):
    eid = hub.event("feedback.requested", "hub", {"service_id": 501, "client_id": 7, "client_name": "Carla",
                                                  "client_phone": PHONE, "client_email": "carla@example.com",
                                                  "caregiver_id": 3, "caregiver_name": "Rosa"})
    assert hub.run(eid).success
    [sent] = hub.sb.zapi.sent()
    assert sent["message"] == templates.feedback_request("Rosa")
    assert [b["id"] for b in sent["buttons"]] == [f"rating_{i}" for i in range(1, 6)]
    [mail] = hub.mail.messages()
    body = mail.get_body(preferencelist=("plain",)).get_content()
    token = body.split("token=")[1].split()[0]
    claims = verify_token(token)
    assert (str(claims.service_id), str(claims.client_id), str(claims.caregiver_id)) == ("501", "7", "3")


def test_whatsapp_rating_is_attributed_to_the_service_forwarded_and_thanked(hub):
    request = hub.event("feedback.requested", "hub", {"service_id": 501, "client_id": 7, "client_phone": PHONE,
                                                      "caregiver_id": 3, "caregiver_name": "Rosa"})
    assert hub.run(request).success
    button_message_id = hub.sb.zapi.sent()[0]["messageId"]
    rating = hub.event("feedback.received", "whatsapp", {"rating": 5, "channel": "whatsapp", "phone": PHONE,
                                                         "reference_message_id": button_message_id, "message_id": "X1"})
    assert hub.run(rating).success
    for system in ("crm", "cuidadores"):
        [fwd] = hub.calls(system, "POST", "/webhooks/events")
        assert fwd["json"]["data"]["service_id"] == 501 and fwd["json"]["data"]["caregiver_id"] == 3
    assert hub.sb.zapi.sent()[-1]["message"] == templates.thank_you(5)


def test_inbound_whatsapp_from_a_known_lead_is_recorded_and_from_a_stranger_becomes_a_lead(hub):
    known = hub.event("whatsapp.inbound", "whatsapp", {"message_id": "M1", "phone": EXISTING_LEAD_PHONE,
                                                       "message": "Oi", "name": "Dona Lúcia"})
    assert hub.run(known).success  # the default seed has a lead with this phone
    [interaction] = hub.calls("crm", "POST", "/interactions")
    assert interaction["json"]["channel"] == "whatsapp" and interaction["json"]["content"] == "Oi"
    assert interaction["json"]["message_id"] == "M1"
    [fwd] = hub.calls("atendimento", "POST", "/api/v1/webhooks/events")
    assert fwd["json"]["type"] == "whatsapp.inbound"
    stranger = hub.event("whatsapp.inbound", "whatsapp", {"message_id": "M2", "phone": "5521911112222", "message": "Olá"})
    assert hub.run(stranger).success
    lead_event = hub.store.get_event(ledger.get_action(hub.store, stranger, "crm_record_interaction").result["lead_event_id"])
    assert lead_event["event_type"] == "lead.created" and lead_event["source"] == "whatsapp"
    assert lead_event["payload"]["phone"] == "5521911112222"


def test_payout_is_forwarded_and_the_caregiver_told(hub):
    eid = hub.event("payout.processed", "financeiro", {"id": 9, "caregiver_id": 3, "caregiver_name": "Rosa",
                                                       "caregiver_phone": PHONE, "amount": 1234.5,
                                                       "period_start": "2026-11-01", "period_end": "2026-11-15"})
    assert hub.run(eid).success
    assert hub.calls("cuidadores", "POST", "/api/v1/webhooks/events")
    assert hub.sb.zapi.sent()[0]["message"].endswith("Valor: R$ 1.234,50. Período: 01/11/2026 a 15/11/2026.")
