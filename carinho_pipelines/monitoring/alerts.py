"""The alert state machine: entering a level sends one e-mail, holding it sends
nothing, recovery is announced once (CONTRACTS §7). State lives in the event store
(``monitoring_alerts``), so a daemon restart neither repeats nor forgets an alert.

Callers describe conditions as :class:`Signal` values (pure data: what, how bad, since
when); :func:`evaluate` compares them with the stored state and sends what changed. A
send that fails leaves the state unchanged, so the next check tries again: an alert is
never lost to a brief SMTP outage and never sent twice once delivered.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlalchemy as sa

from carinho_pipelines.kernel.business_hours import SAO_PAULO
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import monitoring_alerts

from . import thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """One monitored condition as observed now."""

    key: str
    #: escalation level the condition warrants now (0 = fine, 1..3)
    level: int
    #: one line naming the condition and its value, e.g. "DLQ: 12 itens em aberto"
    title: str
    #: what crossed and by how much (no personal data)
    lines: tuple[str, ...] = ()
    link: str | None = None
    #: when the condition began, when the signal knows better than "first seen now"
    since: dt.datetime | None = None
    #: the condition must hold longer than this before anyone is told
    grace: dt.timedelta = dt.timedelta(0)
    #: level 1 still holding after this long is escalated to level 2 (recurrent)
    escalate_after: dt.timedelta | None = None
    #: who gets it instead of the level's escalation address
    recipients: tuple[str, ...] | None = None


@dataclass
class Transition:
    key: str
    previous: int
    level: int
    recipients: list[str]
    subject: str
    sent: bool
    error: str | None = None


@dataclass
class AlertState:
    key: str
    level: int = 0
    condition_since: dt.datetime | None = None
    level_since: dt.datetime | None = None
    last_ok_at: dt.datetime | None = None
    notified_at: dt.datetime | None = None
    summary: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None


def load(store: EventStore, keys: Iterable[str] | None = None) -> dict[str, AlertState]:
    query = sa.select(monitoring_alerts)
    if keys is not None:
        query = query.where(monitoring_alerts.c.key.in_(list(keys)))
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {
        r["key"]: AlertState(
            key=r["key"],
            level=r["level"],
            condition_since=as_utc(r["condition_since"]),
            level_since=as_utc(r["level_since"]),
            last_ok_at=as_utc(r["last_ok_at"]),
            notified_at=as_utc(r["notified_at"]),
            summary=r["summary"],
            detail=dict(r["detail"] or {}),
            last_error=r["last_error"],
        )
        for r in rows
    }


def _save(store: EventStore, state: AlertState, now: dt.datetime) -> None:
    values = {
        "level": state.level,
        "condition_since": state.condition_since,
        "level_since": state.level_since,
        "last_ok_at": state.last_ok_at,
        "notified_at": state.notified_at,
        "summary": (state.summary or "")[:500] or None,
        "detail": state.detail,
        "last_error": (state.last_error or "")[:500] or None,
        "updated_at": now,
    }
    with store.engine.begin() as conn:
        updated = conn.execute(
            monitoring_alerts.update().where(monitoring_alerts.c.key == state.key).values(**values)
        ).rowcount
        if not updated:
            conn.execute(monitoring_alerts.insert().values(key=state.key, **values))


def target_level(signal: Signal, state: AlertState, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """The level to announce and the condition's start (None when the condition is off)."""
    if signal.level <= 0:
        return 0, None
    start = signal.since
    if start is not None and state.last_ok_at is not None and start < state.last_ok_at:
        start = state.last_ok_at  # a stale "since" (e.g. a callback older than the last good check)
    since = min([t for t in (state.condition_since, start) if t is not None], default=now)
    held = now - since
    if signal.grace and held <= signal.grace:
        return 0, since
    level = signal.level
    if level == 1 and signal.escalate_after is not None and held - signal.grace >= signal.escalate_after:
        level = 2
    return level, since


def evaluate(store: EventStore, email: Any, signals: Iterable[Signal], now: dt.datetime | None = None) -> list[Transition]:
    """Apply ``signals``; send one e-mail per level change; return the changes."""
    now = now or utcnow()
    signals = list(signals)
    states = load(store, [s.key for s in signals])
    out: list[Transition] = []
    for signal in signals:
        state = states.get(signal.key) or AlertState(signal.key)
        level, since = target_level(signal, state, now)
        state.condition_since = since
        if signal.level <= 0:
            state.last_ok_at = now
        state.summary = signal.title
        if level != state.level:
            out.append(_announce(email, signal, state, level, now))
        _save(store, state, now)
    return out


def _announce(email: Any, signal: Signal, state: AlertState, level: int, now: dt.datetime) -> Transition:
    previous = state.level
    told = list(state.detail.get("notified", []))
    if signal.recipients:
        new_addresses = list(signal.recipients)
    else:
        new_addresses = [thresholds.escalation_address(level)] if level else []
    if level > previous:
        recipients = new_addresses
    else:  # better or recovered: whoever was told of the problem hears it is over
        recipients = list(dict.fromkeys([*new_addresses, *told]))
    subject, text = compose(signal, state, previous, level, now)
    transition = Transition(signal.key, previous, level, recipients, subject, sent=False)
    try:
        if recipients:
            email.send_alert(recipients, subject, text)
    except ActionError as err:
        transition.error = f"{err.error_class}: {err.message}"
        state.last_error = transition.error
        log.warning("alert %s (level %s → %s) not sent: %s; retried on the next check", signal.key, previous, level,
                    transition.error)
        return transition
    transition.sent = True
    state.level = level
    state.level_since = now
    state.notified_at = now
    state.last_error = None
    state.detail = {"notified": list(dict.fromkeys([*told, *recipients])) if level else []}
    log.info("alert %s: level %s → %s, e-mail to %d recipient(s)", signal.key, previous, level, len(recipients))
    return transition


# -- wording ---------------------------------------------------------------------------


def local(when: dt.datetime | None) -> str:
    if when is None:
        return "-"
    return when.astimezone(SAO_PAULO).strftime("%d/%m/%Y %H:%M (horário de São Paulo)")


def duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} dias"


def level_tag(level: int) -> str:
    if level >= 3:
        return "CRÍTICO nível 3 (Gestão)"
    if level == 2:
        return "RECORRENTE nível 2 (Desenvolvimento)"
    return "ALERTA nível 1 (Operação)"


def compose(signal: Signal, state: AlertState, previous: int, level: int, now: dt.datetime) -> tuple[str, str]:
    since = state.condition_since
    if level == 0:
        subject = f"[Carinho] Normalizado: {signal.title}"
        began = state.level_since or since
        head = [f"Situação normalizada: {signal.title}.",
                f"Estava em nível {previous} ({thresholds.LEVEL_NAMES[previous]})"
                + (f" desde {local(began)}, por {duration(now - began)}." if began else ".")]
    elif level > previous:
        subject = f"[Carinho] {level_tag(level)}: {signal.title}"
        head = [f"{level_tag(level)}: {signal.title}."]
        if level == 2 and previous == 1:
            head.append("A condição continua após o primeiro alerta: falha recorrente, escalonado para Desenvolvimento.")
    else:
        subject = f"[Carinho] Melhorou para nível {level}: {signal.title}"
        head = [f"Melhorou de nível {previous} para nível {level} ({thresholds.LEVEL_NAMES[level]}): {signal.title}."]
    body = [*head, "", *signal.lines]
    if level and since is not None:
        body += ["", f"Condição desde: {local(since)} (há {duration(now - since)})"]
    body += [f"Verificado em: {local(now)}"]
    if signal.link:
        body += ["", f"Dagster: {signal.link}"]
    body += ["", "Alerta automático do hub de integrações Carinho. Um novo e-mail só é enviado quando o nível mudar."]
    return subject, "\n".join(body) + "\n"
