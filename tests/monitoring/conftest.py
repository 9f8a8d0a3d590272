"""Monitoring fixtures: the sandbox (Z-API with its disconnect fault), a real SMTP
server, a migrated PostgreSQL event store, a temporary Dagster instance, and the
resources as the code location builds them."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, in_process_executor, job, op
from dagster._core.utils import make_new_run_id

from carinho_pipelines.kernel import tags
from carinho_pipelines.events import whatsapp_outbox
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.resources import EmailResource, ZApiResource, build_resources
from carinho_sandbox import Sandbox
from carinho_pipelines.store.migrate import upgrade
from carinho_pipelines.store import Envelope, EventStore, utcnow
from carinho_pipelines.store.tables import events, metadata
from tests.support import MailSink


@op
def hub_action(context) -> None:
    if context.run.tags.get("test/fail") == "yes":
        raise RuntimeError("destination unavailable")


@job(executor_def=in_process_executor)
def hub_test_job():
    hub_action()


class Mon:
    """Store + Dagster instance + resources + the mail sink, with helpers to make runs."""

    def __init__(self, sb: Sandbox, url: str, instance: DagsterInstance, mail: MailSink) -> None:
        self.sb, self.url, self.instance, self.mail = sb, url, instance, mail
        self.store = EventStore(url)

    def resources(self) -> dict[str, Any]:
        res = build_resources()
        return {"event_store": EventStoreResource(database_url=self.url), "zapi": res["zapi"], "email": res["email"]}

    @property
    def email(self) -> EmailResource:
        """The SMTP client with the current environment's values (for direct calls)."""
        return EmailResource(host=os.environ["SMTP_HOST"], port=int(os.environ["SMTP_PORT"]), starttls=False)

    @property
    def zapi(self) -> ZApiResource:
        return ZApiResource(base_url=os.environ["ZAPI_BASE_URL"], instance_id=os.environ["ZAPI_INSTANCE_ID"],
                            token=os.environ["ZAPI_TOKEN"], client_token=os.environ["ZAPI_CLIENT_TOKEN"])

    def event(self, queue: str = "integrations", received_ago: float = 0.0, event_type: str = "lead.updated") -> int:
        env = Envelope(event_type, "crm", f"k-{make_new_run_id()}", queue, {"id": 1}, utcnow())
        event_id = self.store.ingest(env).event_id
        if received_ago:
            when = utcnow() - dt.timedelta(seconds=received_ago)
            with self.store.engine.begin() as conn:
                conn.execute(events.update().where(events.c.id == event_id).values(received_at=when, available_at=when))
        return event_id

    def events(self, count: int, queue: str = "integrations") -> None:
        """``count`` events received now, not yet dispatched, in one statement."""
        now = utcnow()
        rows = [{"event_type": "lead.updated", "source": "crm", "idempotency_key": f"bulk-{make_new_run_id()}",
                 "queue": queue, "payload": {"id": i}, "occurred_at": now, "received_at": now, "available_at": now}
                for i in range(count)]
        with self.store.engine.begin() as conn:
            conn.execute(events.insert(), rows)

    def run_event(self, event_id: int, queue: str = "integrations", fail: bool = False) -> str:
        """A real run of an event (tags as the dispatch sensor sets them), marked dispatched."""
        run_tags = {tags.EVENT_ID: str(event_id), tags.QUEUE: queue, "test/fail": "yes" if fail else "no"}
        result = hub_test_job.execute_in_process(instance=self.instance, tags=run_tags, raise_on_error=False)
        if fail:  # what the DLQ failure hook / sensor does
            self.instance.add_run_tags(result.run_id, {tags.DLQ: "open"})
        with self.store.engine.begin() as conn:
            conn.execute(events.update().where(events.c.id == event_id).values(run_id=result.run_id, dispatched_at=utcnow()))
        return result.run_id

    def run_sync(self, name: str, fail: bool = False) -> str:
        run_tags = {tags.SYNC: name, tags.QUEUE: "integrations-low", "test/fail": "yes" if fail else "no"}
        run_id = hub_test_job.execute_in_process(instance=self.instance, tags=run_tags, raise_on_error=False).run_id
        if fail:
            self.instance.add_run_tags(run_id, {tags.DLQ: "open"})
        return run_id

    def failed_run(self, dlq: str = "open", **kwargs) -> str:
        """A failed run record (no execution) — a DLQ item as the instance stores it."""
        run_id = make_new_run_id()
        self.instance.add_run(DagsterRun(job_name="lead_updated", run_id=run_id, status=DagsterRunStatus.FAILURE,
                                         tags={tags.EVENT_ID: "1", tags.QUEUE: "integrations", tags.DLQ: dlq}, **kwargs))
        return run_id

    def mails(self) -> list[dict[str, Any]]:
        out = []
        for msg in self.mail.messages():
            out.append({"to": sorted(a for _, a in email.utils.getaddresses([msg["To"]])), "subject": msg["Subject"],
                        "text": msg.get_body(("plain",)).get_content()})
        return out


@pytest.fixture(scope="session")
def migrated_db(pg_database) -> str:
    url = pg_database("carinho_mon")
    upgrade(url)
    return url


@pytest.fixture
def mon(sandbox: Sandbox, smtp, migrated_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mon]:
    sandbox.reset()
    sink, port = smtp
    sink.clear()
    env = sandbox.env()
    env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_STARTTLS="false", SMTP_USER="", SMTP_PASSWORD="",
               CARINHO_DAGSTER_UI_URL="http://dagster.test:3000")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("CARINHO_ALERT_EMAIL_LEVEL1", "CARINHO_ALERT_EMAIL_LEVEL2", "CARINHO_ALERT_EMAIL_LEVEL3",
                "CARINHO_WHATSAPP_ALERT_EMAIL", "CARINHO_CHECKLIST_EMAIL", "CARINHO_ALERT_ESCALATE_MINUTES",
                "CARINHO_RETENTION_DAYS", "CARINHO_RUN_RETENTION_DAYS", "CARINHO_METRICS_REQUIRE_KEY"):
        monkeypatch.delenv(key, raising=False)
    url = migrated_db
    with sa.create_engine(url).begin() as conn:  # a clean store, without the cost of a new database per test
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    whatsapp_outbox.forget_status()
    with DagsterInstance.ephemeral() as instance:
        m = Mon(sandbox, url, instance, sink)
        yield m
        m.store.engine.dispose()

