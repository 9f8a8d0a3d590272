"""DLQ: scopes enforced, retry-all retries only what matches, a failed sync run is an
item like any other (retried from failure, nothing written twice)."""


from tests.e2e.conftest import READER_KEY
from tests.support import wait_for

KEY = {"X-API-Key": "e2e-ops-key"}
READER = {"X-API-Key": READER_KEY}


def _items(stack, **params):
    return stack.http.get("/api/dlq", params={"per_page": 100, **params}, headers=KEY).json()["data"]




def test_scopes_and_retry_all_with_a_filter(stack):
    stack.wait_webserver()
    stack.sb.fail("crm", status=422, count=1)
    updated = stack.post("/webhooks/systems/crm", "crm", {"event_type": "lead.updated", "id": 31}).json()["event_id"]
    stack.wait_status(updated, {"failed"})
    stack.sb.fail("cuidadores", status=422, count=1)
    assigned = stack.post("/webhooks/systems/operacao", "operacao",
                          {"event_type": "caregiver.assigned", "service_id": 5, "caregiver_id": 3}).json()["event_id"]
    stack.wait_status(assigned, {"failed"})
    mine = wait_for(lambda: [i for i in _items(stack) if i["event_id"] in (updated, assigned)]
                 if len([i for i in _items(stack) if i["event_id"] in (updated, assigned)]) == 2 else None)

    assert stack.http.get("/api/dlq").status_code == 401
    assert stack.http.get("/api/dlq", headers=READER).status_code == 200
    for path in (f"/api/dlq/{mine[0]['id']}/retry", "/api/dlq/retry-all"):
        resp = stack.http.post(path, json={"limit": 1}, headers=READER)
        assert resp.status_code == 403 and resp.json()["scope"] == "dlq:write"
    assert stack.http.post("/api/dlq/retry-all", json={}, headers=KEY).status_code == 422  # limit is required

    resp = stack.http.post("/api/dlq/retry-all", json={"event_type": "lead.updated", "limit": 10}, headers=KEY)
    assert resp.status_code == 202
    retried = {r["id"] for r in resp.json()["retried"]}
    updated_item = next(i for i in mine if i["event_id"] == updated)
    assert updated_item["id"] in retried
    assert stack.wait_status(updated, {"succeeded"})["status"] == "succeeded"
    assert stack.event(assigned)["status"] == "failed"  # not matched by the filter: still waiting for a person
    assert any(i["event_id"] == assigned for i in _items(stack))


def test_a_failed_sync_run_is_a_dlq_item_retried_from_failure(stack):
    stack.wait_webserver()
    stack.sb.fail("financeiro", status=422, count=1)
    resp = stack.http.post("/api/sync/crm_financeiro/run", headers=KEY)
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["run_id"]
    item = wait_for(lambda: next((i for i in _items(stack, kind="sync") if i["id"] == run_id), None), timeout=150)
    assert item["sync"] == "crm_financeiro" and item["kind"] == "sync" and item["error_class"] == "invalid"
    assert item["queue"] == "integrations-low"
    retry = stack.http.post(f"/api/dlq/{run_id}/retry", headers=KEY)
    assert retry.status_code == 202
    child = retry.json()["new_run_id"]

    def child_done():
        listed = stack.http.get("/api/sync", params={"sync": "crm_financeiro"}, headers=KEY).json()["syncs"][0]["runs"]
        return next((r for r in listed if r["run_id"] == child and r["status"] in ("SUCCESS", "FAILURE")), None)

    assert wait_for(child_done, timeout=150)["status"] == "SUCCESS"
    setups = [c for c in stack.sb.calls("financeiro") if c["method"] == "POST" and c["path"] == "/api/billing/setup"
              and c["status"] == 201 and c["json"].get("crm_contract_id") in (701, 702)]
    assert sorted(c["json"]["crm_contract_id"] for c in setups) == [701, 702]  # each written once
    assert all(i["id"] != run_id for i in _items(stack))
