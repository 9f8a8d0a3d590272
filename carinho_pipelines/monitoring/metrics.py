"""The §7 metrics, computed from the event store and the Dagster instance (the same
storage the UI shows). Pure reads, no side effects: the relay's ``/status`` and
``/metrics``, the alert sensor and the daily checklist all call :func:`snapshot`.

Definitions (one place):

- **events pending**: events received and due but not finished — not yet dispatched
  (no run) plus those whose run is queued or running. Filtered and delayed (not yet
  due) events are not pending.
- **retry backlog**: actions waiting for another attempt — failed actions of runs still
  in progress (op retries in backoff), WhatsApp messages held in the outbox, and
  re-executions queued or running on ``integrations-retry``.
- **DLQ**: failed runs whose ``carinho/dlq`` tag is ``open`` (archived and replayed
  ones are not counted — the PHP module counted archived items and its alert never
  cleared).
- **error rate**: failed / finished hub runs (event and sync runs) that finished in the
  last hour, in percent.
- per destination: **action outcomes** — actions of events (one per op and event, the
  ledger's final word) that succeeded or failed, last updated in the window; and each
  destination's **circuit breaker** state.
- per queue: **wait** (due → run started) and **processing** (due → run finished, runs
  that succeeded), p50/p95 over the runs finished in the last hour, against the queue's
  SLA; "due" is when the event was received (or became due, for delayed events), or
  when the run was created for re-executions and syncs.

No dagster import at module level: the relay imports this module.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from carinho_pipelines.destinations import breakers
from carinho_pipelines.kernel import catalogue, settings, tags
from carinho_pipelines.kernel.queues import QUEUES, RETRY
from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import event_actions, events, whatsapp_outbox

from . import thresholds
from .thresholds import OK, THRESHOLDS

#: destinations of the catalogue's actions (the hub's own actions are not a destination)
DESTINATIONS: tuple[str, ...] = tuple(sorted({a.destination for e in catalogue.CATALOGUE.values() for a in e.actions}
                                             - {"hub"}))
#: action name → destination (an action name means the same call in every event type)
ACTION_DESTINATION: dict[str, str] = {a.name: a.destination for e in catalogue.CATALOGUE.values() for a in e.actions}
#: destinations with a circuit breaker (as /health/detailed lists them)
BREAKER_DESTINATIONS: tuple[str, ...] = (*settings.SYSTEMS, "email")
#: ledger statuses counted as a success / a failure of the destination
OUTCOMES = {"succeeded": "succeeded", "skipped": "succeeded", "failed": "failed"}

#: at most this many runs are read per query (far above the expected hourly volume)
RUN_SCAN_LIMIT = 20000
_CHUNK = 1000


@dataclass
class Metric:
    name: str
    label: str
    value: float | None
    level: str
    alert: float
    critical: float
    unit: str
    samples: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueueStats:
    queue: str
    sla_seconds: int
    pending: int = 0
    oldest_pending_seconds: float | None = None
    samples: int = 0
    wait_p50: float | None = None
    wait_p95: float | None = None
    processing_samples: int = 0
    processing_p50: float | None = None
    processing_p95: float | None = None
    level: str = OK


@dataclass
class Snapshot:
    at: dt.datetime
    metrics: dict[str, Metric]
    queues: dict[str, QueueStats]
    #: False when the relay has no Dagster instance (DAGSTER_HOME unset): run-based values are None
    dagster: bool = True
    #: destination → {"succeeded": n, "failed": n}: action outcomes in the window
    actions: dict[str, dict[str, int]] = field(default_factory=dict)
    #: destination → breaker state (closed / open / half_open)
    breakers: dict[str, str] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return thresholds.worst([m.level for m in self.metrics.values()] + [q.level for q in self.queues.values()])

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "level": self.level,
            "dagster": self.dagster,
            "metrics": {k: asdict(v) for k, v in self.metrics.items()},
            "queues": {k: asdict(v) for k, v in self.queues.items()},
            "actions": self.actions,
            "breakers": self.breakers,
        }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _ts(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return as_utc(value)
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


def _hub_run(run: Any) -> bool:
    return tags.EVENT_ID in run.tags or tags.SYNC in run.tags


def snapshot(store: EventStore, instance: Any | None, now: dt.datetime | None = None) -> Snapshot:
    """Every §7 metric with its level, and every queue's size and times."""
    now = now or utcnow()
    queues = {name: QueueStats(name, q.sla_seconds) for name, q in QUEUES.items()}

    # -- the store: events not yet dispatched, held WhatsApp messages ------------------
    with store.engine.connect() as conn:
        undispatched = conn.execute(
            sa.select(events.c.queue, sa.func.count(), sa.func.min(events.c.available_at))
            .where(events.c.run_id.is_(None), events.c.filtered_reason.is_(None), events.c.available_at <= now)
            .group_by(events.c.queue)
        ).all()
        held_messages = conn.execute(
            sa.select(sa.func.count()).select_from(whatsapp_outbox).where(whatsapp_outbox.c.status == "pending")
        ).scalar_one()
        outcomes = conn.execute(
            sa.select(event_actions.c.action, event_actions.c.status, sa.func.count())
            .where(event_actions.c.updated_at >= now - thresholds.WINDOW, event_actions.c.updated_at <= now)
            .group_by(event_actions.c.action, event_actions.c.status)
        ).all()
    actions = {d: {"succeeded": 0, "failed": 0} for d in DESTINATIONS}
    for action, status, count in outcomes:
        destination, outcome = ACTION_DESTINATION.get(action), OUTCOMES.get(status)
        if destination in actions and outcome:
            actions[destination][outcome] += count
    breaker_states = breakers.states(store, BREAKER_DESTINATIONS)
    not_dispatched = 0
    for queue, count, oldest in undispatched:
        not_dispatched += count
        stats = queues.setdefault(queue, QueueStats(queue, QUEUES[queue].sla_seconds if queue in QUEUES else 0))
        stats.pending += count
        age = (now - as_utc(oldest)).total_seconds() if oldest is not None else None
        if age is not None and (stats.oldest_pending_seconds is None or age > stats.oldest_pending_seconds):
            stats.oldest_pending_seconds = round(age, 1)

    if instance is None:
        metrics = {
            "events_pending": _metric("events_pending", None, detail={"not_dispatched": not_dispatched}),
            "retry_backlog": _metric("retry_backlog", None, detail={"held_whatsapp_messages": held_messages}),
            "dlq_open": _metric("dlq_open", None),
            "error_rate": _metric("error_rate", None),
        }
        return Snapshot(now, metrics, queues, dagster=False, actions=actions, breakers=breaker_states)

    from dagster import DagsterRunStatus, RunsFilter
    from carinho_pipelines.platform.dagster_internals import IN_PROGRESS_RUN_STATUSES

    # -- runs queued or in progress ------------------------------------------------------
    waiting_statuses = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_RUN_STATUSES]
    active = [r for r in instance.get_run_records(filters=RunsFilter(statuses=waiting_statuses), limit=RUN_SCAN_LIMIT)
              if _hub_run(r.dagster_run)]
    event_runs_active = 0
    retry_runs_active = 0
    for record in active:
        run = record.dagster_run
        queue = run.tags.get(tags.QUEUE)
        if tags.EVENT_ID in run.tags:
            event_runs_active += 1
        if queue == RETRY:
            retry_runs_active += 1
        if queue in queues:
            stats = queues[queue]
            stats.pending += 1
            age = (now - _ts(record.create_timestamp)).total_seconds()
            if stats.oldest_pending_seconds is None or age > stats.oldest_pending_seconds:
                stats.oldest_pending_seconds = round(age, 1)

    active_ids = [r.dagster_run.run_id for r in active]
    failed_actions_in_backoff = 0
    with store.engine.connect() as conn:
        for chunk in _chunks(active_ids):
            failed_actions_in_backoff += conn.execute(
                sa.select(sa.func.count()).select_from(event_actions)
                .where(event_actions.c.status == "failed", event_actions.c.run_id.in_(chunk))
            ).scalar_one()

    dlq_open = instance.get_runs_count(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={tags.DLQ: "open"}))

    # -- runs finished in the window: error rate and queue times --------------------------
    cutoff = now - thresholds.WINDOW
    finished = [
        r for r in instance.get_run_records(
            filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE], updated_after=cutoff),
            limit=RUN_SCAN_LIMIT,
        )
        if _hub_run(r.dagster_run) and r.end_time is not None and cutoff <= _ts(r.end_time) <= now
    ]
    failed = sum(1 for r in finished if r.dagster_run.status == DagsterRunStatus.FAILURE)
    error_rate = round(100.0 * failed / len(finished), 2) if finished else None

    event_ids = sorted({int(r.dagster_run.tags[tags.EVENT_ID]) for r in finished
                        if tags.EVENT_ID in r.dagster_run.tags and r.dagster_run.tags[tags.EVENT_ID].isdigit()})
    due_at: dict[int, tuple[dt.datetime, str]] = {}
    with store.engine.connect() as conn:
        for chunk in _chunks(event_ids):
            for row in conn.execute(
                sa.select(events.c.id, events.c.received_at, events.c.available_at, events.c.queue)
                .where(events.c.id.in_(chunk))
            ):
                due_at[row.id] = (max(as_utc(row.received_at), as_utc(row.available_at)), row.queue)
    waits: dict[str, list[float]] = {}
    processing: dict[str, list[float]] = {}
    for record in finished:
        run = record.dagster_run
        queue = run.tags.get(tags.QUEUE)
        reference = _ts(record.create_timestamp)
        event_id = run.tags.get(tags.EVENT_ID)
        if event_id and event_id.isdigit() and run.parent_run_id is None and int(event_id) in due_at:
            reference, event_queue = due_at[int(event_id)]
            queue = queue or event_queue
        if queue not in queues or reference is None:
            continue
        if record.start_time is not None:
            waits.setdefault(queue, []).append(max(0.0, (_ts(record.start_time) - reference).total_seconds()))
        if run.status == DagsterRunStatus.SUCCESS:
            processing.setdefault(queue, []).append(max(0.0, (_ts(record.end_time) - reference).total_seconds()))
    for name, stats in queues.items():
        w, p = waits.get(name, []), processing.get(name, [])
        stats.samples, stats.processing_samples = len(w), len(p)
        stats.wait_p50, stats.wait_p95 = percentile(w, 50), percentile(w, 95)
        stats.processing_p50, stats.processing_p95 = percentile(p, 50), percentile(p, 95)
        stats.level = thresholds.queue_level(stats.processing_p95, stats.sla_seconds, stats.processing_samples)

    metrics = {
        "events_pending": _metric(
            "events_pending", not_dispatched + event_runs_active,
            detail={"not_dispatched": not_dispatched, "runs_queued_or_running": event_runs_active},
        ),
        "retry_backlog": _metric(
            "retry_backlog", failed_actions_in_backoff + held_messages + retry_runs_active,
            detail={"failed_actions_in_backoff": failed_actions_in_backoff, "held_whatsapp_messages": held_messages,
                    "retry_queue_runs": retry_runs_active},
        ),
        "dlq_open": _metric("dlq_open", dlq_open),
        "error_rate": _metric("error_rate", error_rate, samples=len(finished), detail={"failed": failed}),
    }
    return Snapshot(now, metrics, queues, actions=actions, breakers=breaker_states)


def _metric(name: str, value: float | None, samples: int | None = None, detail: dict | None = None) -> Metric:
    t = THRESHOLDS[name]
    return Metric(name, t.label, value, t.level(value, samples), t.alert, t.critical, t.unit, samples, detail or {})
