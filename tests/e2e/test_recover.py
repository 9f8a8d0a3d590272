"""Recover a window on the real stack: a dry run counts, a real recovery re-executes each
item once (oldest first) as one visible run, and an overlapping second recovery re-runs
nothing."""

from __future__ import annotations

import datetime as dt

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from carinho_pipelines.kernel import tags
from carinho_pipelines.store import utcnow
from tests.e2e.conftest import API_KEY
from tests.support import wait_for

KEY = {"X-API-Key": API_KEY}


def _open_items(stack, event_ids):
    data = stack.http.get("/api/dlq", params={"per_page": 100}, headers=KEY).json()["data"]
    return {i["event_id"]: i for i in data if i["event_id"] in event_ids}


def test_recover_a_window_dry_run_then_for_real_then_an_overlapping_one_that_reruns_nothing(stack):
    stack.wait_webserver()
    since = utcnow() - dt.timedelta(seconds=5)
    stack.sb.fail("financeiro", status=422, count=3)
    ids = {stack.post("/webhooks/crm/client-registered", "crm",
                      {"id": 430 + n, "name": "Caio", "phone": f"551197000{n:04d}"}).json()["event_id"] for n in range(3)}
    for event_id in ids:
        assert stack.wait_status(event_id, {"failed", "succeeded"})["status"] == "failed"
    items = wait_for(lambda: (found := _open_items(stack, ids)) and len(found) == 3 and found)
    window = {"from": since.isoformat(), "to": (utcnow() + dt.timedelta(seconds=1)).isoformat(),
              "destination": "financeiro"}

    dry = stack.http.post("/api/dlq/recover", json={**window, "dry_run": True}, headers=KEY)
    assert dry.status_code == 200, dry.text
    assert dry.json()["count"] == 3 and dry.json()["dry_run"] is True
    item_ids = {i["id"] for i in items.values()}
    assert dry.json()["oldest"]["id"] in item_ids and dry.json()["newest"]["id"] in item_ids
    assert dry.json()["oldest"]["created_at"] <= dry.json()["newest"]["created_at"]
    none = stack.http.post("/api/dlq/recover", json={**window, "destination": "marketing", "dry_run": True},
                           headers=KEY).json()
    assert none["count"] == 0 and none["oldest"] is None

    first = stack.http.post("/api/dlq/recover", json=window, headers=KEY)
    second = stack.http.post("/api/dlq/recover", json=window, headers=KEY)  # overlapping
    assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
    recoveries = [first.json()["run_id"], second.json()["run_id"]]
    with DagsterInstance.from_config(str(stack.home)) as instance:
        wait_for(lambda: all(instance.get_run_by_id(r).status == DagsterRunStatus.SUCCESS for r in recoveries),
                 timeout=120, what="both recoveries to finish")
        for item in items.values():  # each item re-executed exactly once
            children = instance.get_runs(filters=RunsFilter(tags={tags.PARENT_RUN_ID: item["id"]}))
            assert len(children) == 1, item["id"]
            assert children[0].tags[tags.LAUNCHED_BY] == tags.BY_RECOVERY
        launched = []
        for run_id in recoveries:
            [materialized] = [e for e in instance.all_logs(run_id) if e.dagster_event
                              and e.dagster_event.event_type_value == "STEP_OUTPUT"]
            meta = materialized.dagster_event.step_output_data.metadata
            launched.append(meta["launched"].value)
        assert sum(launched) == 3  # between them, the two recoveries launched each item once
    for event_id in ids:
        assert stack.wait_status(event_id, {"succeeded"})["status"] == "succeeded"
