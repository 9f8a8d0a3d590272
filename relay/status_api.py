"""``GET /status`` and ``GET /metrics`` (CONTRACTS §2.3, §7): the §7 metrics with their
levels, as JSON and in the Prometheus text format. Both read the same snapshot
(:func:`carinho_pipelines.monitoring.metrics.snapshot`), so they cannot disagree with
the alert e-mails.

``/status`` needs an API key with scope ``status:read``. ``/metrics`` is open by default
so Prometheus can scrape it without a secret: it carries only aggregate numbers (counts,
durations, levels; no ids, phones, e-mails or messages). Set
``CARINHO_METRICS_REQUIRE_KEY=true`` to require ``status:read`` there too.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from carinho_pipelines.monitoring import alerts, prometheus, thresholds
from carinho_pipelines.monitoring import metrics as monitoring_metrics
from carinho_pipelines.destinations import pauses
from carinho_pipelines.kernel import settings

from . import runs
from .apikeys import check_scope, requires
from .errors import ApiError
from carinho_pipelines.store import EventStore, utcnow

log = logging.getLogger(__name__)

LEVEL_NUMBER = {thresholds.OK: 0, thresholds.ALERT: 1, thresholds.CRITICAL: 2}
#: ``carinho_breaker_state``: 0 closed, 1 half-open (one probe may pass), 2 open
BREAKER_NUMBER = {"closed": 0, "half_open": 1, "open": 2}


def _collect(store: EventStore) -> tuple[monitoring_metrics.Snapshot, dict[str, alerts.AlertState]]:
    instance = None
    if runs.configured():
        try:
            instance = runs.instance()
            snap = monitoring_metrics.snapshot(store, instance, utcnow())
        except sa.exc.SQLAlchemyError:
            raise
        except Exception as exc:  # Dagster's storage unavailable: the store's numbers still help
            log.warning("status: Dagster instance unavailable (%s)", exc.__class__.__name__)
            snap = monitoring_metrics.snapshot(store, None, utcnow())
    else:
        snap = monitoring_metrics.snapshot(store, None, utcnow())
    return snap, alerts.load(store)


async def _snapshot(request: Request) -> tuple[monitoring_metrics.Snapshot, dict[str, alerts.AlertState]]:
    try:
        return await run_in_threadpool(_collect, request.app.state.store)
    except sa.exc.SQLAlchemyError as exc:
        raise ApiError(503, "store_unavailable", "the event store is unavailable", headers={"Retry-After": "5"}) from exc


def _whatsapp(states: dict[str, alerts.AlertState]) -> dict[str, Any]:
    state = states.get(thresholds.WHATSAPP_ALERT_KEY)
    if state is None:
        return {"connected": None, "disconnected_since": None, "alerted": False}
    return {
        "connected": state.condition_since is None,
        "disconnected_since": state.condition_since.isoformat() if state.condition_since else None,
        "alerted": state.level > 0,
        "checked_at": (state.last_ok_at or state.condition_since).isoformat()
        if (state.last_ok_at or state.condition_since) else None,
    }


@requires("status:read")
async def status(request: Request) -> JSONResponse:
    """The §7 metrics with their levels (ok/alert/critical), per-queue times against the
    §3 SLAs, the WhatsApp instance and the alerts currently announced."""
    snap, states = await _snapshot(request)
    body = {
        "status": snap.level,
        "timestamp": snap.at.isoformat(),
        "dagster": "ok" if snap.dagster else "unavailable",
        "metrics": {
            name: {"label": m.label, "value": m.value, "level": m.level, "alert": m.alert, "critical": m.critical,
                   "unit": m.unit, **({"samples": m.samples} if m.samples is not None else {}), **m.detail}
            for name, m in snap.metrics.items()
        },
        "queues": {
            name: {
                "sla_seconds": q.sla_seconds, "level": q.level, "pending": q.pending,
                "oldest_pending_seconds": q.oldest_pending_seconds,
                "wait_seconds": {"p50": q.wait_p50, "p95": q.wait_p95, "samples": q.samples},
                "processing_seconds": {"p50": q.processing_p50, "p95": q.processing_p95,
                                       "samples": q.processing_samples},
            }
            for name, q in snap.queues.items()
        },
        "window_seconds": int(thresholds.WINDOW.total_seconds()),
        "whatsapp": _whatsapp(states),
        "paused_destinations": await run_in_threadpool(pauses.active, request.app.state.store),
        "alerts": [
            {"key": s.key, "escalation_level": s.level, "since": s.condition_since.isoformat() if s.condition_since else None,
             "notified_at": s.notified_at.isoformat() if s.notified_at else None, "summary": s.summary}
            for s in sorted(states.values(), key=lambda s: s.key) if s.level > 0
        ],
    }
    return JSONResponse(body)


def whatsapp_disconnected_seconds(states: dict[str, alerts.AlertState], connection: dict[str, Any] | None,
                                  now: Any) -> float:
    """How long the WhatsApp instance has been disconnected (0 when connected or never
    checked): the alert sensor's check of Z-API, else Z-API's last connection callback."""
    state = states.get(thresholds.WHATSAPP_ALERT_KEY)
    if state is not None:
        since = state.condition_since
    elif connection is not None and not connection["connected"]:
        since = connection["since"]
    else:
        since = None
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def prometheus_text(snap: monitoring_metrics.Snapshot, states: dict[str, alerts.AlertState],
                    connection: dict[str, Any] | None = None, paused: dict[str, Any] | None = None) -> bytes:
    """The snapshot in the Prometheus text exposition format (prometheus-client)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=labels)

    families = []
    series = prometheus.METRIC_SERIES
    values = {
        "events_pending": (series["events_pending"], "Events received and due but not finished."),
        "retry_backlog": (series["retry_backlog"], "Actions waiting for another attempt."),
        "dlq_open": (series["dlq_open"], "Failed runs in the DLQ (not archived, not replayed)."),
    }
    for key, (name, doc) in values.items():
        g = gauge(name, doc)
        if snap.metrics[key].value is not None:
            g.add_metric([], float(snap.metrics[key].value))
        families.append(g)
    rate = snap.metrics["error_rate"]
    g = gauge(series["error_rate"], "Failed / finished hub runs over the last hour (0-1).")
    if rate.value is not None:
        g.add_metric([], rate.value / 100.0)
    families.append(g)
    g = gauge("carinho_runs_finished_window", "Hub runs finished in the last hour.")
    if rate.samples is not None:
        g.add_metric([], float(rate.samples))
    families.append(g)

    level = gauge("carinho_metric_level", "Level of each §7 metric: 0 ok, 1 alert, 2 critical.", ["metric"])
    limit = gauge("carinho_metric_threshold", "Thresholds of each §7 metric (error_rate as a ratio).", ["metric", "level"])
    for name, m in snap.metrics.items():
        level.add_metric([name], LEVEL_NUMBER[m.level])
        scale = 0.01 if m.unit == "percent" else 1.0
        limit.add_metric([name, "alert"], m.alert * scale)
        limit.add_metric([name, "critical"], m.critical * scale)
    families += [level, limit]

    pending = gauge("carinho_queue_pending", "Events and runs waiting or running, per queue.", ["queue"])
    oldest = gauge("carinho_queue_oldest_pending_seconds", "Age of the oldest pending item, per queue.", ["queue"])
    wait = gauge("carinho_queue_wait_seconds", "Due → run started, last hour.", ["queue", "quantile"])
    proc = gauge("carinho_queue_processing_seconds", "Due → run finished (succeeded), last hour.", ["queue", "quantile"])
    samples = gauge("carinho_queue_processing_samples", "Runs behind the processing quantiles.", ["queue"])
    sla = gauge("carinho_queue_sla_seconds", "Processing SLA of the queue (CONTRACTS §3).", ["queue"])
    qlevel = gauge("carinho_queue_level", "Queue level against its SLA: 0 ok, 1 alert, 2 critical.", ["queue"])
    for name, q in snap.queues.items():
        pending.add_metric([name], q.pending)
        if q.oldest_pending_seconds is not None:
            oldest.add_metric([name], q.oldest_pending_seconds)
        for quantile, w, p in (("0.5", q.wait_p50, q.processing_p50), ("0.95", q.wait_p95, q.processing_p95)):
            if w is not None:
                wait.add_metric([name, quantile], w)
            if p is not None:
                proc.add_metric([name, quantile], p)
        samples.add_metric([name], q.processing_samples)
        sla.add_metric([name], q.sla_seconds)
        qlevel.add_metric([name], LEVEL_NUMBER[q.level])
    families += [pending, oldest, wait, proc, samples, sla, qlevel]

    overall = gauge("carinho_status_level", "Worst level of all metrics and queues: 0 ok, 1 alert, 2 critical.")
    overall.add_metric([], LEVEL_NUMBER[snap.level])
    dagster = gauge("carinho_dagster_up", "1 when the Dagster instance could be read.")
    dagster.add_metric([], 1.0 if snap.dagster else 0.0)
    families += [overall, dagster]
    whatsapp = states.get(thresholds.WHATSAPP_ALERT_KEY)
    if whatsapp is not None:
        g = gauge("carinho_whatsapp_connected", "1 when the WhatsApp instance was connected at the last check.")
        g.add_metric([], 0.0 if whatsapp.condition_since else 1.0)
        families.append(g)
    g = gauge("carinho_whatsapp_disconnected_seconds",
              "Seconds the WhatsApp instance has been disconnected (0 when connected or not yet checked).")
    g.add_metric([], round(whatsapp_disconnected_seconds(states, connection, snap.at), 1))
    families.append(g)
    outcomes = gauge("carinho_destination_actions_window",
                     "Actions per destination that succeeded / failed, last hour.", ["destination", "outcome"])
    for destination, counts in sorted(snap.actions.items()):
        for outcome, count in sorted(counts.items()):
            outcomes.add_metric([destination, outcome], count)
    breaker = gauge("carinho_breaker_state", "Circuit breaker per destination: 0 closed, 1 half-open, 2 open.",
                    ["destination"])
    for destination, state in sorted(snap.breakers.items()):
        breaker.add_metric([destination], BREAKER_NUMBER.get(state, 2))
    families += [outcomes, breaker]
    pause = gauge("carinho_destination_paused", "1 while ops have paused the destination (its actions wait).",
                  ["destination"])
    for destination in sorted(paused or {}):
        pause.add_metric([destination], 1.0)
    families.append(pause)
    escalation = gauge("carinho_alert_escalation_level", "Escalation level announced per alert (0 none, 1-3).", ["alert"])
    for key, state in sorted(states.items()):
        escalation.add_metric([key], state.level)
    families.append(escalation)

    class _Snapshot:
        def collect(self):
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())
    return generate_latest(registry)


async def metrics_endpoint(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    if settings.current().metrics_require_key:
        check_scope(request, "status:read")
    snap, states = await _snapshot(request)
    try:
        connection = await run_in_threadpool(request.app.state.store.whatsapp_connection_state)
        paused = await run_in_threadpool(pauses.active, request.app.state.store)
    except sa.exc.SQLAlchemyError:
        connection = paused = None
    return Response(prometheus_text(snap, states, connection, paused), media_type=CONTENT_TYPE_LATEST)


#: the route handler (``Route("/metrics", status_api.metrics)``)
metrics = metrics_endpoint
