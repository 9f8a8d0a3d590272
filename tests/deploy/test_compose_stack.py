"""The single-host deployment, for real: the image and the local base images built, the
compose stack started on host networking (PostgreSQL, Redis, migrate, the code server,
the relay, the webserver, one daemon, three worker groups, the sandbox profile), one
webhook of each kind fanned out exactly once, then a burst of 200 with a worker killed,
Redis restarted and PostgreSQL restarted: every acknowledged event done, none twice, no
run left behind. Everything is removed at the end.

Part of ``make test`` (and so of ``.ci/run``, which installs Docker and starts its engine
first). It needs a Docker engine, as deploy/README.md shows how to start, and fails
(never skips) without one. About 5 minutes on a fresh machine, most of it the images'
builds and the fault burst's runs lost with the killed worker, which run monitoring
fails after its start timeout (60 s here, ``CARINHO_RUN_START_TIMEOUT_SECONDS``) so that
the re-drive runs them again.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from carinho_pipelines.kernel import tags
from tests.deploy.compose import WORKERS, ComposeStack, build_images, docker_available
from tests.support import wait_for

pytestmark = [pytest.mark.timeout(1500)]

#: event states that are final for this test (CONTRACTS §10)
DONE = {"succeeded", "filtered", "scheduled"}
UNFINISHED_RUNS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    why = docker_available()
    assert why is None, f"the compose smoke test needs a Docker engine (deploy/README.md): {why}"  # never skip
    started = time.monotonic()
    FIGURES.update(build_images())
    # the runs the killed worker and the Redis restart lose before they start are failed
    # after 60 s (180 s in production) and re-driven: the burst's longest wait
    s = ComposeStack(f"carinho-smoke-{os.getpid()}", tmp_path_factory.mktemp("compose"),
                     extra_env={"CARINHO_REDRIVE_INTERVAL_SECONDS": "5", "CARINHO_BREAKER_OPEN_SECONDS": "3",
                                "CARINHO_RUN_START_TIMEOUT_SECONDS": "60"})
    try:
        up = time.monotonic()
        s.up()
        FIGURES["stack_healthy"] = time.monotonic() - up + s.wait_healthy()
        yield s
    finally:
        s.down()
        left = s.leftovers()
        FIGURES["total"] = time.monotonic() - started
        print("\nsmoke figures (s):", {k: round(v, 1) for k, v in FIGURES.items()})
        assert left == {"containers": [], "volumes": [], "networks": []}, left


def test_the_image_is_non_root_with_a_healthcheck_and_no_sandbox(stack):
    info = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.User}}|{{json .Config.Healthcheck.Test}}|{{.Size}}",
                           stack.image], capture_output=True, text=True, check=True).stdout.strip()
    user, healthcheck, size = info.split("|")
    assert user == "10001" and "healthcheck.py" in healthcheck
    assert int(size) <= 600e6, f"{int(size) / 1e6:.0f} MB"
    probe = ("import importlib.util as u; print([m for m in ('carinho_pipelines.sandbox', 'carinho_sandbox', "
             "'aiosmtpd', 'pytest', 'schemathesis', 'carinho_pipelines.definitions', 'relay.app') if u.find_spec(m)])")
    found = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", stack.image, "-c", probe],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "['carinho_pipelines.definitions', 'relay.app']"
    assert stack.container("relay")["Config"]["User"] == "10001"
    # every hub container on the host's network, PostgreSQL and Redis on the stack's own ports
    assert {c["HostConfig"]["NetworkMode"] for c in stack.containers()} == {"host"}


def _post(http: httpx.Client, path: str, token: str, body: dict, **headers: str) -> int:
    resp = http.post(path, json=body, headers={"Authorization": f"Bearer {token}", **headers})
    assert resp.status_code == 202, (path, resp.status_code, resp.text)
    return resp.json()["event_id"]


def _event(http: httpx.Client, event_id: int) -> dict:
    resp = http.get(f"/api/events/{event_id}")
    resp.raise_for_status()
    return resp.json()


def _status(http: httpx.Client, event_id: int) -> str | None:
    """An event's status; None while the relay answers 503 (its database restarting: the
    answer to retry on). Any other error fails the test."""
    resp = http.get(f"/api/events/{event_id}")
    if resp.status_code == 503:
        assert resp.headers.get("Retry-After") and resp.json()["error"] == "store_unavailable", resp.text
        return None
    resp.raise_for_status()
    return resp.json()["status"]


def _unfinished_events(http: httpx.Client) -> list[int]:
    ids = []
    for status in ("received", "dispatched", "running"):
        ids += [e["id"] for e in http.get("/api/events", params={"status": status, "per_page": 200}).json()["data"]]
    return ids


def test_one_webhook_of_each_kind_reaches_each_system_exactly_once(stack):
    http = stack.http()
    control = stack.control
    ids = {
        "site lead": _post(http, "/webhooks/site/lead", stack.token("site"),
                           {"name": "Ana Lima", "phone": "(11) 98888-1001", "email": "ana@example.com",
                            "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "cuidado-idosos"}),
        "client registered": _post(http, "/webhooks/crm/client-registered", stack.token("crm"),
                                   {"id": 501, "name": "Bruno Reis", "phone": "5511988881002",
                                    "email": "bruno@example.com"}),
        "service completed": _post(http, "/webhooks/operacao/service-completed", stack.token("operacao"),
                                   {"id": 601, "client_id": 501, "client_name": "Bruno Reis",
                                    "client_phone": "5511988881002", "caregiver_id": 7, "caregiver_name": "Carla"}),
        "payment": _post(http, "/webhooks/financeiro/payment", stack.token("financeiro"),
                         {"id": 701, "status": "paid", "client_id": 501, "amount": 350.0}),
        "payout": _post(http, "/webhooks/financeiro/payout", stack.token("financeiro"),
                        {"id": 801, "caregiver_id": 7, "caregiver_name": "Carla", "caregiver_phone": "5511988881003",
                         "amount": 1200.0}),
        "caregiver feedback": _post(http, "/webhooks/cuidadores/feedback", stack.token("cuidadores"),
                                    {"service_id": 601, "rating": 5, "comment": "ótimo", "client_id": 501}),
        "system webhook": _post(http, "/webhooks/systems/operacao", stack.token("operacao"),
                                {"event_type": "service.started", "id": 602, "client_id": 501}),
        "canonical event": _post(http, "/api/events", stack.token("crm"),
                                 {"event_type": "client.updated", "source_system": "crm",
                                  "payload": {"id": 501, "name": "Bruno Reis"}}),
    }
    # WhatsApp: the phone side posts the callback to the relay (the simulator's webhook)
    before = {e["id"] for e in http.get("/api/events", params={"source": "whatsapp", "per_page": 200}).json()["data"]}
    resp = httpx.post(f"{control}/zapi/emit/received", json={"phone": "5511988881004", "text": "Olá, quero um orçamento"},
                      timeout=15)
    assert resp.status_code == 200, resp.text
    ids["whatsapp message"] = wait_for(
        lambda: next((e["id"] for e in http.get("/api/events", params={"source": "whatsapp", "per_page": 200}).json()["data"]
                      if e["id"] not in before and e["event_type"] == "whatsapp.inbound"), None),
        timeout=30, what="the WhatsApp callback stored")

    events = {}
    for kind, event_id in ids.items():
        events[kind] = wait_for(lambda: (b := _event(http, event_id))["status"] in DONE | {"failed"} and b,
                                timeout=120, what=f"{kind} done")
        assert events[kind]["status"] == "succeeded", (kind, [a for a in events[kind]["actions"]
                                                              if a["status"] != "succeeded"])
    # derived events too (WhatsApp delivery statuses, the lead of an unknown phone…)
    wait_for(lambda: not _unfinished_events(http), timeout=120, what="every event finished")

    calls = {system: httpx.get(f"{control}/systems/{system}/calls", timeout=15).json()["calls"]
             for system in ("crm", "operacao", "financeiro", "cuidadores", "atendimento", "marketing", "zapi")}
    keyed = collections.Counter(c["headers"].get("idempotency-key") for cs in calls.values() for c in cs
                                if 200 <= c["status"] < 300 and c["headers"].get("idempotency-key"))
    assert keyed and max(keyed.values()) == 1, [k for k, n in keyed.items() if n > 1]
    for kind, body in events.items():
        actions = [a for a in body["actions"] if a["status"] == "succeeded"]
        assert actions, (kind, body["actions"])
        for action in actions:
            key = f"carinho:{body['id']}:{action['action']}"
            if action["action"].startswith(("whatsapp_", "email_")) or not action.get("destination"):
                continue
            assert any(k.startswith(key) for k in keyed), (kind, key)
    sends = collections.Counter((c["json"] or {}).get("phone") + "|" + ((c["json"] or {}).get("message") or "")
                                for c in calls["zapi"] if c["method"] == "POST" and "/send-" in c["path"]
                                and 200 <= c["status"] < 300)
    assert sends and max(sends.values()) == 1, sends
    assert stack.runs_in(UNFINISHED_RUNS) == []


class Burst:
    """200 events posted by 8 senders, as the systems would: a 503 or a refused
    connection is retried (the event is not acknowledged until a 202)."""

    def __init__(self, stack: ComposeStack, total: int = 200) -> None:
        self.stack, self.total = stack, total
        self.acked: dict[int, tuple[str, str]] = {}  # event id -> (kind, phone or client id)
        self.lock = threading.Lock()
        self.retried = 0

    def one(self, i: int) -> None:
        if i % 10 < 6:
            kind, path, system = "lead", "/webhooks/site/lead", "site"
            ref = f"55119{7000000 + i:08d}"
            body = {"name": f"Burst {i}", "phone": ref}
        elif i % 10 < 9:
            kind, path, system = "client.updated", "/api/events", "crm"
            ref = str(9000 + i)
            body = {"event_type": "client.updated", "source_system": "crm", "idempotency_key": f"burst-{i}",
                    "payload": {"id": 9000 + i, "name": f"Cliente {i}"}}
        else:
            kind, path, system = "payout", "/webhooks/financeiro/payout", "financeiro"
            ref = str(8000 + i)
            body = {"id": 8000 + i, "caregiver_id": i, "caregiver_name": f"Cuidadora {i}", "amount": 100.0 + i}
        headers = {"Authorization": f"Bearer {self.stack.token(system)}"}
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=self.stack.relay, timeout=15) as http:
            while True:
                try:
                    resp = http.post(path, json=body, headers=headers)
                    if resp.status_code == 202:
                        with self.lock:
                            self.acked[resp.json()["event_id"]] = (kind, ref)
                        return
                    assert resp.status_code in (502, 503, 504), (resp.status_code, resp.text)
                except httpx.TransportError:
                    pass  # the relay itself is restarting: send the same event again (idempotent)
                assert time.monotonic() < deadline, f"event {i} never acknowledged"
                with self.lock:
                    self.retried += 1
                time.sleep(0.5)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def _unfinished_report(stack: ComposeStack, burst: Burst) -> str:
    """What an unfinished event's runs did last, and what the workers logged: enough to
    tell a lost task from a hung run when the test fails in CI."""
    http, parts = stack.http(), []
    for event_id in burst.acked:
        body = _event(http, event_id)
        if body["status"] == "succeeded":
            continue
        parts.append(f"event {event_id} {body['status']} actions={[(a['action'], a['status']) for a in body['actions']]}")
        parts += [stack.run_log(run["run_id"]) for run in body.get("runs") or [] if run.get("run_id")]
    parts += [stack.logs(worker, tail=60) for worker in WORKERS]
    return "\n".join(parts)


def _kill_main_process(stack: ComposeStack, service: str) -> None:
    """SIGKILL the container's main process from the host, as an OOM kill would; the
    restart policy brings the container back."""
    os.kill(stack.container(service)["State"]["Pid"], signal.SIGKILL)


def test_a_burst_survives_a_killed_worker_and_restarts_of_redis_and_postgres(stack):
    http = stack.http()
    burst = Burst(stack)
    started = time.monotonic()
    pool = ThreadPoolExecutor(8)
    futures = [pool.submit(burst.one, i) for i in range(burst.total)]
    faults = {}
    wait_for(lambda: burst.count() >= 40, timeout=120, what="40 events acknowledged", interval=0.1)
    restarts = stack.container("worker-high")["RestartCount"]
    _kill_main_process(stack, "worker-high")
    faults["worker killed"] = time.monotonic() - started
    wait_for(lambda: stack.container("worker-high")["RestartCount"] > restarts, timeout=60, what="worker restarted")
    wait_for(lambda: burst.count() >= 90, timeout=120, what="90 events acknowledged", interval=0.1)
    stack.compose("restart", "-t", "10", "redis")
    faults["redis restarted"] = time.monotonic() - started
    wait_for(lambda: burst.count() >= 140, timeout=120, what="140 events acknowledged", interval=0.1)
    stack.compose("restart", "-t", "10", "postgres")
    faults["postgres restarted"] = time.monotonic() - started
    for f in futures:
        f.result(timeout=400)
    pool.shutdown()
    FIGURES["burst_acknowledged"] = time.monotonic() - started
    assert len(burst.acked) == burst.total

    def all_done() -> bool:
        pending = [i for i in burst.acked if _status(http, i) != "succeeded"]
        return not pending
    try:
        # the slowest recovery: a run hung in its worker is killed at its queue's time limit
        # (integrations: 420 s, kernel/queues.py), failed by run monitoring and re-driven
        wait_for(all_done, timeout=600, what="every acknowledged event succeeded", interval=3)
    except AssertionError:
        statuses = collections.Counter(_event(http, i)["status"] for i in burst.acked)
        raise AssertionError(f"{statuses}; faults at {faults}\n{stack.health()}\n{_unfinished_report(stack, burst)}\n"
                             f"{stack.logs('daemon')}\n{stack.logs('webserver', tail=120)}") from None
    FIGURES["burst_done"] = time.monotonic() - started

    # none twice: one first run per event that was not cancelled as a second submission
    # (a re-execution, or a run of actions that waited for a busy destination, is not a
    # first run: it calls only what failed or waited), one CRM lead per phone
    first_runs = collections.Counter()
    for run in stack.runs_in(["SUCCESS", "FAILURE"]):
        run_tags = {t["key"]: t["value"] for t in run["tags"]}
        if run_tags.get(tags.LAUNCHED_BY) in tags.FIRST_RUN_LAUNCHERS and tags.PARENT_RUN_ID not in run_tags:
            first_runs[int(run_tags[tags.EVENT_ID])] += 1
    for event_id in burst.acked:
        assert first_runs[event_id] == 1, (event_id, _event(http, event_id)["runs"])
    leads = collections.Counter(lead.get("phone") for lead in stack.sandbox_state("crm")["leads"])
    burst_phones = {ref for kind, ref in burst.acked.values() if kind == "lead"}
    assert {p: leads[p] for p in burst_phones} == {p: 1 for p in burst_phones}
    wait_for(lambda: stack.runs_in(UNFINISHED_RUNS) == [], timeout=120, what="no run left queued or started")
    health = stack.health()
    assert all(health[s] == "healthy" for s in WORKERS + ("relay", "daemon", "webserver")), health
    print(f"\nburst: {burst.total} acknowledged after {burst.retried} retried posts; faults at "
          f"{ {k: round(v, 1) for k, v in faults.items()} }")
