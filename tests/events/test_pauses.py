"""A paused destination (issue 16): its actions wait in the ledger without calling, the
run succeeds (not in the DLQ) and says what waits; on resume (or when ``until`` passes)
the paused-actions sensor starts one run that calls only what waited, once."""

from __future__ import annotations

import datetime as dt
import time

from dagster import build_sensor_context

from carinho_pipelines.destinations import limits, pauses
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


def test_behind_a_line_for_a_busy_destination_the_action_waits_outside_the_run_and_goes_once_there_is_room(
        hub, pooled_instance, monkeypatch):
    """A flood to Marketing (issue 16): its one slot taken and a line waiting, a lead's
    run does not wait in its worker: the attribution waits in the ledger (busy), the run
    succeeds with the CRM and WhatsApp done, and once Marketing has room the sensor starts
    one run that calls only Marketing."""
    # were the lead's run to wait for the slot, it would wait this long
    monkeypatch.setattr(limits, "SLOT_WAIT_SECONDS", 60.0)
    storage = pooled_instance.event_log_storage
    storage.set_concurrency_slots("destination-marketing", 1)
    holders = [("flood-run-1", "marketing_conversion"), ("flood-run-2", "marketing_conversion"),
               ("flood-run-3", "marketing_conversion")]
    for run_id, step in holders:  # one holds the slot, two wait for it
        storage.claim_concurrency_slot("destination-marketing", run_id, step, 0)
    assert storage.get_concurrency_info("destination-marketing").pending_step_count == 2

    eid = hub.event("lead.created", "site", {"name": "Cida", "phone": "5511977773333", "utm_source": "google"})
    started = time.monotonic()
    first = hub.run(eid)
    assert first.success and time.monotonic() - started < limits.SLOT_WAIT_SECONDS / 4  # it did not wait in line
    statuses = _statuses(hub, eid)
    assert statuses == {"crm_upsert_lead": "succeeded", "marketing_attribute_lead": "paused"}
    assert (ledger.get_action(hub.store, eid, "marketing_attribute_lead").result or {})["busy"] is True
    assert hub.calls("marketing", "POST", "/leads") == [] and len(hub.calls("crm", "POST", "/api/v1/leads")) == 1
    assert hub.instance.get_run_by_id(first.run_id).tags[tags.PAUSED] == "marketing"
    # its own claim was withdrawn: the line is the flood's, and nothing of the lead's holds a slot
    info = storage.get_concurrency_info("destination-marketing")
    assert {s.run_id for s in info.pending_steps} | {s.run_id for s in info.claimed_slots} == {r for r, _ in holders}

    for run_id, step in holders:
        storage.free_concurrency_slot_for_step(run_id, step)
    [request] = _tick(hub).run_requests
    assert request.tags[tags.EVENT_ID] == str(eid) and request.tags[tags.LAUNCHED_BY] == tags.BY_PAUSE_SENSOR
    resumed = EVENT_JOBS["lead.created"].execute_in_process(tags=request.tags, resources=hub.resources(),
                                                           instance=hub.instance, raise_on_error=False)
    assert resumed.success and set(_statuses(hub, eid).values()) == {"succeeded"}
    assert len(hub.calls("marketing", "POST", "/leads")) == 1 and len(hub.calls("crm", "POST", "/api/v1/leads")) == 1
    assert storage.get_concurrency_info("destination-marketing").active_slot_count == 0  # freed after the call
    assert _tick(hub).run_requests == []
