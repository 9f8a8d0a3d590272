"""Prometheus alert rules and a Grafana dashboard for the relay's ``/metrics``, derived
from the monitoring table (:mod:`.thresholds`, CONTRACTS §7) and the queue table
(:mod:`carinho_pipelines.kernel.queues`, CONTRACTS §3): the numbers are written once, there.

``deploy/monitoring/carinho-rules.yml`` and ``deploy/monitoring/grafana-dashboard.json``
are this module's output, committed so a Prometheus/Grafana shop can use them without
Python; a test keeps them equal to it. Regenerate after changing a threshold or a queue::

    python -m carinho_pipelines.monitoring.prometheus deploy/monitoring

No dagster import: the relay imports :data:`METRIC_SERIES`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from carinho_pipelines.kernel.queues import QUEUES

from . import thresholds
from .thresholds import ALERT, CRITICAL, ESCALATION, THRESHOLDS

#: §7 metric → the /metrics series that carries it (error_rate as a 0–1 ratio)
METRIC_SERIES: dict[str, str] = {
    "events_pending": "carinho_events_pending",
    "retry_backlog": "carinho_retry_backlog",
    "dlq_open": "carinho_dlq_open",
    "error_rate": "carinho_error_rate_ratio",
}
#: §7 metric → alert name stem
ALERT_NAMES: dict[str, str] = {
    "events_pending": "CarinhoEventsPending",
    "retry_backlog": "CarinhoRetryBacklog",
    "dlq_open": "CarinhoDlqOpen",
    "error_rate": "CarinhoErrorRate",
}
#: how long a condition must hold before the alert fires (rides over one bad scrape)
FOR = "2m"
#: an open breaker keeps its alert this long after it half-opens (no flapping every probe)
BREAKER_WINDOW = "5m"
RULES_FILE = "carinho-rules.yml"
DASHBOARD_FILE = "grafana-dashboard.json"
SEVERITY = {ALERT: "warning", CRITICAL: "critical"}


def _number(value: float) -> str:
    """A threshold as PromQL (and Go's ``%v``) prints it: 100, 0.05."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _labels(level: str, **extra: str) -> dict[str, str]:
    return {"severity": SEVERITY[level], "level": level, "escalation": str(ESCALATION[level]), **extra}


def metric_rules() -> list[dict[str, Any]]:
    """One rule per §7 metric and level."""
    out = []
    for name, t in THRESHOLDS.items():
        scale = 0.01 if t.unit == "percent" else 1.0
        for level, limit in ((ALERT, t.alert), (CRITICAL, t.critical)):
            expr = f"{METRIC_SERIES[name]} > {_number(limit * scale)}"
            if t.min_samples:
                expr += f" and on() carinho_runs_finished_window >= {t.min_samples}"
            shown = f"{_number(limit)} %" if t.unit == "percent" else _number(limit)
            out.append({
                "alert": ALERT_NAMES[name] + ("Critical" if level == CRITICAL else ""),
                "expr": expr,
                "for": FOR,
                "labels": _labels(level, metric=name),
                "annotations": {
                    "summary": f"{t.label}: acima de {shown} ({'crítico' if level == CRITICAL else 'alerta'})",
                    "description": f"{METRIC_SERIES[name]} = {{{{ $value }}}} (limite {_number(limit * scale)}). "
                                   "Veja /status e deploy/RUNBOOK.md.",
                },
            })
    return out


def queue_rules() -> list[dict[str, Any]]:
    """Each queue's p95 processing time (received → done, last hour) against its SLA,
    and against ``QUEUE_CRITICAL_FACTOR`` × the SLA; fewer than QUEUE_MIN_SAMPLES runs
    in the window never alert (as ``/status`` decides)."""
    out = []
    for name, q in QUEUES.items():
        for level, limit in ((ALERT, q.sla_seconds), (CRITICAL, q.sla_seconds * thresholds.QUEUE_CRITICAL_FACTOR)):
            expr = (f'carinho_queue_processing_seconds{{queue="{name}",quantile="0.95"}} > {_number(limit)} '
                    f'and on(queue) carinho_queue_processing_samples{{queue="{name}"}} >= {thresholds.QUEUE_MIN_SAMPLES}')
            out.append({
                "alert": "CarinhoQueueSla" + ("Critical" if level == CRITICAL else ""),
                "expr": expr,
                "for": FOR,
                "labels": _labels(level, sla_seconds=str(q.sla_seconds)),
                "annotations": {
                    "summary": f"Fila {name}: p95 acima de {_number(limit)} s (SLA {q.sla_seconds} s)",
                    "description": "p95 do tempo recebido → concluído na última hora: {{ $value }} s.",
                },
            })
    return out


def other_rules() -> list[dict[str, Any]]:
    grace = int(thresholds.WHATSAPP_DISCONNECT_GRACE.total_seconds())
    return [
        {
            "alert": "CarinhoBreakerOpen",
            "expr": f"max_over_time(carinho_breaker_state[{BREAKER_WINDOW}]) == 2",
            "labels": _labels(ALERT),
            "annotations": {
                "summary": "Circuit breaker aberto: {{ $labels.destination }} indisponível",
                "description": "As ações para {{ $labels.destination }} falham rápido; as falhas "
                               "'unavailable' voltam sozinhas quando o destino se recuperar.",
            },
        },
        {
            "alert": "CarinhoWhatsAppDisconnected",
            "expr": f"carinho_whatsapp_disconnected_seconds > {grace}",
            "labels": _labels(ALERT),
            "annotations": {
                "summary": f"WhatsApp desconectado há mais de {grace // 60} min",
                "description": "Instância Z-API desconectada há {{ $value }} s: reconecte o celular "
                               "(deploy/RUNBOOK.md, WhatsApp).",
            },
        },
    ]


def rules() -> dict[str, Any]:
    return {"groups": [
        {"name": "carinho-monitoring", "rules": metric_rules()},
        {"name": "carinho-queues", "rules": queue_rules()},
        {"name": "carinho-destinations", "rules": other_rules()},
    ]}


def rules_text() -> str:
    header = ("# Prometheus alert rules of Carinho Integrações (CONTRACTS §7, §3 SLAs, breakers, WhatsApp).\n"
              "# Generated by `python -m carinho_pipelines.monitoring.prometheus deploy/monitoring`\n"
              "# from carinho_pipelines/monitoring/thresholds.py and carinho_pipelines/kernel/queues.py: do not edit.\n")
    return header + yaml.safe_dump(rules(), sort_keys=False, allow_unicode=True, width=120)


# -- the Grafana dashboard -----------------------------------------------------------------

_DS = {"type": "prometheus", "uid": "${datasource}"}


def _target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": ref}


def _steps(alert: float | None = None, critical: float | None = None) -> dict[str, Any]:
    steps = [{"color": "green", "value": None}]
    if alert is not None:
        steps.append({"color": "orange", "value": alert})
    if critical is not None:
        steps.append({"color": "red", "value": critical})
    return {"mode": "absolute", "steps": steps}


def _panel(kind: str, title: str, targets: list[dict[str, Any]], grid: tuple[int, int, int, int],
           *, unit: str = "short", steps: dict[str, Any] | None = None, description: str = "",
           mappings: list[dict[str, Any]] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    x, y, w, h = grid
    panel: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": _DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": steps or _steps(), "mappings": mappings or []},
                        "overrides": []},
        "options": options or {},
    }
    if kind == "timeseries" and steps is not None:
        panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return panel


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    for i, (name, t) in enumerate(THRESHOLDS.items()):
        scale = 0.01 if t.unit == "percent" else 1.0
        panels.append(_panel("stat", t.label, [_target(METRIC_SERIES[name])], (i * 6, 0, 6, 4),
                             unit="percentunit" if t.unit == "percent" else "short",
                             steps=_steps(t.alert * scale, t.critical * scale),
                             description=f"CONTRACTS §7: alerta > {_number(t.alert)}, crítico > {_number(t.critical)}"))
    panels += [
        _panel("timeseries", "Backlog por fila", [_target("carinho_queue_pending", "{{queue}}")], (0, 4, 12, 8),
               description="Eventos e execuções aguardando ou em execução, por fila."),
        _panel("timeseries", "Idade do item pendente mais antigo", [
            _target("carinho_queue_oldest_pending_seconds", "{{queue}}")], (12, 4, 12, 8), unit="s"),
        _panel("timeseries", "p95 recebido → concluído / SLA (1 = no limite)", [
            _target('carinho_queue_processing_seconds{quantile="0.95"} / on(queue) carinho_queue_sla_seconds',
                    "{{queue}}")], (0, 12, 12, 8), unit="percentunit",
            steps=_steps(1, thresholds.QUEUE_CRITICAL_FACTOR),
            description="Acima de 1 a fila está fora do SLA (CONTRACTS §3)."),
        _panel("timeseries", "p95 e SLA por fila (s)", [
            _target('carinho_queue_processing_seconds{quantile="0.95"}', "p95 {{queue}}", "A"),
            _target("carinho_queue_sla_seconds", "SLA {{queue}}", "B")], (12, 12, 12, 8), unit="s"),
        _panel("timeseries", "Ações com sucesso por destino (última hora)", [
            _target('carinho_destination_actions_window{outcome="succeeded"}', "{{destination}}")],
            (0, 20, 12, 8)),
        _panel("timeseries", "Ações com falha por destino (última hora)", [
            _target('carinho_destination_actions_window{outcome="failed"}', "{{destination}}")],
            (12, 20, 12, 8), steps=_steps(1)),
        _panel("bargauge", "Taxa de falha por destino (última hora)", [
            _target('carinho_destination_actions_window{outcome="failed"} / on(destination) '
                    "(sum by (destination) (carinho_destination_actions_window) > 0)", "{{destination}}")],
            (0, 28, 12, 8), unit="percentunit",
            steps=_steps(THRESHOLDS["error_rate"].alert / 100, THRESHOLDS["error_rate"].critical / 100),
            options={"displayMode": "gradient", "orientation": "horizontal"}),
        _panel("stat", "Circuit breakers", [_target("carinho_breaker_state", "{{destination}}")], (12, 28, 12, 8),
               steps=_steps(1, 2), mappings=[{"type": "value", "options": {
                   "0": {"text": "fechado", "color": "green"}, "1": {"text": "meio-aberto", "color": "orange"},
                   "2": {"text": "aberto", "color": "red"}}}],
               options={"colorMode": "background", "textMode": "value_and_name"}),
        _panel("timeseries", "DLQ (execuções com falha não arquivadas)", [_target("carinho_dlq_open", "DLQ")],
               (0, 36, 12, 8), steps=_steps(THRESHOLDS["dlq_open"].alert, THRESHOLDS["dlq_open"].critical)),
        _panel("stat", "WhatsApp desconectado há", [_target("carinho_whatsapp_disconnected_seconds")],
               (12, 36, 12, 8), unit="s",
               steps=_steps(None, thresholds.WHATSAPP_DISCONNECT_GRACE.total_seconds())),
    ]
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "title": "Carinho Integrações — hub",
        "uid": "carinho-hub",
        "description": "Filas, SLAs, destinos, circuit breakers e DLQ do hub (métricas do /metrics do relay).",
        "tags": ["carinho"],
        "timezone": "America/Sao_Paulo",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboard_text() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in ((RULES_FILE, rules_text()), (DASHBOARD_FILE, dashboard_text())):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/monitoring")):
        print(written)
