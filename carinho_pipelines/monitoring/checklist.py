"""The daily checklist (seed §5.1, CONTRACTS §7) at 07:30 São Paulo, before business
hours: WhatsApp status, the DLQ, last night's sync runs, queue sizes. A report asset
(markdown metadata, readable in the UI) and an e-mail of the same report.

The e-mail is its own asset downstream of the report, with retries: an SMTP outage
fails the run (visible) without losing the report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetKey,
    Backoff,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    RunsFilter,
    ScheduleDefinition,
    asset,
    define_asset_job,
    in_process_executor,
)

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.business_hours import SAO_PAULO
from carinho_pipelines.kernel.queues import LOW, QUEUES
from carinho_pipelines.store import EventStore, as_utc, utcnow

from . import metrics, thresholds, whatsapp_health
from .alert_sensor import runs_link

REPORT_KEY = AssetKey(["monitoring", "daily_checklist"])
EMAIL_KEY = AssetKey(["monitoring", "daily_checklist_email"])
CRON = "30 7 * * *"
TIMEZONE = "America/Sao_Paulo"
#: "last night" = the 24 hours before the checklist
SYNC_WINDOW = dt.timedelta(hours=24)


@dataclass
class Report:
    at: dt.datetime
    markdown: str
    attention: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.attention


def _local(when: dt.datetime | None) -> str:
    return when.astimezone(SAO_PAULO).strftime("%d/%m %H:%M") if when else "-"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def sync_runs(instance: Any, names: tuple[str, ...], since: dt.datetime) -> dict[str, dict[str, Any]]:
    out = {}
    for name in names:
        records = instance.get_run_records(filters=RunsFilter(tags={tags.SYNC: name}, created_after=since), limit=200)
        statuses = [r.dagster_run.status.value for r in records]
        last = records[0] if records else None
        out[name] = {
            "runs": len(records),
            "succeeded": statuses.count("SUCCESS"),
            "failed": statuses.count("FAILURE"),
            "last_status": last.dagster_run.status.value if last else None,
            "last_at": as_utc(last.create_timestamp) if last else None,
            "last_run_id": last.dagster_run.run_id if last else None,
        }
    return out


def build_report(store: EventStore, instance: Any, zapi: Any, now: dt.datetime | None = None,
                 sync_names: tuple[str, ...] | None = None) -> Report:
    now = now or utcnow()
    if sync_names is None:
        from carinho_pipelines.syncs import SYNC_NAMES

        sync_names = SYNC_NAMES
    attention: list[str] = []
    ui = thresholds.dagster_ui_url()

    status = whatsapp_health.poll(zapi)
    wa_state = whatsapp_health.instance_state(store)
    held = whatsapp_health.held_messages(store)
    snap = metrics.snapshot(store, instance, now)
    since = now - SYNC_WINDOW
    syncs = sync_runs(instance, sync_names, since)

    md = [f"# Checklist diário — {now.astimezone(SAO_PAULO).strftime('%d/%m/%Y %H:%M')} (São Paulo)", ""]

    md += ["## WhatsApp (Z-API)", ""]
    if status["connected"]:
        md.append(f"- ✅ Conectado (celular conectado: {'sim' if status.get('smartphoneConnected') else 'não'})")
    else:
        attention.append("WhatsApp desconectado")
        began = wa_state.get("disconnected_since")
        md.append(f"- ❌ **Desconectado**{' desde ' + _local(began) if began else ''} — {status.get('error') or 'sem detalhe'}")
        md.append("- Ação: reconectar a instância no painel da Z-API antes das 08:00.")
    md += [f"- Mensagens retidas no outbox: {held}", ""]

    dlq = snap.metrics["dlq_open"]
    md += ["## DLQ", ""]
    md.append(f"- Itens em aberto: **{dlq.value}** (alerta > {dlq.alert:g}, crítico > {dlq.critical:g}; nível {dlq.level})")
    if dlq.value:
        attention.append(f"DLQ com {dlq.value} item(ns) para revisão")
        md.append(f"- Revisar: `GET /api/dlq` ou [runs com falha no Dagster]({runs_link(tags.DLQ, 'open', 'FAILURE')})")
    md.append("")

    md += [f"## Syncs da noite anterior (desde {_local(since)})", "",
           "| sync | execuções | sucesso | falha | última | situação |", "|---|---|---|---|---|---|"]
    for name, s in syncs.items():
        if s["runs"] == 0:
            verdict = "⚠️ nenhuma execução"
            attention.append(f"sync {name} sem execução")
        elif s["last_status"] == "FAILURE":
            verdict = f"❌ [última falhou]({ui}/runs/{s['last_run_id']})"
            attention.append(f"sync {name}: última execução falhou")
        elif s["failed"]:
            verdict = "⚠️ houve falhas; última ok"
        else:
            verdict = "✅"
        md.append(f"| {name} | {s['runs']} | {s['succeeded']} | {s['failed']} | {_local(s['last_at'])} "
                  f"({s['last_status'] or '-'}) | {verdict} |")
    md.append("")

    md += ["## Filas", "", "| fila | pendentes | mais antigo | p95 processamento (1 h) | SLA | nível |",
           "|---|---|---|---|---|---|"]
    for q in snap.queues.values():
        md.append(f"| {q.queue} | {q.pending} | {_secs(q.oldest_pending_seconds)} | {_secs(q.processing_p95)} "
                  f"| {q.sla_seconds} s | {q.level} |")
        if q.level != thresholds.OK:
            attention.append(f"fila {q.queue} acima do SLA")
    md.append("")
    md += ["## Métricas (§7)", ""]
    for m in snap.metrics.values():
        value = "-" if m.value is None else (f"{m.value:.1f} %" if m.unit == "percent" else f"{m.value:g}")
        md.append(f"- {m.label}: **{value}** (alerta > {m.alert:g}, crítico > {m.critical:g}) — {m.level}")
        if m.level != thresholds.OK and m.name != "dlq_open":
            attention.append(f"{m.label} em nível {m.level}")
    md.append("")

    verdict = "✅ **Tudo em ordem.**" if not attention else "⚠️ **Atenção:** " + "; ".join(attention) + "."
    md[1:1] = ["", verdict, ""]
    numbers = {
        "whatsapp_connected": bool(status["connected"]),
        "dlq_open": int(dlq.value or 0),
        "events_pending": int(snap.metrics["events_pending"].value or 0),
        "retry_backlog": int(snap.metrics["retry_backlog"].value or 0),
        "sync_failures": sum(s["failed"] for s in syncs.values()),
        "attention_items": len(attention),
    }
    return Report(now, "\n".join(md) + "\n", attention, numbers)


def _scheduled_time(context: Any) -> dt.datetime:
    raw = context.run.tags.get(tags.SCHEDULED_EXECUTION_TIME)
    return as_utc(dt.datetime.fromisoformat(raw)) if raw else utcnow()


@asset(
    key=REPORT_KEY,
    group_name="monitoring",
    required_resource_keys={"event_store", "zapi"},
    description="The 07:30 checklist: WhatsApp status, DLQ, last night's sync runs, queue sizes (markdown metadata).",
    kinds={"python"},
)
def daily_checklist(context) -> MaterializeResult:
    report = build_report(context.resources.event_store.store, context.instance, context.resources.zapi,
                          _scheduled_time(context))
    context.log.info(f"checklist: {'OK' if report.ok else '; '.join(report.attention)}")
    return MaterializeResult(metadata={
        "report": MetadataValue.md(report.markdown),
        "status": "ok" if report.ok else "attention",
        "attention": MetadataValue.json(report.attention),
        **report.numbers,
    })


@asset(
    key=EMAIL_KEY,
    deps=[REPORT_KEY],
    group_name="monitoring",
    required_resource_keys={"email"},
    retry_policy=RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL),
    description="The checklist report e-mailed to CARINHO_CHECKLIST_EMAIL (default: the level-1 address).",
)
def daily_checklist_email(context) -> MaterializeResult:
    event = context.instance.get_latest_materialization_event(REPORT_KEY)
    materialization = event.asset_materialization if event else None
    if materialization is None:
        raise RuntimeError("no checklist report materialized yet")
    meta = materialization.metadata
    report = meta["report"].value
    status = meta["status"].value
    attention = meta["attention"].value or []
    when = dt.datetime.fromtimestamp(event.timestamp, tz=dt.timezone.utc).astimezone(SAO_PAULO)
    verdict = "OK" if status == "ok" else f"ATENÇÃO ({len(attention)})"
    subject = f"[Carinho] Checklist diário {when.strftime('%d/%m/%Y')}: {verdict}"
    recipients = thresholds.checklist_recipients()
    text = report + f"\nRelatório no Dagster: {thresholds.dagster_ui_url()}/assets/{'/'.join(REPORT_KEY.path)}\n"
    sent = context.resources.email.send_alert(recipients, subject, text)
    return MaterializeResult(metadata={"subject": subject, "recipients": MetadataValue.json(recipients),
                                       "report_run_id": event.run_id, "message_id": sent["message_id"]})


daily_checklist_job = define_asset_job(
    "daily_checklist_job",
    selection=[REPORT_KEY, EMAIL_KEY],
    executor_def=in_process_executor,
    tags={tags.QUEUE: LOW, tags.PRIORITY: str(QUEUES[LOW].priority)},
    description="Daily checklist report and its e-mail.",
)

daily_checklist_schedule = ScheduleDefinition(
    name="daily_checklist_schedule",
    job=daily_checklist_job,
    cron_schedule=CRON,
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="07:30 São Paulo, before business hours (seed §5.1).",
)
