"""A webhook in, one Dagster run out (sensor + run queue + launcher), exactly once."""

import time

from dagster import DagsterInstance, RunsFilter

from carinho_pipelines.kernel import tags
from carinho_pipelines.store import Envelope, utcnow

PHONE = "5511988887777"


def _runs_of(stack, event_id):
    with DagsterInstance.from_config(str(stack.home)) as instance:
        return list(instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: str(event_id)})))


def test_site_lead_is_fanned_out_by_the_daemon_exactly_once_across_restarts(stack):
    resp = stack.post("/webhooks/site/lead", "site", {"name": "Ana", "phone": PHONE, "utm_source": "google",
                                                     "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
    assert resp.status_code == 202
    event_id = resp.json()["event_id"]
    body = stack.wait_status(event_id, {"succeeded", "failed"})
    assert body["status"] == "succeeded", body
    assert {a["action"]: a["status"] for a in body["actions"]} == {
        "crm_upsert_lead": "succeeded", "whatsapp_lead_response": "succeeded", "marketing_attribute_lead": "succeeded"}
    assert body["payload"]["phone"] == "55119****7777"  # masked in the API
    [run] = _runs_of(stack, event_id)
    # a run that succeeded is not in the DLQ: no DLQ tag
    assert run.tags[tags.QUEUE] == "integrations-high" and tags.DLQ not in run.tags
    assert run.tags["dagster/priority"] == "10"
    assert len([c for c in stack.sb.calls("crm") if c["method"] == "POST" and c["path"] == "/api/v1/leads"
                and c["json"]["phone"] == PHONE]) == 1

    # a duplicate delivery and a daemon crash + restart do not launch a second run
    again = stack.post("/webhooks/site/lead", "site", {"name": "Ana", "phone": PHONE, "utm_source": "google",
                                                      "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
    assert again.json() == {"event_id": event_id, "duplicate": True, "status": "received"}
    # the daemon is killed mid-stream and restarted: nothing lost, nothing duplicated
    stream = []
    for i in range(6):
        if i == 3:
            stack.kill_daemon()
        stream.append(stack.post("/webhooks/crm/client-registered", "crm",
                                 {"id": 90 + i, "name": "Bia", "phone": PHONE}).json()["event_id"])
    stack.start_daemon()
    for sid in stream:
        assert stack.wait_status(sid, {"succeeded", "failed"})["status"] == "succeeded"
    # wait for a sensor tick after the restart: an event stored behind the relay's back
    # (no direct submission) runs only once the restarted daemon's sensor dispatches it
    marker = stack.store.ingest(Envelope("lead.updated", "crm", f"after-restart-{time.time_ns()}", "integrations",
                                         {"id": 99}, utcnow())).event_id
    assert stack.wait_status(marker, {"succeeded", "failed"})["status"] == "succeeded"
    assert len(_runs_of(stack, event_id)) == 1
    assert [len(_runs_of(stack, sid)) for sid in stream] == [1] * 6


def test_events_api_requires_a_key_and_filters_by_status(stack):
    assert stack.http.get("/api/events").status_code == 401
    assert stack.http.get("/api/events", headers={"X-API-Key": "wrong"}).status_code == 401
    resp = stack.http.get("/api/events", params={"status": "succeeded", "type": "lead.created"},
                          headers={"Authorization": "Bearer e2e-ops-key"})
    assert resp.status_code == 200
    assert all(e["status"] == "succeeded" and e["event_type"] == "lead.created" for e in resp.json()["data"])
    assert stack.http.get("/api/events/999999", headers={"X-API-Key": "e2e-ops-key"}).status_code == 404


def _stored(stack, event_id):
    return stack.store.get_event(event_id)


def test_direct_submission_launches_at_once_and_the_sensor_covers_a_down_webserver(stack):
    stack.wait_webserver()
    resp = stack.post("/webhooks/site/lead", "site", {"name": "Rui", "phone": "5511955554444"})
    event_id = resp.json()["event_id"]
    deadline = time.monotonic() + 15
    while _stored(stack, event_id)["run_id"] is None and time.monotonic() < deadline:
        time.sleep(0.1)
    row = _stored(stack, event_id)
    assert row["submit_claimed_at"] is not None and row["run_id"] is not None
    assert (row["dispatched_at"] - row["received_at"]).total_seconds() < 5  # no sensor tick needed
    assert stack.wait_status(event_id, {"succeeded", "failed"})["status"] == "succeeded"
    assert [r.run_id for r in _runs_of(stack, event_id)] == [row["run_id"]]

    # the webserver is down: the relay still acknowledges at once, and the sensor
    # dispatches the event once the relay's claim is stale
    stack.stop_webserver()
    try:
        started = time.monotonic()
        resp = stack.post("/webhooks/site/lead", "site", {"name": "Ivo", "phone": "5511933332222"})
        assert resp.status_code == 202 and time.monotonic() - started < 2
        down_id = resp.json()["event_id"]
        assert stack.wait_status(down_id, {"succeeded", "failed"})["status"] == "succeeded"
        assert len(_runs_of(stack, down_id)) == 1
        assert _stored(stack, down_id)["submit_claimed_at"] is not None
    finally:
        stack.start_webserver()
