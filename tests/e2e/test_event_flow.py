"""A webhook in, one Dagster run out (sensor + run queue + launcher), exactly once."""

import time

from dagster import DagsterInstance, RunsFilter

from carinho_pipelines import tags

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
    assert run.tags[tags.QUEUE] == "integrations-high" and run.tags[tags.DLQ] == "open"
    assert run.tags["dagster/priority"] == "10"
    assert len([c for c in stack.sb.calls("crm") if c["method"] == "POST" and c["path"] == "/api/v1/leads"]) == 1

    # a duplicate delivery and a daemon crash + restart do not launch a second run
    again = stack.post("/webhooks/site/lead", "site", {"name": "Ana", "phone": PHONE, "utm_source": "google",
                                                      "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"})
    assert again.json() == {"event_id": event_id, "duplicate": True, "status": "received"}
    stack.kill_daemon()
    stack.start_daemon()
    second = stack.post("/webhooks/crm/client-registered", "crm", {"id": 90, "name": "Bia", "phone": PHONE})
    stack.wait_status(second.json()["event_id"], {"succeeded", "failed"})
    time.sleep(6)  # at least one more sensor tick after the restart
    assert len(_runs_of(stack, event_id)) == 1
    assert len(_runs_of(stack, second.json()["event_id"])) == 1


def test_events_api_requires_a_key_and_filters_by_status(stack):
    assert stack.http.get("/api/events").status_code == 401
    assert stack.http.get("/api/events", headers={"X-API-Key": "wrong"}).status_code == 401
    resp = stack.http.get("/api/events", params={"status": "succeeded", "type": "lead.created"},
                          headers={"Authorization": "Bearer e2e-ops-key"})
    assert resp.status_code == 200
    assert all(e["status"] == "succeeded" and e["event_type"] == "lead.created" for e in resp.json()["data"])
    assert stack.http.get("/api/events/999999", headers={"X-API-Key": "e2e-ops-key"}).status_code == 404
