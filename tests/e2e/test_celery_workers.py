"""Warm run workers (Celery): runs execute in worker processes; the broker down falls
back to a process per run; a worker killed mid-run is detected by run monitoring and
its run re-driven — never lost, never left "started"."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from carinho_pipelines.kernel import tags
from carinho_pipelines.platform.instance import celery_worker_commands, prepare_dagster_home
from carinho_pipelines.supervisor import celery_worker_answers
from tests.support import free_port, wait_for

PHONE = "5511977775555"


@pytest.fixture(scope="module")
def celery_stack(stack, tmp_path_factory):
    """The session's stack, switched to the Celery launcher with a broker of its own."""
    redis = shutil.which("redis-server")
    assert redis, "redis-server is required for the Celery tests"
    port = free_port()
    broker = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    stack.kill_daemon()
    stack.stop_webserver()
    stack.env["CARINHO_CELERY_BROKER_URL"] = url
    os.environ["CARINHO_CELERY_BROKER_URL"] = url  # this process reads the instance config too
    prepare_dagster_home(stack.home, postgres=True, celery=True)
    workers = [subprocess.Popen(cmd, cwd=str(Path(__file__).resolve().parents[2]), env=stack.env, stdout=stack.log,
                                stderr=subprocess.STDOUT, start_new_session=True)
               for cmd in celery_worker_commands()]
    stack.start_daemon()
    stack.start_webserver()
    stack.wait_webserver()
    stack.broker, stack.broker_port, stack.workers = broker, port, workers
    try:
        yield stack
    finally:
        for w in workers:
            try:
                os.killpg(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:  # the broker running now: a test may have replaced the first one
            os.killpg(stack.broker.pid, signal.SIGKILL)
            stack.broker.wait(timeout=10)
        except ProcessLookupError:
            pass
        stack.kill_daemon()
        stack.stop_webserver()
        stack.env.pop("CARINHO_CELERY_BROKER_URL")
        os.environ.pop("CARINHO_CELERY_BROKER_URL", None)
        prepare_dagster_home(stack.home, postgres=True, celery=False)
        stack.start_daemon()
        stack.start_webserver()


def _runs(stack, event_id):
    with DagsterInstance.from_config(str(stack.home)) as instance:
        return list(instance.get_runs(filters=RunsFilter(tags={tags.EVENT_ID: str(event_id)})))


def _event_types(stack, run_id):
    with DagsterInstance.from_config(str(stack.home)) as instance:
        return {record.event_log_entry.dagster_event.event_type_value
                for record in instance.get_records_for_run(run_id).records if record.event_log_entry.is_dagster_event}


def _engine_messages(stack, run_id, containing):
    with DagsterInstance.from_config(str(stack.home)) as instance:
        return [record.event_log_entry.message for record in instance.get_records_for_run(run_id).records
                if record.event_log_entry.dagster_event_type == DagsterEventType.ENGINE_EVENT
                and containing in record.event_log_entry.message]


def _finished(stack, run_id):
    with DagsterInstance.from_config(str(stack.home)) as instance:
        return instance.get_run_by_id(run_id).is_finished


def _lead(stack, name):
    resp = stack.post("/webhooks/site/lead", "site", {"name": name, "phone": PHONE})
    assert resp.status_code == 202
    return resp.json()["event_id"]


def test_runs_execute_in_warm_workers_and_fall_back_when_the_broker_is_down(celery_stack):
    stack = celery_stack
    event_id = _lead(stack, "Célia")
    assert stack.wait_status(event_id, {"succeeded", "failed"})["status"] == "succeeded"
    [run] = _runs(stack, event_id)
    assert run.tags["dagster-celery/queue"] == "integrations-high" and "dagster-celery/task_id" in run.tags
    # on warm workers an event run skips Dagster's run queue: launched as it was submitted
    assert "PIPELINE_ENQUEUED" not in _event_types(stack, run.run_id)
    assert "PIPELINE_STARTING" in _event_types(stack, run.run_id)
    # the launcher says once where it sent the run (one write on the launch path, not two)
    [sent] = _engine_messages(stack, run.run_id, "Celery")
    assert sent.endswith(f"Celery task {run.tags['dagster-celery/task_id']} sent to queue integrations-high.")

    # a run that is not an event's (here a window recovery, with nothing in its window)
    # still goes through the run queue and its limits
    resp = stack.http.post("/api/dlq/recover", headers={"X-API-Key": "e2e-ops-key"},
                           json={"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T00:01:00Z"})
    assert resp.status_code == 202, resp.text
    queued_run = resp.json()["run_id"]
    assert "PIPELINE_ENQUEUED" in _event_types(stack, queued_run)
    wait_for(lambda: _finished(stack, queued_run), timeout=120, what="the recovery dequeued and finished")
    assert "PIPELINE_STARTING" in _event_types(stack, queued_run)

    os.killpg(stack.broker.pid, signal.SIGKILL)
    stack.broker.wait(timeout=10)
    down_id = _lead(stack, "Dora")
    assert stack.wait_status(down_id, {"succeeded", "failed"}, timeout=150)["status"] == "succeeded"
    [run] = _runs(stack, down_id)
    assert "dagster-celery/task_id" not in run.tags  # launched in a fresh process instead


def test_a_worker_killed_mid_run_is_detected_and_the_run_redriven(celery_stack):
    stack = celery_stack
    redis = shutil.which("redis-server")
    stack.broker = subprocess.Popen([redis, "--port", str(stack.broker_port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    reconnected = celery_worker_answers(f"redis://127.0.0.1:{stack.broker_port}/0", "carinho-integrations-high.")
    deadline = time.monotonic() + 60
    while not reconnected():
        assert time.monotonic() < deadline, "the workers did not reconnect to the new broker"
        time.sleep(0.3)
    stack.sb.latency("crm", 8)
    crm_calls = len(stack.sb.calls("crm"))
    event_id = _lead(stack, "Eva")
    deadline = time.monotonic() + 60
    while len(stack.sb.calls("crm")) == crm_calls:  # the run is inside its first CRM call
        assert time.monotonic() < deadline, "the run never reached the CRM"
        time.sleep(0.1)
    high = stack.workers[0]  # the integrations-high worker: kill its pool processes mid-run
    children = subprocess.run(["pgrep", "-P", str(high.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    stack.sb.latency("crm", 0)
    body = stack.wait_status(event_id, {"succeeded"}, timeout=180)
    assert body["status"] == "succeeded"
    runs = _runs(stack, event_id)
    assert runs[-1].status.value in ("FAILURE", "SUCCESS") and len(runs) >= 2  # the killed run, then its re-drive
    assert any(r.status.value == "FAILURE" for r in runs)


def test_lower_priority_workers_yield_the_cpu_to_integrations_high(celery_stack):
    def niceness(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[16])

    high, integrations, low = (niceness(w.pid) for w in celery_stack.workers)
    assert high == 0 < integrations < low


def test_a_whole_worker_lost_mid_run_is_failed_by_run_monitoring_and_redriven(celery_stack):
    """The worker's parent dies with its pool (a container killed, an OOM of the main
    process): nobody reports the task, which stays STARTED in the result backend. The
    worker comes back under the same node name (a fixed ``CARINHO_WORKER_ID``, a pod's
    name), so the node answers, but it no longer holds the task: run monitoring must
    still fail the run, and the re-drive re-executes it; the event succeeds once."""
    stack = celery_stack
    stack.sb.latency("crm", 8)
    crm_calls = len(stack.sb.calls("crm"))
    event_id = _lead(stack, "Fia")
    deadline = time.monotonic() + 60
    while len(stack.sb.calls("crm")) == crm_calls:  # the run is inside its first CRM call
        assert time.monotonic() < deadline, "the run never reached the CRM"
        time.sleep(0.1)
    high = stack.workers[0]
    os.killpg(high.pid, signal.SIGKILL)  # the parent and its pool at once
    high.wait(timeout=10)
    stack.sb.latency("crm", 0)
    # the worker restarted, as a restart policy would, under the node name it had
    same_name = {**stack.env, "CARINHO_WORKER_ID": stack.env.get("CARINHO_WORKER_ID") or str(high.pid)}
    stack.workers[0] = subprocess.Popen(celery_worker_commands()[0], cwd=str(Path(__file__).resolve().parents[2]),
                                        env=same_name, stdout=stack.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
    body = stack.wait_status(event_id, {"succeeded"}, timeout=240)
    assert body["status"] == "succeeded"
    runs = _runs(stack, event_id)
    assert [r.status.value for r in runs].count("SUCCESS") == 1 and any(r.status.value == "FAILURE" for r in runs)
    assert not [r for r in runs if r.status.value in ("STARTED", "STARTING", "QUEUED")]
    [lost] = [r for r in runs if r.status.value == "FAILURE"]
    with DagsterInstance.from_config(str(stack.home)) as instance:
        messages = [r.event_log_entry.message for r in instance.get_records_for_run(lost.run_id).records]
    assert any("answers but no longer runs it" in (m or "") for m in messages), messages[-3:]
