"""Retention removes only what it should: old payloads (metadata kept), old finished
runs — never an open DLQ item or its history."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRunStatus, Definitions

from carinho_pipelines.events import whatsapp_outbox as outbox
from carinho_pipelines.monitoring import defs, retention
from carinho_pipelines.store import utcnow
from carinho_pipelines.store.tables import events, whatsapp_outbox


def _age(mon, event_id: int, days: float, due_in_days: float | None = None) -> None:
    when = utcnow() - dt.timedelta(days=days)
    due = when if due_in_days is None else utcnow() + dt.timedelta(days=due_in_days)
    with mon.store.engine.begin() as conn:
        conn.execute(events.update().where(events.c.id == event_id).values(received_at=when, available_at=due))


def _outbox(mon, event_id: int, status: str, days: float) -> int:
    row = outbox.outbox_enqueue(mon.store, event_id=event_id, action="whatsapp_welcome", phone="5511988887777",
                                kind="text", body={"message": "Olá, Maria!"})
    with mon.store.engine.begin() as conn:
        conn.execute(whatsapp_outbox.update().where(whatsapp_outbox.c.id == row["id"])
                     .values(status=status, created_at=utcnow() - dt.timedelta(days=days)))
    return row["id"]


def test_old_payloads_are_blanked_and_their_metadata_kept(mon):
    old, recent, delayed = mon.event(), mon.event(), mon.event()
    _age(mon, old, 31)
    _age(mon, recent, 29)
    _age(mon, delayed, 40, due_in_days=1)  # received long ago, still to be processed
    sent_old = _outbox(mon, old, "sent", 31)
    held_old = _outbox(mon, recent, "pending", 31)  # still to be sent: kept

    result = retention.purge_payloads(mon.store)
    assert result == {"event_payloads": 1, "outbox_messages": 1, "cutoff_days": 30}
    row = mon.store.get_event(old)
    assert row["payload"] is None and row["payload_purged_at"] is not None
    assert (row["event_type"], row["source"], row["queue"]) == ("lead.updated", "crm", "integrations")
    assert mon.store.get_event(recent)["payload"] == {"id": 1}
    assert mon.store.get_event(delayed)["payload"] == {"id": 1}
    with mon.store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(whatsapp_outbox))}
    assert rows[sent_old].phone == "55119****7777" and rows[sent_old].body == {}
    assert rows[held_old].phone == "5511988887777" and rows[held_old].body == {"message": "Olá, Maria!"}
    assert retention.purge_payloads(mon.store)["event_payloads"] == 0  # idempotent


def test_retention_days_are_configurable(mon, monkeypatch):
    monkeypatch.setenv("CARINHO_RETENTION_DAYS", "7")
    event_id = mon.event()
    _age(mon, event_id, 8)
    assert retention.purge_payloads(mon.store)["event_payloads"] == 1


def test_old_runs_are_deleted_except_open_dlq_items_and_their_groups(mon):
    ok = mon.run_event(mon.event())
    archived = mon.failed_run(dlq="archived")
    open_item = mon.failed_run()
    parent = mon.failed_run(dlq="replayed")
    child = mon.failed_run(parent_run_id=parent, root_run_id=parent)  # the replay failed again: open
    failed_untagged = mon.failed_run(dlq="")

    # a controlled clock: 91 days from now every run is past the 90-day limit
    result = retention.purge_runs(mon.instance, now=utcnow() + dt.timedelta(days=91))
    remaining = {r.run_id for r in mon.instance.get_runs()}
    assert remaining == {open_item, parent, child, failed_untagged}
    assert {ok, archived}.isdisjoint(remaining)
    assert result["runs_deleted"] == 2 and result["runs_kept_failed"] == 4

    assert retention.purge_runs(mon.instance)["runs_deleted"] == 0  # nothing is 90 days old today


def test_the_retention_job_reports_what_it_removed(mon):
    old = mon.event()
    _age(mon, old, 45)
    job = Definitions.merge(defs, Definitions(resources=mon.resources())).resolve_job_def("retention_job")
    with DagsterInstance.local_temp() as instance:  # with schedule storage, so ticks are purged too
        result = job.execute_in_process(instance=instance)
        assert result.success and instance.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
    events_meta = {
        e.event_specific_data.metadata.get("event_payloads").value
        for e in result.all_node_events
        if e.step_key == "purge_event_payloads" and e.is_successful_output
    }
    assert events_meta == {1}
    history = [e for e in result.all_node_events if e.step_key == "purge_dagster_history" and e.is_successful_output]
    assert history[0].event_specific_data.metadata["runs_deleted"].value == 0
    assert history[0].event_specific_data.metadata["ticks"].value["skipped_after_days"] == 7
    assert mon.store.get_event(old)["payload"] is None
