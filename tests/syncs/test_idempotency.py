"""Nothing is written twice: re-runs, backfills, failed confirms, partial failures (CONTRACTS §5)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dagster
from dagster import ReexecutionOptions, execute_job, reconstructable

from tests.syncs import location
from tests.syncs.conftest import FAST, checks, materializations, service, today, writes


def test_rerun_and_backfill_of_a_day_already_run_write_nothing(hub):
    sb = hub.sb
    day = today() - dt.timedelta(days=2)
    sb.seed({"operacao": {"services": [service(9001 + i, 101 + i, day) for i in range(3)]}})
    assert hub.run("operacao_financeiro", day).success
    assert len(sb.records("financeiro", "invoices")) == 3

    sb.clear_calls()
    again = hub.run("operacao_financeiro", day)  # a re-run of the night's run, or a backfill of that day

    assert again.success
    assert writes(sb, "financeiro") == [] and writes(sb, "operacao") == []
    assert len(sb.records("financeiro", "invoices")) == 3
    meta = materializations(again)["financeiro/invoices"]
    assert (meta["read"], meta["written"], meta["skipped_already_synced"]) == (3, 0, 3)


def test_a_service_invoiced_but_not_marked_billed_is_not_invoiced_again(hub):
    """Operação lost the billed mark (or another path invoiced it): the ledger still knows."""
    sb = hub.sb
    day = today() - dt.timedelta(days=1)
    sb.seed({"operacao": {"services": [service(9001, 101, day)]}})
    assert hub.run("operacao_financeiro", day).success
    sb.systems["operacao"].update("services", 9001, {"billed": False})
    sb.clear_calls()

    assert hub.run("operacao_financeiro", day).success

    assert writes(sb, "financeiro") == []
    assert len(sb.records("financeiro", "invoices")) == 1


def test_a_failed_billed_mark_is_retried_next_run_without_invoicing_again(hub):
    sb = hub.sb
    day = today() - dt.timedelta(days=1)
    sb.seed({"operacao": {"services": [service(9001, 101, day)]}})
    # Operação goes down right after Financeiro received the invoice: the mark fails
    sb.latency("financeiro", 0.3)

    def break_operacao_after_invoice() -> None:
        deadline = time.monotonic() + 10
        while not writes(sb, "financeiro") and time.monotonic() < deadline:
            time.sleep(0.005)
        sb.fail("operacao", status=503, count=100)

    watcher = threading.Thread(target=break_operacao_after_invoice)
    watcher.start()
    first = hub.run("operacao_financeiro", day, attempts=2)
    watcher.join()

    assert not first.success
    assert materializations(first)["operacao/services_billed"]["confirm_failed"] == 1
    assert sb.records("operacao", "services")[0]["billed"] is False
    invoice_id = sb.records("financeiro", "invoices")[0]["id"]

    sb.clear_faults()
    sb.latency("financeiro", 0)
    sb.clear_calls()
    second = hub.run("operacao_financeiro", day)

    assert second.success
    assert writes(sb, "financeiro") == []  # not invoiced again
    marks = writes(sb, "operacao", "PUT")
    assert [(c["path"], c["json"]) for c in marks] == [("/api/v1/services/9001/billed", {"invoice_id": invoice_id})]
    meta = materializations(second)["operacao/services_billed"]
    assert meta["confirm_retried"] == 1
    assert sb.records("operacao", "services")[0]["billed"] is True


def test_a_failed_crm_confirm_never_creates_a_second_schedule(hub):
    sb = hub.sb
    sb.seed({"crm": {"pending_schedules": [
        {"id": 501, "client_id": 101, "contract_id": 701, "service_type": "cuidador_idoso",
         "start_date": "2026-03-02T08:00:00-03:00", "end_date": None, "preferences": None}]}})
    sb.latency("operacao", 0.3)

    def break_crm_after_schedule() -> None:
        deadline = time.monotonic() + 10
        while not writes(sb, "operacao") and time.monotonic() < deadline:
            time.sleep(0.005)
        sb.fail("crm", status=500, count=100)

    watcher = threading.Thread(target=break_crm_after_schedule)
    watcher.start()
    assert not hub.run("crm_operacao", attempts=2).success
    watcher.join()
    sb.clear_faults()
    sb.latency("operacao", 0)

    assert hub.run("crm_operacao").success
    assert hub.run("crm_operacao").success

    assert len(sb.records("operacao", "schedules")) == 1
    assert sb.records("crm", "pending_schedules")[0]["operacao_schedule_id"] == sb.records("operacao", "schedules")[0]["id"]


def test_one_bad_item_fails_the_run_and_reexecution_from_failure_touches_only_it(hub, tmp_path):
    sb = hub.sb
    day = today() - dt.timedelta(days=1)
    sb.seed({"operacao": {"services": [service(9001 + i, 101 + i, day) for i in range(4)]}})
    # Financeiro rejects the first invoice (one call, not retried: a 4xx waits for a person)
    sb.fail("financeiro", status=422, count=1)
    config = {"ops": {"sync_operacao_financeiro": {"config": {**FAST, "concurrency": 1}}}}

    with dagster.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with execute_job(reconstructable(location.operacao_financeiro_job), instance=instance,
                         run_config=config, tags={"dagster/partition": day.isoformat()}) as failed:
            assert not failed.success
            failure = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"][0]
            error = failure.event_specific_data.error
            assert "9001 (write, invalid)" in error.message
            assert failure.event_specific_data.user_failure_data.metadata["failed_ids"].value == "9001"
            # the other three were invoiced and marked billed in the same run
            assert sorted(c["json"]["operacao_service_id"] for c in writes(sb, "financeiro", "POST")) == [9002, 9003, 9004]
            assert checks(failed)["every_completed_service_invoiced_once"].passed is False
            run = instance.get_run_by_id(failed.run_id)
            assert run.tags["carinho/dlq"] == "open" and run.tags["carinho/sync"] == "operacao_financeiro"

        sb.clear_calls()
        options = ReexecutionOptions.from_failure(failed.run_id, instance)
        # like the UI's "re-execute from failure": the parent's config and tags (partition, DLQ state)
        parent = instance.get_run_by_id(failed.run_id)
        with execute_job(reconstructable(location.operacao_financeiro_job), instance=instance,
                         run_config=parent.run_config, tags=parent.tags, reexecution_options=options) as retried:
            assert retried.success
            assert [c["json"]["operacao_service_id"] for c in writes(sb, "financeiro", "POST")] == [9001]
            assert [c["path"] for c in writes(sb, "operacao", "PUT")] == ["/api/v1/services/9001/billed"]
            assert checks(retried)["every_completed_service_invoiced_once"].passed
    assert len(sb.records("financeiro", "invoices")) == 4
    assert all(s["billed"] for s in sb.records("operacao", "services"))


def test_an_unavailable_destination_trips_the_breaker_instead_of_waiting_on_every_item(hub):
    sb = hub.sb
    sb.seed({"cuidadores": {"updates": [
        {"id": 800 + i, "caregiver_id": 300 + i, "changes": {"status": "active"}, "updated_at": None}
        for i in range(12)]}})
    sb.down("crm")
    try:
        started = time.monotonic()
        result = hub.run("cuidadores_crm", attempts=2, concurrency=1)
        elapsed = time.monotonic() - started
    finally:
        sb.up("crm")

    assert not result.success
    assert materializations(result)["crm/caregiver_updates"]["failed"] == 12
    assert elapsed < 10
    assert not any(u.get("confirmed_at") for u in sb.records("cuidadores", "updates"))
    # back up: the next run delivers all twelve, once each
    assert hub.run("cuidadores_crm").success
    assert len(sb.events("crm")) == 12
