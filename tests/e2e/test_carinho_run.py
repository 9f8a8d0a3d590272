"""``carinho run``, as a new user runs it: the embedded default (SQLite, the embedded
Valkey broker, warm Celery workers, the sandbox) on free ports in a fresh data folder.
The demo's round finishes inside every SLA; a port in use, a dead component and a
worker killed mid-run each get the answer the README promises."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from carinho_sandbox.control import ControlClient
from carinho_sandbox.server import PORT_OFFSETS
from carinho_pipelines.supervisor import port_in_use
from tests.support import free_port

CARINHO = str(Path(sys.executable).with_name("carinho"))
SANDBOX_PORTS = len(PORT_OFFSETS) + 1  # the simulators, the control server, the mailbox


def _free_block(size: int) -> int:
    """The first of ``size`` consecutive free loopback ports."""
    for _ in range(200):
        base = free_port()
        if base + size < 65535 and not any(port_in_use(base + i) for i in range(size)):
            return base
    raise AssertionError("no block of free ports")


def _clean_env(data: Path) -> dict[str, str]:
    """The user's environment: none of the variables other tests point at their stacks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARINHO_", "DAGSTER_", "ZAPI_", "SMTP_"))}
    env["CARINHO_DATA_DIR"] = str(data)
    return env


class Hub:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.ports = {"--relay-port": free_port(), "--dagster-port": free_port(), "--code-server-port": free_port(),
                      "--broker-port": free_port(), "--sandbox-port": _free_block(SANDBOX_PORTS)}
        self.relay = f"http://127.0.0.1:{self.ports['--relay-port']}"
        self.control = f"http://127.0.0.1:{self.ports['--sandbox-port'] + PORT_OFFSETS['control']}"
        self.env = _clean_env(data)
        self.out = data / "carinho-run.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [CARINHO, "run", *(str(x) for kv in self.ports.items() for x in kv)]
        self.proc = subprocess.Popen(args, cwd=self.data, env=self.env, stdout=open(self.out, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything." not in self.output():
            assert self.proc.poll() is None, f"carinho run exited {self.proc.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"carinho run not up:\n{self.output()}"
            time.sleep(0.5)

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    @property
    def api_key(self) -> str:
        return (self.data / "api_key").read_text().strip()

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def child(self, needle: str) -> int:
        for pid in self.children():
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                return pid
        raise AssertionError(f"no child of carinho run runs {needle!r}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = Hub(tmp_path_factory.mktemp("carinho-run"))
    hub.start()
    yield hub
    hub.stop()


def test_the_summary_names_everything_a_user_needs(hub):
    text = hub.output()
    for component in ("broker", "code server", "relay", "Dagster webserver", "Dagster daemon",
                      "worker integrations-high", "worker integrations,notifications",
                      "worker integrations-low,integrations-retry"):
        assert re.search(rf"✓ {re.escape(component)}\s", text), component
    assert hub.api_key in text and "warm Celery workers" in text
    # the printed curl line posts a lead the relay accepts
    curl = next(line.strip() for line in text.splitlines() if line.strip().startswith("curl "))
    posted = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert '"event_id"' in posted.stdout, posted
    # quiet: Dagster's own warnings and run logs stay in the log files
    assert "Found a dagster instance configuration value" not in text
    assert "DEBUG" not in text and "Warning" not in text
    assert (hub.data / "logs" / "Dagster-daemon.log").stat().st_size > 0


def test_the_demo_round_finishes_inside_every_sla_with_no_escalation(hub):
    demo = subprocess.run([CARINHO, "sandbox", "demo", "--hub-url", hub.relay, "--control-url", hub.control,
                           "--wait", "150"], env=hub.env, cwd=hub.data, capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "8/8 passos aceitos" in demo.stdout and "ACIMA DO SLA" not in demo.stdout
    table = demo.stdout.split("por fila (segundos):")[1]
    assert "integrations-high" in table and "integrations " in table and "notifications" in table
    status = httpx.get(f"{hub.relay}/status", headers={"X-API-Key": hub.api_key}, timeout=10).json()
    assert status["status"] != "critical", status
    escalated = []
    for eml in (hub.data / "mailbox").glob("*.eml"):
        msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
        if {"dev@carinho.com.vc", "gestao@carinho.com.vc"} & {a.strip() for a in str(msg["To"]).split(",")}:
            escalated.append(str(msg["Subject"]))
    assert escalated == []


def test_a_worker_killed_mid_run_under_the_embedded_broker_is_redriven(hub):
    control = ControlClient(hub.control)
    http = httpx.Client(base_url=hub.relay, timeout=10, headers={"X-API-Key": hub.api_key})
    token = control.env()["CARINHO_SITE_TOKEN"]
    control.faults("crm", latency=8)
    try:
        resp = http.post("/webhooks/site/lead", json={"name": "Vera", "phone": "5511955554444"},
                         headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 202
        event_id = resp.json()["event_id"]
        deadline = time.monotonic() + 60
        while http.get(f"/api/events/{event_id}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
        worker = hub.child("integrations-high")
        pool = [int(p) for p in subprocess.run(["pgrep", "-P", str(worker)], capture_output=True,
                                               text=True).stdout.split()]
        assert pool
        for pid in pool:
            os.kill(pid, signal.SIGKILL)
    finally:
        control.clear_faults("crm")
    deadline = time.monotonic() + 240
    while (body := http.get(f"/api/events/{event_id}").json())["status"] != "succeeded":
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    statuses = [r["status"] for r in body["runs"]]
    assert "FAILURE" in statuses and statuses.count("SUCCESS") == 1, statuses
    assert hub.proc.poll() is None  # the worker replaced its pool processes; the hub stays up


def test_a_dead_component_stops_the_hub_with_its_name(hub):
    children = hub.children()
    os.kill(hub.child("carinho relay"), signal.SIGKILL)
    assert hub.proc.wait(timeout=90) != 0
    assert re.search(r"relay exited with status -9.*stopping the hub", hub.output())
    assert _gone(children), "a component outlived carinho run"


def _taken(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def test_a_port_in_use_is_one_line_and_a_non_zero_exit(tmp_path):
    for option in ("--relay-port", "--sandbox-port"):
        ports = Hub(tmp_path).ports  # every port free (the sandbox's a free block)
        port = ports[option] + (PORT_OFFSETS["crm"] if option == "--sandbox-port" else 0)
        with _taken(port):
            args = [CARINHO, "run", *(str(x) for kv in ports.items() for x in kv)]
            done = subprocess.run(args, env=_clean_env(tmp_path), cwd=tmp_path, capture_output=True, text=True,
                                  timeout=60)
        assert done.returncode != 0
        what = "relay" if option == "--relay-port" else "sandbox crm"
        assert done.stderr.strip() == f"port {port} ({what}) is in use; pass {option}", done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert not (tmp_path / "logs").exists()  # nothing was started


def test_a_broker_of_ones_own_replaces_the_embedded_one(tmp_path):
    """With CARINHO_CELERY_BROKER_URL set, the embedded broker's port is not needed (so
    not checked): the first port complained about is the sandbox's."""
    ports = Hub(tmp_path).ports
    with _taken(ports["--broker-port"]), _taken(ports["--sandbox-port"]):
        args = [CARINHO, "run", *(str(x) for kv in ports.items() for x in kv)]
        env = {**_clean_env(tmp_path), "CARINHO_CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
        done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert done.stderr.strip() == f"port {ports['--sandbox-port']} (sandbox zapi) is in use; pass --sandbox-port"
        env.pop("CARINHO_CELERY_BROKER_URL")
        done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.stderr.strip() == f"port {ports['--broker-port']} (embedded broker) is in use; pass --broker-port"


def test_an_unknown_run_launcher_is_refused(tmp_path):
    env = {**_clean_env(tmp_path), "CARINHO_RUN_LAUNCHER": "k8s"}
    done = subprocess.run([CARINHO, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "CARINHO_RUN_LAUNCHER must be one of celery, process" in done.stderr
