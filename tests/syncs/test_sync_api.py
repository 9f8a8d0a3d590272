"""``GET /api/sync`` and ``POST /api/sync/{name}/run`` end to end: the relay on a real port,
a real ``dagster-webserver`` (GraphQL) on the syncs' code location, the instance on disk.

No daemon runs here, so a launched run stays QUEUED: exactly the state the 409 is about.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from starlette.routing import Route

from carinho_pipelines import syncs
from carinho_pipelines.platform.instance import prepare_dagster_home
from relay import sync_api
from carinho_pipelines.store.apikeys import create_key
from relay.app import create_app
from carinho_pipelines.store.migrate import upgrade
from carinho_pipelines.store import EventStore
from carinho_pipelines.store.tables import audit_log
from tests.support import ServerThread, free_port
from tests.syncs import location
from tests.syncs.conftest import FAST, today

REPO = Path(__file__).resolve().parents[2]
KEYS: dict[str, str] = {}


@pytest.fixture(scope="module")
def dagster_env(tmp_path_factory, running_sandbox, hub_db) -> Iterator[dict[str, str]]:
    home = prepare_dagster_home(tmp_path_factory.mktemp("dagster_home"), postgres=False)
    workspace = home / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.syncs.location\n"
        f"      working_directory: {REPO}\n      location_name: syncs_test\n"
    )
    port = free_port()
    env = {**os.environ, **running_sandbox.env(), "DAGSTER_HOME": str(home), "CARINHO_DATABASE_URL": hub_db}
    log = open(home / "webserver.log", "wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
         "-w", str(workspace)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dagster-webserver did not start: " + (home / "webserver.log").read_text()[-2000:])
            time.sleep(0.3)
        yield {"DAGSTER_HOME": str(home), "CARINHO_DAGSTER_GRAPHQL_URL": f"{url}/graphql",
               "CARINHO_DATABASE_URL": hub_db, **running_sandbox.env()}
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture()
def relay(dagster_env, tmp_path, monkeypatch, hub) -> Iterator[httpx.Client]:
    for key, value in dagster_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CARINHO_API_KEYS", raising=False)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    upgrade(url)
    store = EventStore(url)
    KEYS["ops"] = create_key(store, "ops", ["sync:read", "sync:run"])
    KEYS["reader"] = create_key(store, "reader", ["sync:read"])
    app = create_app(store)
    if not any(getattr(r, "path", None) == "/api/sync" for r in app.router.routes):
        app.router.routes.extend([
            Route("/api/sync", sync_api.list_syncs, methods=["GET"]),
            Route("/api/sync/{name}/run", sync_api.run_sync, methods=["POST"]),
        ])
    server = ServerThread(app).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.store = store  # type: ignore[attr-defined]
        yield client
    server.stop()
    store.engine.dispose()


def ops(**headers: str) -> dict[str, str]:
    return {"X-API-Key": KEYS["ops"], **headers}


def test_manual_run_is_queued_once_and_listed(relay, dagster_env):
    instance = sync_api.instance()

    assert relay.post("/api/sync/crm_operacao/run").status_code == 401
    forbidden = relay.post("/api/sync/crm_operacao/run", headers={"X-API-Key": KEYS["reader"]})
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    unknown = relay.post("/api/sync/full/run", headers=ops())
    assert unknown.status_code == 404 and "crm_operacao" in unknown.json()["known"]

    started = relay.post("/api/sync/crm_operacao/run", headers=ops())
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    run = instance.get_run_by_id(run_id)
    assert run.job_name == "crm_operacao" and run.status.value == "QUEUED"
    assert run.tags["carinho/sync"] == "crm_operacao" and run.tags["carinho/queue"] == "integrations-low"
    assert run.tags["carinho/trigger"] == "manual" and run.tags["carinho/requested_by"] == "ops"

    again = relay.post("/api/sync/crm_operacao/run", headers=ops())
    assert again.status_code == 409 and again.json()["run_id"] == run_id

    listed = relay.get("/api/sync", headers={"Authorization": "Bearer " + KEYS["reader"]})
    assert listed.status_code == 200
    by_name = {s["name"]: s for s in listed.json()["syncs"]}
    assert set(by_name) == set(syncs.SYNC_NAMES)
    assert by_name["crm_operacao"]["running"] is True
    assert by_name["crm_operacao"]["runs"][0]["run_id"] == run_id
    assert by_name["crm_operacao"]["runs"][0]["trigger"] == "manual"
    with relay.store.engine.connect() as conn:  # type: ignore[attr-defined]
        audited = conn.execute(sa.select(audit_log.c.key_name, audit_log.c.action, audit_log.c.target)).all()
    assert ("ops", "sync.run", "crm_operacao") in [tuple(r) for r in audited]
    instance.delete_run(run_id)


def test_a_day_of_operacao_financeiro_can_be_run_by_date(relay):
    instance = sync_api.instance()
    day = (today().replace(day=1)).isoformat()
    assert relay.post("/api/sync/operacao_financeiro/run", headers=ops(), json={"date": "01/03/2026"}).status_code == 422
    assert relay.post("/api/sync/operacao_financeiro/run", headers=ops(), json={"date": "2999-01-01"}).status_code == 422
    before = relay.post("/api/sync/operacao_financeiro/run", headers=ops(), json={"date": "2025-12-31"})
    assert before.status_code == 422 and "from 2026-01-01 (CARINHO_GO_LIVE_DATE)" in before.json()["message"]
    assert relay.post("/api/sync/crm_operacao/run", headers=ops(), json={"date": day}).status_code == 422

    started = relay.post("/api/sync/operacao_financeiro/run", headers=ops(), json={"date": day})

    assert started.status_code == 202, started.text
    assert started.json()["partition"] == day
    run = instance.get_run_by_id(started.json()["run_id"])
    assert run.tags["dagster/partition"] == day
    assert run.tags["carinho/launched_by"] == "api:ops" and "carinho/dlq" not in run.tags
    instance.delete_run(started.json()["run_id"])


def test_listed_runs_carry_their_counts_and_failed_items(relay, hub):
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": [
        {"id": 801, "caregiver_id": 301, "changes": {"status": "active"}},
        {"id": 802, "caregiver_id": 302, "changes": {"status": "inactive"}},
    ]}})
    sb.fail("crm", status=422, count=1)  # the CRM rejects one of the two forwards
    job = location.job("cuidadores_crm")
    result = job.execute_in_process(instance=sync_api.instance(), raise_on_error=False,
                                    run_config={"ops": {"sync_cuidadores_crm": {"config": {**FAST, "concurrency": 1}}}})
    assert not result.success

    listed = relay.get("/api/sync", params={"sync": "cuidadores_crm"}, headers=ops())

    assert listed.status_code == 200
    [sync] = listed.json()["syncs"]
    run = next(r for r in sync["runs"] if r["run_id"] == result.run_id)
    assert run["status"] == "FAILURE" and run["dlq"] == "open"
    assert run["counts"]["read"] == 2 and run["counts"]["written"] == 1 and run["counts"]["failed"] == 1
    assert run["failed_items"] == ["801"]
    assert run["run_url"].endswith(f"/runs/{result.run_id}")
    assert relay.get("/api/sync", params={"sync": "nope"}, headers=ops()).status_code == 404


def test_the_relay_sync_table_matches_the_dagster_definitions():
    repo = location.defs.get_repository_def()
    schedules = {s.job_name: s.cron_schedule for s in repo.schedule_defs}
    assert {n: s["schedule"] for n, s in sync_api.SYNCS.items()} == {n: schedules[n] for n in syncs.SYNC_NAMES}
    for name in syncs.SYNC_NAMES:
        job = location.defs.resolve_job_def(name)
        assert sync_api.run_tags(name) == job.tags
        assert sync_api.SYNCS[name]["partitioned"] == (job.partitions_def is not None)
    from carinho_pipelines.syncs.operacao_financeiro import partitions

    from carinho_pipelines.kernel import settings

    assert partitions.start.date() == settings.go_live_date()


def test_relay_imports_no_dagster_to_start():
    code = "import sys, relay.sync_api, carinho_pipelines.platform.graphql_client; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
