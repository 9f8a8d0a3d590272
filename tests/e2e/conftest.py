"""The real thing: the relay on a port, the Dagster daemon (sensors, run queue,
launcher) as a subprocess on PostgreSQL storage, the simulators, a real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from dagster import DagsterInstance
from aiosmtpd.controller import Controller

from carinho_pipelines.destinations.limits import apply_pool_limits
from carinho_pipelines.platform.instance import prepare_dagster_home
from tests.support import REPO_ROOT
from carinho_sandbox import Sandbox
from relay.app import create_app
from carinho_pipelines.store.migrate import upgrade
from carinho_pipelines.store import EventStore
from tests.support import MailSink, ServerThread, free_port

API_KEY = "e2e-ops-key"
READER_KEY = "e2e-reader-key"


class Stack:
    def __init__(self, env: dict[str, str], home: Path, sandbox: Sandbox, relay: ServerThread, store: EventStore) -> None:
        self.env, self.home, self.sb, self.relay, self.store = env, home, sandbox, relay, store
        self.daemon: subprocess.Popen | None = None
        self.webserver: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=relay.url, timeout=10)
        self.log = open(home / "daemon.log", "ab")

    def start_daemon(self) -> None:
        exe = Path(sys.executable).with_name("dagster-daemon")
        self.daemon = subprocess.Popen(
            [str(exe), "run", "-w", str(REPO_ROOT / "workspace.yaml")],
            cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_webserver(self) -> None:
        exe = Path(sys.executable).with_name("dagster-webserver")
        port = self.env["CARINHO_DAGSTER_GRAPHQL_URL"].split(":")[2].split("/")[0]
        self.webserver = subprocess.Popen(
            [str(exe), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", port],
            cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_webserver(self, timeout: float = 120) -> None:
        url = self.env["CARINHO_DAGSTER_GRAPHQL_URL"].rsplit("/", 1)[0] + "/server_info"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("dagster-webserver did not start")

    def stop_webserver(self) -> None:
        if self.webserver and self.webserver.poll() is None:
            os.killpg(self.webserver.pid, signal.SIGTERM)
            self.webserver.wait(timeout=20)

    def kill_daemon(self) -> None:
        if self.daemon and self.daemon.poll() is None:
            os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(timeout=10)

    def post(self, path: str, system: str, json: dict, **headers) -> httpx.Response:
        return self.http.post(path, json=json, headers={"Authorization": f"Bearer {self.sb.token(system)}", **headers})

    def event(self, event_id: int) -> dict:
        resp = self.http.get(f"/api/events/{event_id}", headers={"X-API-Key": API_KEY})
        resp.raise_for_status()
        return resp.json()

    def wait_status(self, event_id: int, wanted: set[str], timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.event(event_id)
            if body["status"] in wanted:
                return body
            time.sleep(0.5)
        raise AssertionError(f"event {event_id} still {body.get('status')} after {timeout}s; daemon log: {self.home / 'daemon.log'}")


@pytest.fixture(scope="session")
def stack(pg_database, tmp_path_factory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("dagster_home")
    sink = MailSink()
    smtp_port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    sb = Sandbox(base_port=0).start()
    sb.seed_default()
    store_url = pg_database("carinho_e2e_events")
    upgrade(store_url)
    env = {
        **os.environ,
        **sb.env(),
        "CARINHO_DATABASE_URL": store_url,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_database("carinho_e2e_dagster"),
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_STARTTLS": "false",
        "CARINHO_FEEDBACK_SECRET": "e2e-secret",
        "CARINHO_API_KEYS": f"e2e:{API_KEY}:*;reader:{READER_KEY}:dlq:read,events:read",
        "CARINHO_DAGSTER_GRAPHQL_URL": f"http://127.0.0.1:{free_port()}/graphql",
        # a short breaker and re-drive cycle, so an outage and its recovery fit in a test
        "CARINHO_BREAKER_OPEN_SECONDS": "3",
        "CARINHO_REDRIVE_INTERVAL_SECONDS": "5",
        # the relay submits each run itself; a stale claim goes to the sensor after 5 s
        "CARINHO_DIRECT_SUBMIT": "true",
        "CARINHO_SUBMIT_CLAIM_SECONDS": "5",
        "CARINHO_PERSON_KEY_SECRET": "e2e-person-key-secret",
    }
    prepare_dagster_home(home, postgres=True)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            if os.environ.get(key) != value:
                mp.setenv(key, value)
        from relay import runs

        runs._instance = None
        with DagsterInstance.from_config(str(home)) as instance:  # what `carinho instance limits` does
            apply_pool_limits(instance)
        store = EventStore(store_url)
        relay = ServerThread(create_app(store)).start()
        sb.zapi.set_webhook(f"{relay.url}/webhooks/whatsapp?token={env['ZAPI_WEBHOOK_TOKEN']}")
        s = Stack(env, home, sb, relay, store)
        s.start_daemon()
        s.start_webserver()
        try:
            yield s
        finally:
            s.kill_daemon()
            s.stop_webserver()
            relay.stop()
            sb.stop()
            smtp.stop()
            runs._instance = None
