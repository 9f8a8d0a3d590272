"""Fan-out fixtures: the sandbox, a real SMTP server, a migrated PostgreSQL store, the
resources as the hub builds them, and a temporary Dagster instance."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from dagster import DagsterInstance

from carinho_pipelines.events import whatsapp_outbox
from carinho_pipelines.events.jobs import EVENT_JOBS, run_tags
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.resources import build_resources
from carinho_sandbox import Sandbox
from carinho_pipelines.store import Envelope, EventStore, utcnow
from tests.support import MailSink


class Hub:
    """The fan-out as the daemon runs it, minus the daemon: store + resources + jobs."""

    def __init__(self, sb: Sandbox, store_url: str, instance: DagsterInstance, mail: MailSink) -> None:
        self.sb, self.instance, self.mail = sb, instance, mail
        self.store = EventStore(store_url)
        self.store_url = store_url

    def resources(self) -> dict[str, Any]:
        return {**build_resources(), "event_store": EventStoreResource(database_url=self.store_url)}

    def event(self, event_type: str, source: str, payload: dict, key: str | None = None, queue: str | None = None,
              available_at=None) -> int:
        from carinho_pipelines.kernel.catalogue import queue_for

        env = Envelope(event_type, source, key or f"test:{event_type}:{utcnow().timestamp()}:{id(payload)}",
                       queue or queue_for(event_type), payload, utcnow(), available_at=available_at)
        return self.store.ingest(env).event_id

    def run(self, event_id: int, **kwargs):
        event = self.store.get_event(event_id)
        return EVENT_JOBS[event["event_type"]].execute_in_process(
            tags=run_tags(event), resources=self.resources(), instance=self.instance, raise_on_error=False, **kwargs
        )

    def calls(self, system: str, method: str | None = None, path: str | None = None) -> list[dict]:
        return [
            c for c in self.sb.calls(system)
            if (method is None or c["method"] == method) and (path is None or path in c["path"])
        ]


@pytest.fixture
def hub(sandbox: Sandbox, smtp, pg_database, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    sandbox.reset()
    sandbox.seed_default()
    sink, port = smtp
    sink.clear()
    env = sandbox.env()
    env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_STARTTLS="false", SMTP_USER="", SMTP_PASSWORD="",
               CARINHO_FEEDBACK_SECRET="test-feedback-secret", CARINHO_FEEDBACK_URL="https://carinho.com.vc/avaliar")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    url = pg_database(migrated=True)
    whatsapp_outbox.forget_status()
    with DagsterInstance.ephemeral() as instance:
        yield Hub(sandbox, url, instance, sink)


@pytest.fixture
def pooled_instance(hub: Hub, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """The hub's runs on an instance with concurrency pools (the ephemeral one has
    none), SQLite-backed, in a temporary folder."""
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        monkeypatch.setattr(hub, "instance", instance)
        yield instance
