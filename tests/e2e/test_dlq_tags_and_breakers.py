"""What operators see, on the real stack (relay, daemon, webserver, PostgreSQL):

* the UI filter ``carinho/dlq=open`` lists exactly ``GET /api/dlq`` — a successful run,
  a re-execution included, carries no DLQ or error tag;
* every run says who launched it (``carinho/launched_by``);
* an open circuit breaker degrades ``/health/detailed`` and holds retries (409) unless
  forced; the re-drive sensor's ticks say what it did.
"""

from __future__ import annotations

import datetime as dt
import time

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from carinho_pipelines.destinations import breakers
from carinho_pipelines.kernel import tags
from carinho_pipelines.platform import graphql_client
from carinho_pipelines.store import Envelope, utcnow
from tests.support import wait_for

KEY = {"X-API-Key": "e2e-ops-key"}
IN_PROGRESS = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]




def _lead_updated(stack, lead_id: int) -> int:
    resp = stack.post("/api/events", "crm", {"event_type": "lead.updated", "source_system": "crm",
                                             "payload": {"id": lead_id}})
    assert resp.status_code == 202, resp.text
    return resp.json()["event_id"]


def _runs_of(instance, event_id: int):
    return sorted(instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: str(event_id)})),
                  key=lambda r: r.tags.get(tags.PARENT_RUN_ID) is not None)


def _api_dlq_ids(stack) -> set[str]:
    ids, page = set(), 1
    while True:
        body = stack.http.get("/api/dlq", params={"per_page": 100, "page": page}, headers=KEY).json()
        ids |= {i["id"] for i in body["data"]}
        if page * 100 >= body["meta"]["total"]:
            return ids
        page += 1


def _item_of(stack, event_id: int) -> dict:
    return wait_for(lambda: next((i for i in stack.http.get("/api/dlq", params={"per_page": 100}, headers=KEY).json()["data"]
                               if i["event_id"] == event_id), None), what=f"the DLQ item of event {event_id}")


def test_the_ui_dlq_filter_lists_exactly_the_api_dlq_and_runs_say_who_launched_them(stack):
    stack.wait_webserver()
    ok = _lead_updated(stack, 7001)
    assert stack.wait_status(ok, {"succeeded", "failed"})["status"] == "succeeded"
    stack.sb.fail("crm", status=422, count=2)
    by_api, by_ui = _lead_updated(stack, 7002), _lead_updated(stack, 7003)
    for event_id in (by_api, by_ui):
        assert stack.wait_status(event_id, {"failed"})["status"] == "failed"
    api_item, ui_item = _item_of(stack, by_api), _item_of(stack, by_ui)
    # an event the sensor dispatches (not submitted by the relay)
    sensed = stack.store.ingest(Envelope("lead.updated", "crm", "e2e:sensed:7004", "integrations", {"id": 7004},
                                         utcnow())).event_id

    with DagsterInstance.from_config(str(stack.home)) as instance:
        [ok_run] = _runs_of(instance, ok)
        assert not set(tags.FAILURE_TAGS) & set(ok_run.tags)  # no carinho/dlq, no empty error chips
        assert ok_run.tags[tags.LAUNCHED_BY] == "relay"
        failed = instance.get_run_by_id(api_item["id"])
        assert failed.tags[tags.DLQ] == "open" and failed.tags[tags.ERROR_CLASS] == "invalid"
        assert failed.tags[tags.FAILED_OPS] == "forward_crm" and failed.tags[tags.LAUNCHED_BY] == "relay"

        # retried through the API, and from the UI (Re-execute → From failure copies the parent's tags)
        retried = stack.http.post(f"/api/dlq/{api_item['id']}/retry", headers=KEY)
        assert retried.status_code == 202, retried.text
        ui_child = graphql_client.launch_reexecution(ui_item["id"], {}, use_parent_run_tags=True)
        assert instance.get_run_by_id(ui_child).tags[tags.DLQ] == "open"  # what the UI copied
        for event_id in (by_api, by_ui, sensed):
            assert stack.wait_status(event_id, {"succeeded"})["status"] == "succeeded"

        api_child = instance.get_run_by_id(retried.json()["new_run_id"])
        assert not set(tags.FAILURE_TAGS) & set(api_child.tags)
        assert api_child.tags[tags.LAUNCHED_BY] == "api:e2e" and api_child.tags[tags.QUEUE] == "integrations-retry"
        # the re-drive sensor removes what the UI re-execution copied once it succeeded,
        # marks its parent replayed and says the UI launched it
        wait_for(lambda: not set(tags.FAILURE_TAGS) & set(instance.get_run_by_id(ui_child).tags), 60,
              "the UI re-execution's copied DLQ tags to be removed")
        wait_for(lambda: instance.get_run_by_id(ui_child).tags.get(tags.LAUNCHED_BY) == "dagster_ui", 60,
              "the UI re-execution to be attributed to the UI")
        wait_for(lambda: instance.get_run_by_id(ui_item["id"]).tags[tags.DLQ] == "replayed", 60,
              "the UI re-execution's parent to be marked replayed")  # tagged after the attribution, not with it
        assert instance.get_run_by_id(api_item["id"]).tags[tags.DLQ] == "replayed"
        [sensed_run] = _runs_of(instance, sensed)
        assert sensed_run.tags[tags.LAUNCHED_BY] == "dispatch_sensor"

        # the UI's filter tag:carinho/dlq=open, with no status filter, is the API's DLQ
        wait_for(lambda: not instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS), limit=1), 120, "runs to finish")

        def ui_filter() -> set[str]:
            return {r.run_id for r in instance.get_runs(filters=RunsFilter(tags={tags.DLQ: "open"}))}

        wait_for(lambda: ui_filter() == _api_dlq_ids(stack), 30, "the UI filter and GET /api/dlq to agree")
        assert ui_filter() == _api_dlq_ids(stack)
        assert api_item["id"] not in ui_filter() and ok_run.run_id not in ui_filter()
        # …and every run the filter lists is a failure
        assert all(r.status == DagsterRunStatus.FAILURE
                   for r in instance.get_runs(filters=RunsFilter(tags={tags.DLQ: "open"})))


TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 40) { status skipReason runIds timestamp } } }
  }
}
"""


def _redrive_ticks() -> list[dict]:
    """The re-drive sensor's ticks as the Dagster UI reads them (GraphQL)."""
    location, repository = graphql_client.find_job("event_lead_updated")
    selector = {"repositoryLocationName": location, "repositoryName": repository, "sensorName": "dlq_redrive_sensor"}
    result = graphql_client.query(TICKS, {"selector": selector})["sensorOrError"]
    assert result["__typename"] == "Sensor", result
    return result["sensorState"]["ticks"]


def _tick_saying(text: str, since: float) -> dict:
    return wait_for(lambda: next((t for t in _redrive_ticks() if t["timestamp"] >= since and text in (t["skipReason"] or "")),
                              None), 90, f"a dlq_redrive_sensor tick saying {text!r}")


def test_an_open_breaker_degrades_health_holds_retries_and_the_redrive_tick_says_what_it_did(stack):
    stack.wait_webserver()
    started = time.time()
    stack.sb.down("crm")
    try:
        # the CRM kept failing: its breaker is open, for a minute from now (the suite's
        # breakers half-open after 3 s, too short to look at)
        for _ in range(breakers.FAILURE_THRESHOLD):
            breakers.record_failure(stack.store, "crm", utcnow() + dt.timedelta(seconds=60))
        event_id = _lead_updated(stack, 7201)
        assert stack.wait_status(event_id, {"failed"})["status"] == "failed"
        item = _item_of(stack, event_id)
        assert item["error_class"] == "unavailable" and item["failed_ops"] == ["forward_crm"]

        health = stack.http.get("/health/detailed")
        assert health.status_code == 503
        assert "breaker:crm" in health.json()["degraded"] and health.json()["breakers"]["crm"] == "open"

        held = stack.http.post(f"/api/dlq/{item['id']}/retry", headers=KEY)
        assert held.status_code == 409, held.text
        body = held.json()
        assert body["error"] == "breaker_open" and body["breakers"] == {"crm": "open"} and body["auto_redrive"] is True
        assert dt.datetime.fromisoformat(body["redrive_after"]) > utcnow() + dt.timedelta(seconds=30)
        assert "crm" in body["message"] and "force" in body["message"]
        every = stack.http.post("/api/dlq/retry-all", headers=KEY,
                                json={"event_type": "lead.updated", "error_class": "unavailable", "limit": 10})
        assert every.status_code == 202, every.text
        assert item["id"] in [h["id"] for h in every.json()["held_by_breaker"]]
        assert item["id"] not in [r["id"] for r in every.json()["retried"]]
        _tick_saying("waiting for their destination: crm (breaker open, next probe from", started)

        # forced: launched now, fails fast on the open breaker, and is the new open item
        forced = stack.http.post(f"/api/dlq/{item['id']}/retry", json={"force": True}, headers=KEY)
        assert forced.status_code == 202, forced.text
        child = forced.json()["new_run_id"]
        child_item = wait_for(lambda: next((i for i in stack.http.get("/api/dlq", params={"per_page": 100}, headers=KEY)
                                         .json()["data"] if i["id"] == child), None), what="the forced retry to fail")
        assert child_item["error_class"] == "unavailable"
    finally:
        stack.sb.up("crm")
    breakers.record_success(stack.store, "crm")
    assert stack.http.get("/health/detailed").json()["breakers"]["crm"] == "closed"
    assert stack.wait_status(event_id, {"succeeded"}, timeout=150)["status"] == "succeeded"

    with DagsterInstance.from_config(str(stack.home)) as instance:
        runs = _runs_of(instance, event_id)
        redriven = next(r for r in runs if r.tags.get(tags.PARENT_RUN_ID) == child)
        assert redriven.tags[tags.LAUNCHED_BY] == "auto_redrive" and redriven.status == DagsterRunStatus.SUCCESS
        assert instance.get_run_by_id(child).tags[tags.LAUNCHED_BY] == "api:e2e"
    # the tick names what it re-drove (the UI shows it on the tick)
    _tick_saying(f"{child[:8]} → {redriven.run_id[:8]}", started)
