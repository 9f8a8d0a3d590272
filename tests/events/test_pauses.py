"""A paused destination (issue 16): its actions wait in the ledger without calling, the
run succeeds (not in the DLQ) and says what waits; on resume (or when ``until`` passes)
the paused-actions sensor starts one run that calls only what waited, once."""

from __future__ import annotations

import datetime as dt

from dagster import build_sensor_context

from carinho_pipelines.destinations import pauses
from carinho_pipelines.events import ledger
from carinho_pipelines.events.jobs import EVENT_JOBS
from carinho_pipelines.events.sensors import paused_actions_sensor
from carinho_pipelines.kernel import tags
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.store import utcnow

PHONE = "5511977771111"


def _tick(hub):
    context = build_sensor_context(instance=hub.instance,
                                   resources={"event_store": EventStoreResource(database_url=hub.store_url)})
    return paused_actions_sensor.evaluate_tick(context)


def _statuses(hub, event_id):
    return {a: ledger.get_action(hub.store, event_id, a).status
            for a in ("crm_upsert_lead", "marketing_attribute_lead", "whatsapp_auto_reply")
            if ledger.get_action(hub.store, event_id, a) is not None}


def test_a_paused_crm_holds_its_actions_and_their_dependants_and_a_resume_sends_them_once(hub):
    pauses.pause(hub.store, "crm", "CRM maintenance window", None, "ops")
    eid = hub.event("lead.created", "site", {"name": "Ana", "phone": PHONE, "utm_source": "google"})
    first = hub.run(eid)
    assert first.success  # waiting is not failing: no DLQ item
    statuses = _statuses(hub, eid)
    assert statuses["crm_upsert_lead"] == "paused" and statuses["marketing_attribute_lead"] == "paused"
    assert hub.calls("crm") == [] and hub.calls("marketing", "POST", "/leads") == []
    assert len(hub.sb.zapi.sent()) == 1  # the run's other actions went on
    assert hub.instance.get_run_by_id(first.run_id).tags[tags.PAUSED] == "crm"
    still = _tick(hub)  # still paused: nothing to start
    assert still.run_requests == [] and "wait for crm" in still.skip_message

    assert pauses.resume(hub.store, "crm")
    [request] = _tick(hub).run_requests
    assert request.job_name == EVENT_JOBS["lead.created"].name and request.tags[tags.EVENT_ID] == str(eid)
    assert request.tags[tags.LAUNCHED_BY] == tags.BY_PAUSE_SENSOR
    resumed = EVENT_JOBS["lead.created"].execute_in_process(tags=request.tags, resources=hub.resources(),
                                                           instance=hub.instance, raise_on_error=False)
    assert resumed.success
    assert set(_statuses(hub, eid).values()) == {"succeeded"}
    assert len(hub.calls("crm", "POST", "/api/v1/leads")) == 1 and len(hub.calls("marketing", "POST", "/leads")) == 1
    assert len(hub.sb.zapi.sent()) == 1  # the auto-reply was not sent again
    result = _tick(hub)
    assert result.run_requests == [] and result.skip_message == "no action waits"


def test_a_pause_with_until_ends_by_itself_and_other_destinations_are_untouched(hub):
    pauses.pause(hub.store, "marketing", "campaign freeze", utcnow() + dt.timedelta(seconds=2), "ops")
    eid = hub.event("lead.created", "site", {"name": "Bia", "phone": "5511977772222", "utm_source": "google"})
    assert hub.run(eid).success
    statuses = _statuses(hub, eid)
    assert statuses["crm_upsert_lead"] == "succeeded" and statuses["marketing_attribute_lead"] == "paused"
    assert pauses.active(hub.store, utcnow() + dt.timedelta(seconds=3)) == {}  # until passed
    assert "marketing" in pauses.active(hub.store)
    assert pauses.is_paused(hub.store, "crm") is None
