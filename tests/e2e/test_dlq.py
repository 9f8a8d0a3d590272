"""The DLQ end to end: failed runs listed, retried from failure through Dagster's
GraphQL (as the UI's button does), archived; an outage opens the destination's
breaker and the failed events are re-driven automatically once it is back."""


import sqlalchemy as sa
from dagster import DagsterInstance

from carinho_pipelines.store.tables import audit_log
from tests.support import wait_for

KEY = {"X-API-Key": "e2e-ops-key"}
PHONE = "5511988887777"


def _calls(stack, system, path):
    return [c for c in stack.sb.calls(system) if c["method"] == "POST" and c["path"] == path]


def _dlq(stack, **params):
    resp = stack.http.get("/api/dlq", params=params, headers=KEY)
    assert resp.status_code == 200, resp.text
    return resp.json()




def _client(stack, client_id):
    resp = stack.post("/webhooks/crm/client-registered", "crm",
                      {"id": client_id, "name": "Bia", "phone": PHONE, "cpf": "12345678900"})
    assert resp.status_code == 202
    return resp.json()["event_id"]


def test_failed_run_is_listed_retried_from_failure_and_leaves_the_dlq(stack):
    stack.wait_webserver()
    stack.sb.fail("financeiro", status=422, count=1)
    event_id = _client(stack, 501)
    assert stack.wait_status(event_id, {"failed", "succeeded"})["status"] == "failed"
    item = wait_for(lambda: next((i for i in _dlq(stack)["data"] if i["event_id"] == event_id), None))
    assert item["kind"] == "event" and item["event_type"] == "client.registered" and item["source"] == "crm"
    assert item["failed_ops"] == ["financeiro_billing_setup"] and item["error_class"] == "invalid"
    assert item["status"] == "open" and item["queue"] == "integrations" and item["run_url"].endswith(item["id"])
    detail = stack.http.get(f"/api/dlq/{item['id']}", headers=KEY).json()
    assert detail["payload"]["cpf"] != "12345678900"  # masked
    assert detail["responses"]["financeiro_billing_setup"]["status"] == 422
    assert {a["action"]: a["status"] for a in detail["actions"]}["whatsapp_welcome"] == "succeeded"
    sent_before = len(stack.sb.zapi.sent())

    retried = stack.http.post(f"/api/dlq/{item['id']}/retry", headers=KEY)
    assert retried.status_code == 202, retried.text
    child = retried.json()["new_run_id"]
    again = stack.http.post(f"/api/dlq/{item['id']}/retry", headers=KEY)
    assert again.status_code == 200 and again.json() == {**retried.json(), "already_replayed": True}
    assert stack.wait_status(event_id, {"succeeded"})["status"] == "succeeded"
    with DagsterInstance.from_config(str(stack.home)) as instance:
        run = instance.get_run_by_id(child)
        assert run.parent_run_id == item["id"] and run.tags["carinho/queue"] == "integrations-retry"
        assert instance.get_run_by_id(item["id"]).tags["carinho/dlq"] == "replayed"
    # only the failed op ran again
    assert [c["status"] for c in _calls(stack, "financeiro", "/api/billing/setup")][-2:] == [422, 201]
    assert len(stack.sb.zapi.sent()) == sent_before
    assert all(i["id"] != item["id"] for i in _dlq(stack)["data"])
    with stack.store.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action, audit_log.c.target)).all()
    assert ("dlq.retry", item["id"]) in actions


def test_archive_needs_a_reason_and_hides_the_item(stack):
    stack.wait_webserver()
    stack.sb.fail("financeiro", status=400, count=1)
    event_id = _client(stack, 502)
    stack.wait_status(event_id, {"failed"})
    item = wait_for(lambda: next((i for i in _dlq(stack)["data"] if i["event_id"] == event_id), None))
    assert stack.http.post(f"/api/dlq/{item['id']}/archive", json={}, headers=KEY).status_code == 422
    assert stack.http.post(f"/api/dlq/{item['id']}/archive", json={"reason": "x"}).status_code == 401
    resp = stack.http.post(f"/api/dlq/{item['id']}/archive", json={"reason": "cliente duplicado no CRM"}, headers=KEY)
    assert resp.status_code == 200
    assert all(i["id"] != item["id"] for i in _dlq(stack)["data"])
    archived = [i for i in _dlq(stack, include_archived="true")["data"] if i["id"] == item["id"]]
    assert archived[0]["status"] == "archived" and archived[0]["archived"]["reason"] == "cliente duplicado no CRM"
    assert stack.event(event_id)["status"] == "archived"
    stats = stack.http.get("/api/dlq/stats", headers=KEY).json()
    assert stats["archived"] >= 1


def test_outage_opens_the_breaker_and_failed_events_are_redriven_when_back(stack):
    stack.wait_webserver()
    stack.sb.down("financeiro")
    try:
        first = _client(stack, 601)
        stack.wait_status(first, {"failed"})
        health = stack.http.get("/health/detailed").json()
        assert health["breakers"]["financeiro"] == "open"
        item = wait_for(lambda: next((i for i in _dlq(stack, error_class="unavailable")["data"] if i["event_id"] == first), None))
        assert item["failed_ops"] == ["financeiro_billing_setup"]
        more = [_client(stack, 602 + i) for i in range(2)]
        for event_id in more:
            body = stack.wait_status(event_id, {"failed"})
            [action] = [a for a in body["actions"] if a["action"] == "financeiro_billing_setup"]
            assert action["error_class"] == "unavailable"
            assert "circuit open" in action["error_message"]  # failed fast: no retries held the run's slot
    finally:
        stack.sb.up("financeiro")
    for event_id in [first, *more]:
        assert stack.wait_status(event_id, {"succeeded"}, timeout=150)["status"] == "succeeded"
    assert wait_for(lambda: stack.http.get("/health/detailed").json()["breakers"]["financeiro"] == "closed", timeout=30)
    # each client's billing setup went through exactly once after the outage
    setups = [c for c in _calls(stack, "financeiro", "/api/billing/setup") if c["status"] == 201]
    assert sorted(c["json"]["crm_client_id"] for c in setups if c["json"]["crm_client_id"] >= 601) == [601, 602, 603]


def test_a_run_that_failed_after_its_last_op_is_redriven_without_calling_anything_again(stack):
    """A run can fail after every op succeeded (its run-success event not written while
    PostgreSQL restarts, its worker killed right then; run monitoring fails it). Dagster
    finds nothing to re-execute *from failure* in it, so the re-drive runs every op
    again and the ledger skips each action already done: the event ends succeeded and
    no system is called twice."""
    stack.wait_webserver()
    event_id = _client(stack, 701)
    done = stack.wait_status(event_id, {"succeeded"})
    setups = len(_calls(stack, "financeiro", "/api/billing/setup"))
    sent = len(stack.sb.zapi.sent())
    with DagsterInstance.from_config(str(stack.home)) as instance:
        run = instance.get_run_by_id(done["run_id"])
        instance.report_run_failed(run, "the run worker died after its last op (test)")
        assert instance.get_run_by_id(run.run_id).status.value == "FAILURE"
    # the re-drive sensor ticks every 5 s here, so the item may be open for a moment only:
    # wait for its outcome, then read the item itself (open or replayed)
    children = wait_for(lambda: [r for r in stack.event(event_id)["runs"]
                                 if r["parent_run_id"] == run.run_id and r["status"] == "SUCCESS"],
                        timeout=180, what=f"the re-drive's run succeeded (daemon log: {stack.home / 'daemon.log'})")
    assert len(children) == 1
    item = stack.http.get(f"/api/dlq/{run.run_id}", headers=KEY).json()
    assert item["error_class"] == "unavailable" and item["failed_ops"] == []
    assert item["status"] == "replayed" and [r["run_id"] for r in item["replays"]] == [children[0]["run_id"]]
    assert stack.wait_status(event_id, {"succeeded"})["status"] == "succeeded"
    assert len(_calls(stack, "financeiro", "/api/billing/setup")) == setups
    assert len(stack.sb.zapi.sent()) == sent
