"""The alert sensor: every minute, the §7 metrics, the queues' SLAs and the syncs' last
runs become :class:`~.alerts.Signal` values and go through the alert state machine."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from dagster import DagsterRunStatus, DefaultSensorStatus, RunsFilter, SensorEvaluationContext, SkipReason, sensor

from carinho_pipelines.kernel import tags
from carinho_pipelines.resources.event_store import EventStoreResource
from carinho_pipelines.resources import EmailResource
from carinho_pipelines.store import EventStore, utcnow

from . import alerts, metrics, thresholds
from .thresholds import ESCALATION, OK


def runs_link(tag: str | None = None, value: str | None = None, status: str | None = None) -> str:
    query = []
    if status:
        query.append(f"status:{status}")
    if tag:
        query.append(f"tag:{tag}={value}")
    params = "&".join(f"q%5B{i}%5D={quote(q, safe='')}" for i, q in enumerate(query))
    return f"{thresholds.dagster_ui_url()}/runs" + (f"?{params}" if params else "")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "percent":
        return f"{value:.1f} %"
    return f"{value:g}"


def metric_signal(metric: metrics.Metric) -> alerts.Signal:
    t = thresholds.THRESHOLDS[metric.name]
    value = _fmt(metric.value, metric.unit)
    lines = [f"Métrica: {metric.label}", f"Valor atual: {value}"]
    if metric.level != OK and metric.value is not None:
        limit = t.critical if metric.level == thresholds.CRITICAL else t.alert
        which = "crítico" if metric.level == thresholds.CRITICAL else "de alerta"
        excess = metric.value - limit
        relative = f" (+{100 * excess / limit:.0f} %)" if limit else ""
        lines.append(f"Ultrapassou o limite {which} (> {_fmt(limit, metric.unit)}) em {_fmt(round(excess, 2), metric.unit)}"
                     f"{relative}.")
    lines.append(f"Limites: alerta > {_fmt(t.alert, t.unit)}, crítico > {_fmt(t.critical, t.unit)}.")
    if metric.samples is not None:
        lines.append(f"Execuções finalizadas na última hora: {metric.samples}")
    lines += [f"  {k}: {v}" for k, v in metric.detail.items()]
    link = runs_link(tags.DLQ, "open", "FAILURE") if metric.name == "dlq_open" else runs_link()
    return alerts.Signal(
        key=f"metric:{metric.name}",
        level=ESCALATION[metric.level],
        title=f"{metric.label}: {value}",
        lines=tuple(lines),
        link=link,
        escalate_after=thresholds.escalate_after(),
    )


def queue_signal(stats: metrics.QueueStats) -> alerts.Signal:
    p95 = "-" if stats.processing_p95 is None else f"{stats.processing_p95:g} s"
    lines = [
        f"Fila: {stats.queue} (SLA de processamento < {stats.sla_seconds} s)",
        f"Processamento (recebido → concluído), última hora: p50 {stats.processing_p50} s, p95 {p95}"
        f" em {stats.processing_samples} execuções",
        f"Espera (recebido → início da execução): p50 {stats.wait_p50} s, p95 {stats.wait_p95} s",
        f"Pendentes agora: {stats.pending}",
    ]
    if stats.level != OK and stats.processing_p95 is not None:
        lines.append(f"O p95 excede o SLA em {stats.processing_p95 - stats.sla_seconds:.1f} s "
                     f"({stats.processing_p95 / stats.sla_seconds:.1f}× o SLA; crítico acima de "
                     f"{thresholds.QUEUE_CRITICAL_FACTOR}×).")
    return alerts.Signal(
        key=f"queue:{stats.queue}",
        level=ESCALATION[stats.level],
        title=f"Fila {stats.queue}: p95 de processamento {p95} (SLA {stats.sla_seconds} s)",
        lines=tuple(lines),
        link=runs_link(tags.QUEUE, stats.queue),
        escalate_after=thresholds.escalate_after(),
    )


def sync_signal(instance: Any, name: str) -> alerts.Signal:
    """Level 1 when the sync's last run failed, 2 when its last runs failed in a row.
    A failure archived in the DLQ counts as handled; a replayed one is superseded by its
    re-execution."""
    records = instance.get_run_records(
        filters=RunsFilter(tags={tags.SYNC: name}, statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]),
        limit=20,
    )
    consecutive = 0
    last_failed = None
    for record in records:  # newest first
        run = record.dagster_run
        dlq_state = run.tags.get(tags.DLQ)
        if run.status == DagsterRunStatus.FAILURE and dlq_state == "replayed":
            continue
        if run.status != DagsterRunStatus.FAILURE or dlq_state == "archived":
            break
        consecutive += 1
        last_failed = last_failed or run.run_id
    if consecutive == 0:
        level, title = 0, f"Sync {name}: última execução concluída"
    elif consecutive >= thresholds.SYNC_REPEATED_FAILURES:
        level, title = 2, f"Sync {name}: falhou em {consecutive} execuções seguidas"
    else:
        level, title = 1, f"Sync {name}: a última execução falhou"
    lines = [f"Sync: {name}", f"Falhas consecutivas: {consecutive}"]
    link = runs_link(tags.SYNC, name)
    if last_failed:
        lines.append(f"Última falha: {thresholds.dagster_ui_url()}/runs/{last_failed}")
    return alerts.Signal(key=f"sync:{name}", level=level, title=title, lines=tuple(lines), link=link)


def check_thresholds(
    store: EventStore, instance: Any, email: Any, now: dt.datetime | None = None, sync_names: tuple[str, ...] | None = None
) -> tuple[metrics.Snapshot, list[alerts.Transition]]:
    """One evaluation: metrics → signals → e-mails for the levels entered or left."""
    now = now or utcnow()
    if sync_names is None:
        from carinho_pipelines.syncs import SYNC_NAMES

        sync_names = SYNC_NAMES
    snap = metrics.snapshot(store, instance, now)
    signals = [metric_signal(m) for m in snap.metrics.values()]
    signals += [queue_signal(q) for q in snap.queues.values()]
    signals += [sync_signal(instance, name) for name in sync_names]
    return snap, alerts.evaluate(store, email, signals, now)


@sensor(
    name="monitoring_alerts_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Checks the §7 thresholds, queue SLAs and sync failures every minute; e-mails each level entered "
                "(operacao@ / dev@ / gestao@) and each recovery, once.",
)
def monitoring_alerts_sensor(context: SensorEvaluationContext, event_store: EventStoreResource, email: EmailResource):
    snap, changes = check_thresholds(event_store.store, context.instance, email)
    for change in changes:
        message = f"{change.key}: level {change.previous} → {change.level}"
        if change.sent:
            context.log.info(f"{message}, e-mailed to {len(change.recipients)} recipient(s)")
        else:
            context.log.warning(f"{message} not e-mailed ({change.error}); retried on the next check")
    return SkipReason(f"status {snap.level}; {len(changes)} alert change(s)")
