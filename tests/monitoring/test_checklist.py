"""The 07:30 checklist: the schedule, the report asset and its e-mail."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster import DagsterInstance, Definitions, build_schedule_context
from dagster._utils.schedules import cron_string_iterator

from carinho_pipelines.monitoring.checklist import (
    EMAIL_KEY,
    REPORT_KEY,
    daily_checklist_schedule,
)
from carinho_pipelines.monitoring import defs

SP = ZoneInfo("America/Sao_Paulo")


def test_the_schedule_fires_at_0730_sao_paulo_every_day():
    assert daily_checklist_schedule.cron_schedule == "30 7 * * *"
    assert daily_checklist_schedule.execution_timezone == "America/Sao_Paulo"
    assert daily_checklist_schedule.default_status.value == "RUNNING"
    start = dt.datetime(2026, 1, 14, 12, 0, tzinfo=SP).timestamp()
    ticks = cron_string_iterator(start, "30 7 * * *", "America/Sao_Paulo")
    first, second = next(ticks), next(ticks)
    assert first.isoformat() == "2026-01-15T07:30:00-03:00" and second.isoformat() == "2026-01-16T07:30:00-03:00"
    assert first.astimezone(dt.timezone.utc).hour == 10
    with DagsterInstance.ephemeral() as instance:
        request = daily_checklist_schedule.evaluate_tick(build_schedule_context(instance=instance,
                                                                                scheduled_execution_time=first))
    [run] = request.run_requests
    assert run.job_name in (None, "daily_checklist_job")


def test_the_report_is_materialized_and_emailed(mon, monkeypatch):
    monkeypatch.setenv("CARINHO_CHECKLIST_EMAIL", "operacao@carinho.com.vc, gerente@carinho.com.vc")
    mon.run_sync("crm_operacao")
    mon.run_sync("operacao_financeiro", fail=True)
    mon.failed_run()
    mon.events(3, queue="integrations-high")
    mon.sb.zapi.disconnect()
    scheduled = dt.datetime.now(dt.timezone.utc)

    # as the code location runs it: the monitoring defs merged with the hub's resources
    job = Definitions.merge(defs, Definitions(resources=mon.resources())).resolve_job_def("daily_checklist_job")
    result = job.execute_in_process(
        instance=mon.instance,
        tags={"dagster/scheduled_execution_time": scheduled.isoformat()},
    )
    assert result.success
    event = mon.instance.get_latest_materialization_event(REPORT_KEY)
    meta = event.asset_materialization.metadata
    report = meta["report"].value
    assert report.startswith("# Checklist diário")
    for section in ("## WhatsApp (Z-API)", "## DLQ", "## Syncs da noite anterior", "## Filas", "## Métricas (§7)"):
        assert section in report
    assert "❌ **Desconectado**" in report and "Itens em aberto: **2**" in report  # the failed sync run and the failed event run
    assert "| crm_operacao | 1 | 1 | 0 |" in report and "| operacao_financeiro | 1 | 0 | 1 |" in report
    assert "| crm_financeiro | 0 | 0 | 0 |" in report and "nenhuma execução" in report
    assert "| integrations-high | 3 |" in report
    assert meta["status"].value == "attention" and meta["dlq_open"].value == 2
    assert meta["whatsapp_connected"].value is False
    assert mon.instance.get_latest_materialization_event(EMAIL_KEY) is not None

    [mail] = mon.mails()
    assert mail["to"] == ["gerente@carinho.com.vc", "operacao@carinho.com.vc"]
    assert mail["subject"].startswith("[Carinho] Checklist diário ") and "ATENÇÃO" in mail["subject"]
    assert "WhatsApp desconectado" in mail["text"] and "## Syncs da noite anterior" in mail["text"]
    assert "http://dagster.test:3000/assets/monitoring/daily_checklist" in mail["text"]
    mon.sb.zapi.connect()
