"""The monitoring table (CONTRACTS §7) as data: the one place thresholds, levels and
escalation addresses are defined. ``/status``, ``/metrics``, the alert sensor and the
daily checklist all read it.

Status levels are ``ok`` / ``alert`` / ``critical`` (the §7 columns). Escalation levels
(seed §6) are who gets the e-mail:

- 1 Operação (``operacao@``): a metric at ``alert``; a sync run failed once; WhatsApp
  disconnected for more than 15 minutes.
- 2 Desenvolvimento (``dev@``): recurrent — a metric still at ``alert`` after
  :data:`ESCALATE_AFTER` (default 60 min); a sync failed on consecutive runs.
- 3 Gestão (``gestao@``): a metric at ``critical``.

Thresholds are code, not environment: the PHP module read them with ``env()`` inside
the service and they silently became 0 (reference §7.4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from carinho_pipelines.kernel.settings import env

OK, ALERT, CRITICAL = "ok", "alert", "critical"
#: escalation level of each status level
ESCALATION = {OK: 0, ALERT: 1, CRITICAL: 3}
LEVEL_NAMES = {0: "normal", 1: "Operação", 2: "Desenvolvimento", 3: "Gestão"}
_DEFAULT_ADDRESSES = {1: "operacao@carinho.com.vc", 2: "dev@carinho.com.vc", 3: "gestao@carinho.com.vc"}


@dataclass(frozen=True)
class Threshold:
    metric: str
    label: str
    #: alert when the value is strictly above ``alert``; critical when above ``critical``
    alert: float
    critical: float
    #: "count" or "percent"
    unit: str = "count"
    #: below this many samples the level stays ``ok`` (a single failed run is not a 100 % error rate)
    min_samples: int = 0

    def level(self, value: float | None, samples: int | None = None) -> str:
        if value is None or (samples is not None and samples < self.min_samples):
            return OK
        if value > self.critical:
            return CRITICAL
        if value > self.alert:
            return ALERT
        return OK


THRESHOLDS: dict[str, Threshold] = {
    t.metric: t
    for t in (
        Threshold("events_pending", "Eventos pendentes (recebidos, não finalizados)", 100, 500),
        Threshold("retry_backlog", "Fila de retry (ações aguardando nova tentativa)", 50, 200),
        Threshold("dlq_open", "DLQ (execuções com falha não arquivadas)", 10, 50),
        Threshold("error_rate", "Taxa de erro (falhas / finalizadas, última hora)", 5.0, 15.0, unit="percent",
                  min_samples=10),
    )
}

#: a queue's p95 processing time (received → done) above its SLA is ``alert``, above
#: this many times the SLA ``critical``; fewer finished runs than QUEUE_MIN_SAMPLES in
#: the window leave the queue ``ok``.
QUEUE_CRITICAL_FACTOR = 3
QUEUE_MIN_SAMPLES = 5
#: the window the error rate and the queue times are computed over
WINDOW = dt.timedelta(hours=1)

#: the alert key of the WhatsApp instance's state
WHATSAPP_ALERT_KEY = "whatsapp"
#: WhatsApp: the instance must be disconnected longer than this before anyone is told
WHATSAPP_DISCONNECT_GRACE = dt.timedelta(minutes=15)
#: a sync failing on this many consecutive runs is "recurrent" (level 2)
SYNC_REPEATED_FAILURES = 2


def queue_level(p95_seconds: float | None, sla_seconds: int, samples: int) -> str:
    if p95_seconds is None or samples < QUEUE_MIN_SAMPLES:
        return OK
    if p95_seconds > sla_seconds * QUEUE_CRITICAL_FACTOR:
        return CRITICAL
    if p95_seconds > sla_seconds:
        return ALERT
    return OK


def worst(levels: list[str]) -> str:
    return max(levels, key=lambda name: ESCALATION[name], default=OK)


# -- configuration (read on every call, so tests and a restarted daemon see changes) ---


def escalation_address(level: int) -> str:
    """``CARINHO_ALERT_EMAIL_LEVEL1/2/3``; defaults operacao@, dev@, gestao@."""
    return env(f"CARINHO_ALERT_EMAIL_LEVEL{level}", _DEFAULT_ADDRESSES[level]) or _DEFAULT_ADDRESSES[level]


def whatsapp_responsible() -> str:
    """Who reconnects the phone: ``CARINHO_WHATSAPP_ALERT_EMAIL`` (default: the level-1 address)."""
    return env("CARINHO_WHATSAPP_ALERT_EMAIL") or escalation_address(1)


def checklist_recipients() -> list[str]:
    """``CARINHO_CHECKLIST_EMAIL`` (comma-separated; default: the level-1 address)."""
    raw = env("CARINHO_CHECKLIST_EMAIL") or escalation_address(1)
    return [a.strip() for a in raw.split(",") if a.strip()]


def escalate_after() -> dt.timedelta:
    """A metric at ``alert`` this long goes to level 2: ``CARINHO_ALERT_ESCALATE_MINUTES`` (60)."""
    return dt.timedelta(minutes=float(env("CARINHO_ALERT_ESCALATE_MINUTES", "60") or 60))


def dagster_ui_url() -> str:
    """``CARINHO_DAGSTER_UI_URL``, for links in e-mails; default: the UI of
    ``CARINHO_DAGSTER_GRAPHQL_URL`` (the relay's setting), else http://127.0.0.1:3000."""
    url = env("CARINHO_DAGSTER_UI_URL")
    if not url:
        graphql = (env("CARINHO_DAGSTER_GRAPHQL_URL", "") or "").rstrip("/")
        url = graphql[: -len("/graphql")] if graphql.endswith("/graphql") else "http://127.0.0.1:3000"
    return url.rstrip("/")
