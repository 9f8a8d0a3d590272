"""Retries, error classes, the per-action ledger and the WhatsApp contingency."""

from dagster import DagsterEventType

from carinho_pipelines.events import ledger, whatsapp_outbox
from carinho_pipelines.resources import ZApiResource

PHONE = "5511988887777"


def _failure_metadata(result, step):
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_key == step:
            return {k: v.value for k, v in event.event_specific_data.user_failure_data.metadata.items()}
    raise AssertionError(f"no failure of {step}")


def test_transient_failures_are_retried_with_the_same_idempotency_key(hub):
    hub.sb.fail("financeiro", status=503, count=2, retry_after=0)
    eid = hub.event("client.registered", "crm", {"id": 1, "name": "Bia"})
    result = hub.run(eid)
    assert result.success
    setups = hub.calls("financeiro", "POST", "/api/billing/setup")
    assert [c["status"] for c in setups] == [503, 503, 201]
    assert len({c["headers"]["idempotency-key"] for c in setups}) == 1
    restarts = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(restarts) == 2


def test_a_rejected_call_fails_at_once_with_the_response_and_nothing_else_repeats(hub):
    hub.sb.fail("financeiro", status=422, count=1)
    eid = hub.event("client.registered", "crm", {"id": 1, "name": "Bia", "phone": PHONE})
    result = hub.run(eid)
    assert not result.success
    assert len(hub.calls("financeiro", "POST", "/api/billing/setup")) == 1  # no retry of a 4xx
    meta = _failure_metadata(result, "financeiro_billing_setup")
    assert meta["error_class"] == "invalid" and meta["status"] == 422
    record = ledger.get_action(hub.store, eid, "financeiro_billing_setup")
    assert record.status == "failed" and record.error_class == "invalid"
    # the other actions ran and are recorded; running the event again repeats none of them
    assert ledger.get_action(hub.store, eid, "whatsapp_welcome").status == "succeeded"
    assert hub.run(eid).success
    assert len(hub.sb.zapi.sent()) == 1
    assert len(hub.calls("crm", "POST", "/api/v1/webhooks/events")) == 1
    assert [c["status"] for c in hub.calls("financeiro", "POST", "/api/billing/setup")] == [422, 201]


def test_retries_exhausted_leave_a_failed_run_classified_unavailable(hub):
    hub.sb.down("crm")
    try:
        eid = hub.event("lead.created", "site", {"name": "Ana", "phone": PHONE})
        result = hub.run(eid)
    finally:
        hub.sb.up("crm")
    assert not result.success
    assert _failure_metadata(result, "crm_upsert_lead")["error_class"] == "unavailable"
    # the auto-reply does not depend on CRM: it went out
    assert ledger.get_action(hub.store, eid, "whatsapp_lead_response").status == "succeeded"
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 4  # 5 attempts in all


def test_whatsapp_messages_are_held_while_disconnected_and_sent_once_when_back(hub):
    hub.sb.zapi.disconnect()
    whatsapp_outbox.forget_status()
    try:
        eid = hub.event("client.registered", "crm", {"id": 2, "name": "Bia", "phone": PHONE})
        assert hub.run(eid).success
        assert ledger.get_action(hub.store, eid, "whatsapp_welcome").status == "held"
        assert hub.sb.zapi.sent() == []
        assert whatsapp_outbox.outbox_counts(hub.store) == {"pending": 1}
        env = hub.sb.env()
        zapi = ZApiResource(base_url=env["ZAPI_BASE_URL"], instance_id=env["ZAPI_INSTANCE_ID"],
                            token=env["ZAPI_TOKEN"], client_token=env["ZAPI_CLIENT_TOKEN"])
        assert whatsapp_outbox.flush(hub.store, zapi) == {"sent": 0, "held": 1, "failed": 0}
    finally:
        hub.sb.zapi.connect()
    whatsapp_outbox.forget_status()
    assert whatsapp_outbox.flush(hub.store, zapi) == {"sent": 1, "held": 0, "failed": 0}
    assert whatsapp_outbox.flush(hub.store, zapi) == {"sent": 0, "held": 0, "failed": 0}
    [sent] = hub.sb.zapi.sent()
    assert sent["phone"] == PHONE
    assert whatsapp_outbox.outbox_counts(hub.store) == {"sent": 1}
    # the event's run is not repeated: the welcome stays held-then-sent, once
    assert hub.run(eid).success
    assert len(hub.sb.zapi.sent()) == 1


def test_zapi_unreachable_holds_the_message_too(hub):
    hub.sb.down("zapi")
    whatsapp_outbox.forget_status()
    try:
        eid = hub.event("service.completed", "operacao", {"id": 9, "client_id": 1, "client_phone": PHONE})
        assert hub.run(eid).success
        assert ledger.get_action(hub.store, eid, "whatsapp_service_completed").status == "held"
    finally:
        hub.sb.up("zapi")
    assert whatsapp_outbox.outbox_counts(hub.store) == {"pending": 1}


def test_a_message_zapi_refused_is_sent_when_a_person_reruns_the_event(hub):
    env = hub.sb.env()
    zapi = ZApiResource(base_url=env["ZAPI_BASE_URL"], instance_id=env["ZAPI_INSTANCE_ID"], token=env["ZAPI_TOKEN"],
                        client_token=env["ZAPI_CLIENT_TOKEN"])
    assert whatsapp_outbox.instance_ready(zapi)  # connected (cached), so the send itself is refused
    hub.sb.fail("zapi", status=400, count=1)
    eid = hub.event("service.completed", "operacao", {"id": 11, "client_id": 1, "client_phone": PHONE})
    assert not hub.run(eid).success
    assert ledger.get_action(hub.store, eid, "whatsapp_service_completed").error_class == "rejected"
    assert hub.run(eid).success  # e.g. a DLQ retry after the cause was fixed
    assert ledger.get_action(hub.store, eid, "whatsapp_service_completed").status == "succeeded"
    assert len(hub.sb.zapi.sent()) == 1
