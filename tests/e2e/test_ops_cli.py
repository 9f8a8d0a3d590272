"""The ops CLI from a second terminal: `carinho dlq|events|sync|status` as a separate
process with only the hub's URL and an API key (no DAGSTER_HOME, no database URL),
answering what the API answers — tables, --json, the API's errors with a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance

from carinho_pipelines.kernel import tags
from tests.e2e.conftest import API_KEY, READER_KEY
from tests.support import wait_for

KEY = {"X-API-Key": API_KEY}
CARINHO = str(Path(sys.executable).with_name("carinho"))


def carinho(stack, *args: str, key: str | None = API_KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER", "CARINHO_", "ZAPI_", "SMTP_"))}  # a clean second terminal
    env["CARINHO_HUB_URL"] = stack.relay.url
    if key:
        env["CARINHO_API_KEY"] = key
    return subprocess.run([CARINHO, *args], env=env, capture_output=True, text=True, timeout=120, cwd="/")




def test_the_ops_cli_answers_what_the_api_answers(stack):
    stack.wait_webserver()
    stack.sb.fail("crm", status=422, count=1)
    resp = stack.post("/api/events", "crm", {"event_type": "lead.updated", "source_system": "crm", "payload": {"id": 7301}})
    event_id = resp.json()["event_id"]
    stack.wait_status(event_id, {"failed"})
    item = wait_for(lambda: next((i for i in stack.http.get("/api/dlq", params={"per_page": 100}, headers=KEY).json()["data"]
                               if i["event_id"] == event_id), None))

    listed = carinho(stack, "dlq", "list", "--type", "lead.updated")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:4] == ["ID", "STATUS", "CLASS", "WHAT"]
    row = next(line for line in listed.stdout.splitlines() if line.startswith(item["id"]))
    assert row.split()[1:4] == ["open", "invalid", "lead.updated"] and "forward_crm" in row
    as_json = carinho(stack, "dlq", "list", "--type", "lead.updated", "--json")
    api = stack.http.get("/api/dlq", params={"type": "lead.updated", "per_page": 50}, headers=KEY).json()
    assert json.loads(as_json.stdout) == api

    shown = carinho(stack, "dlq", "show", item["id"])
    assert shown.returncode == 0 and "error_class" in shown.stdout and "response of forward_crm:" in shown.stdout
    assert json.loads(carinho(stack, "dlq", "show", item["id"], "--json").stdout)["id"] == item["id"]

    # the API's errors, with its message and a non-zero exit
    unknown = carinho(stack, "dlq", "retry", "no-such-run")
    assert unknown.returncode == 1 and "HTTP 404 not_found: no DLQ item no-such-run" in unknown.stderr
    blank = carinho(stack, "dlq", "archive", item["id"], "--reason", " ")
    assert blank.returncode == 1 and "HTTP 422 validation_failed: reason: required" in blank.stderr
    forbidden = carinho(stack, "dlq", "retry", item["id"], key=READER_KEY)
    assert forbidden.returncode == 1 and "HTTP 403 forbidden" in forbidden.stderr and "dlq:write" in forbidden.stderr
    no_key = carinho(stack, "dlq", "list", key=None)
    assert no_key.returncode != 0 and "CARINHO_API_KEY" in no_key.stderr
    as_json_error = carinho(stack, "dlq", "show", "no-such-run", "--json")
    assert as_json_error.returncode == 1 and json.loads(as_json_error.stdout)["error"] == "not_found"

    retried = carinho(stack, "dlq", "retry", item["id"])
    assert retried.returncode == 0 and "re-executing as" in retried.stdout
    child = retried.stdout.split("re-executing as")[1].split()[0]
    again = carinho(stack, "dlq", "retry", item["id"])
    assert again.returncode == 0 and f"already re-executed as {child}" in again.stdout
    replayed = carinho(stack, "dlq", "archive", item["id"], "--reason", "x")
    assert replayed.returncode == 1 and "HTTP 409 conflict" in replayed.stderr and "replayed, not open" in replayed.stderr
    assert stack.wait_status(event_id, {"succeeded"})["status"] == "succeeded"
    with DagsterInstance.from_config(str(stack.home)) as instance:
        assert instance.get_run_by_id(child).tags[tags.LAUNCHED_BY] == "cli:e2e"

    events = carinho(stack, "events", "list", "--type", "lead.updated", "--per-page", "200")
    assert events.returncode == 0 and any(line.split()[:2] == [str(event_id), "lead.updated"]
                                          for line in events.stdout.splitlines())
    event = carinho(stack, "events", "show", str(event_id))
    assert event.returncode == 0 and "succeeded" in event.stdout and "forward_crm" in event.stdout
    assert carinho(stack, "events", "show", "999999999").returncode == 1

    syncs = carinho(stack, "sync", "list", "--json")
    assert {s["name"] for s in json.loads(syncs.stdout)["syncs"]} == {
        "crm_operacao", "operacao_financeiro", "crm_financeiro", "cuidadores_crm"}
    future = carinho(stack, "sync", "run", "operacao_financeiro", "--date", "2999-01-01")
    assert future.returncode == 1 and "HTTP 422 validation_failed: date:" in future.stderr
    unknown_sync = carinho(stack, "sync", "run", "nope")
    assert unknown_sync.returncode == 1 and "HTTP 404 unknown_sync" in unknown_sync.stderr

    status = carinho(stack, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("health: ") and "dlq_open" in status.stdout and "integrations-high" in status.stdout
    assert set(json.loads(carinho(stack, "status", "--json").stdout)) == {"health", "status"}
