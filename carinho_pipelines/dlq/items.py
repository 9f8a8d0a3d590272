"""The dead-letter queue *is* the set of failed runs whose ``carinho/dlq`` tag is
``open`` (ARCHITECTURE.md "DLQ = failed runs"). This module reads and annotates them
in the Dagster instance — the same storage the UI shows — so the API and the UI can
never disagree. Launching re-executions goes through Dagster's GraphQL API
(``carinho_pipelines.platform.graphql_client``), the same mutation as the UI's button.

No dagster import at module level: the relay reads the DLQ through this module and
starts without Dagster; each function imports what it uses of Dagster when it runs (the
failure hook, which must be a Dagster object, is :mod:`.hooks`)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import sqlalchemy as sa

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.errors import ERROR_CLASSES, UNAVAILABLE
from carinho_pipelines.kernel.privacy import mask_response
from carinho_pipelines.kernel.queues import QUEUES, RETRY
from carinho_pipelines.kernel.settings import current
from carinho_pipelines.kernel.sync_registry import SYNCS
from carinho_pipelines.platform import graphql_client
from carinho_pipelines.store.tables import dlq_replays

if TYPE_CHECKING:
    from dagster import DagsterInstance, DagsterRun

OPEN, REPLAYED, ARCHIVED = tags.DLQ_OPEN, tags.DLQ_REPLAYED, tags.DLQ_ARCHIVED
#: jobs whose failed runs are DLQ items besides event and sync runs
DLQ_JOBS = frozenset({"flush_whatsapp_outbox"})
#: how many runs a listing examines at most
SCAN_LIMIT = 2000
#: Dagster's ``add_run_tags`` reads the run, merges and writes the whole tag set back, so
#: two writers on one run at once lose one's change (seen: the failure sensor annotating
#: a parent while the re-drive sensor marked it replayed put it back to "open"). The DLQ
#: sensors run as threads of one daemon process: every read-modify-write of DLQ tags here
#: holds this lock and reads the run afresh inside it. (The failure hook runs in a worker
#: process, once, when the run fails; it is not serialised with these.)
TAG_WRITES = threading.RLock()
#: automatic re-executions of one item at most (the re-drive sensor); then a person decides
MAX_AUTO_REDRIVES = 5


def redrive_interval_seconds() -> int:
    """``CARINHO_REDRIVE_INTERVAL_SECONDS``: how often the re-drive sensor looks (read when
    the code location loads, and by the relay when it describes the next attempt)."""
    return current().redrive_interval_seconds


def item_destinations(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    """The destinations a DLQ item waits for: its failed destinations; for a sync (which
    records failed items, not destinations) every system it calls."""
    tagged = run.tags.get(tags.FAILED_DESTINATIONS)
    destinations = [d for d in (tagged.split(",") if tagged else failure_of(instance, run.run_id).destinations) if d]
    sync = run.tags.get(tags.SYNC)
    if sync in SYNCS:
        destinations = sorted({*destinations, *SYNCS[sync].systems})
    return destinations


def in_scope(run: DagsterRun) -> bool:
    """Is a failure of this run a DLQ item? Event runs, sync runs, the outbox flush;
    not the hub's own housekeeping jobs (checklist, retention, alerts)."""
    return tags.EVENT_ID in run.tags or tags.SYNC in run.tags or run.job_name in DLQ_JOBS


@dataclass(frozen=True)
class Failure:
    failed_ops: list[str]
    error_class: str
    error_message: str
    destinations: list[str]
    responses: dict[str, Any]
    attempts: int
    failed_at: dt.datetime | None


def _ts(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc) if value else None


def _meta(event: Any) -> dict[str, Any]:
    data = getattr(event.dagster_event.event_specific_data, "user_failure_data", None)
    if data is None or not data.metadata:
        return {}
    return {k: v.value for k, v in data.metadata.items()}


#: exception classes of a connection that broke under the hub itself: its database
#: (SQLAlchemy, psycopg2, sqlite3) or its broker (kombu, redis) restarting
CONNECTION_ERRORS = frozenset({"OperationalError", "InterfaceError", "DisconnectionError", "ConnectionError"})


def hub_unreachable(error: Any) -> bool:
    """Did a step fail because the hub's own database or broker was unreachable (not
    because of a destination, nor a bug)? An error outside the action's own call (the
    run writing its event log while PostgreSQL restarts) has no error class of its own;
    it is safe to re-drive, as a destination's outage is."""
    while error is not None:
        if error.cls_name in CONNECTION_ERRORS:
            return True
        error = error.cause or error.context
    return False


def failure_of(instance: DagsterInstance, run_id: str) -> Failure:
    """What failed in a run: the ops, the error class, the downstream response."""
    from dagster import DagsterEventType

    records = instance.all_logs(
        run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY,
                         DagsterEventType.RUN_FAILURE}
    )
    failed_ops: list[str] = []
    classes: list[str] = []
    destinations: list[str] = []
    responses: dict[str, Any] = {}
    messages: list[str] = []
    retries = 0
    failed_at = None
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_UP_FOR_RETRY:
            retries += 1
            continue
        if event.event_type == DagsterEventType.RUN_FAILURE:
            failed_at = _ts(record.timestamp)
            if not messages:
                messages.append(event.message or "run failed")
            continue
        step = event.step_key or "?"
        failed_ops.append(step)
        meta = _meta(record)
        error_class = meta.get("error_class")
        if error_class is None and meta.get("error_classes"):
            error_class = str(meta["error_classes"]).split(",")[0].strip()
        error = event.event_specific_data.error if event.event_specific_data else None
        if error_class not in ERROR_CLASSES:
            error_class = UNAVAILABLE if hub_unreachable(error) else "error"
        classes.append(error_class)
        if meta.get("destination"):
            destinations.append(str(meta["destination"]))
        if "response" in meta:
            responses[step] = meta["response"]
        description = getattr(event.event_specific_data.user_failure_data, "description", None) if getattr(
            event.event_specific_data, "user_failure_data", None) else None
        # Dagster wraps what the op raised ("Error occurred while executing op"): the
        # cause is what a person needs to read
        while error is not None and error.cls_name == "DagsterExecutionStepExecutionError" and error.cause:
            error = error.cause
        messages.insert(0, description or (error.message.strip() if error else event.message or "step failed"))
    # the worst class decides: a person must look unless every failure is "unavailable".
    # A run that failed with no op failing (its worker died, the launch failed, run
    # monitoring gave up on it) is an infrastructure failure: safe to re-drive.
    if not classes or all(c == "unavailable" for c in classes):
        error_class = "unavailable"
    else:
        error_class = next((c for c in ("invalid", "rejected", "error") if c in classes), "error")
    return Failure(
        failed_ops=sorted(set(failed_ops)),
        error_class=error_class,
        error_message=(messages[0] if messages else "")[:1000],
        destinations=sorted(set(destinations)),
        responses=mask_response(responses),
        attempts=retries + max(1, len(failed_ops)),
        failed_at=failed_at,
    )


def annotate(instance: DagsterInstance, run: DagsterRun) -> Failure:
    """Put a failed run in the DLQ: ``carinho/dlq=open`` (unless a person already
    replayed or archived it) and what failed, so the UI can filter the DLQ by error
    class and the listing does not re-read event logs. Called by the failure hook of
    every in-scope job as soon as an op fails, and by ``dlq_failure_sensor`` for every
    failed run (also those that failed without an op failing)."""
    failure = failure_of(instance, run.run_id)
    with TAG_WRITES:
        run = instance.get_run_by_id(run.run_id) or run
        _annotate(instance, run, failure)
    return failure


def _annotate(instance: DagsterInstance, run: DagsterRun, failure: Failure) -> None:
    annotations = {
        tags.ERROR_CLASS: failure.error_class,
        tags.FAILED_OPS: ",".join(failure.failed_ops)[:200],
        tags.FAILED_DESTINATIONS: ",".join(failure.destinations)[:200],
    }
    empty = [k for k, v in annotations.items() if not v]  # never an empty chip in the UI
    annotations = {k: v for k, v in annotations.items() if v}
    state = run.tags.get(tags.DLQ)
    if state is None:
        annotations[tags.DLQ] = OPEN
    else:
        parent_id = run.parent_run_id or run.get_parent_run_id()
        parent = instance.get_run_by_id(parent_id) if parent_id else None
        if parent is not None and state in (REPLAYED, ARCHIVED) and all(
            run.tags.get(t) == parent.tags.get(t) for t in (tags.DLQ, tags.ARCHIVED_AT, tags.REPLAYED_BY)
        ):
            # a UI re-execution copies its parent's tags: its own failure is a new open item
            annotations[tags.DLQ] = OPEN
            empty += [tags.ARCHIVED_BY, tags.ARCHIVED_AT, tags.ARCHIVE_REASON, tags.REPLAYED_BY]
    instance.add_run_tags(run.run_id, annotations)
    remove_run_tags(instance, run.run_id, empty)


def clear_failure_tags(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    """A run that succeeded (or was cancelled) is not in the DLQ: drop the DLQ and error tags it carries
    (a re-execution from the Dagster UI copies them from its failed parent; runs
    launched before the DLQ tag meant the DLQ carry ``open``). Returns the keys removed.
    A run that failed after it succeeded (run monitoring, or a person, failing it once
    its last op was done) keeps them: it is in the DLQ now."""
    from dagster import DagsterRunStatus

    with TAG_WRITES:
        run = instance.get_run_by_id(run.run_id) or run
        if run.status == DagsterRunStatus.FAILURE:
            return []
        found = [k for k in tags.FAILURE_TAGS if k in run.tags]
        remove_run_tags(instance, run.run_id, found)
    return found


def _sql_run_storage(instance: DagsterInstance) -> Any:
    from carinho_pipelines.platform.dagster_internals import SqlRunStorage

    storage = instance.run_storage
    inner = getattr(storage, "_storage", None)  # LegacyRunStorage over a composite storage
    if inner is not None and hasattr(inner, "run_storage"):
        storage = inner.run_storage
    if not isinstance(storage, SqlRunStorage):
        raise TypeError(f"cannot remove run tags from a {type(storage).__name__}")
    return storage


def remove_run_tags(instance: DagsterInstance, run_id: str, keys: Iterable[str]) -> None:
    """Delete tags from a run. Dagster only adds or changes tags (``add_run_tags``), and
    a tag set to ``""`` still shows in the UI as an empty chip; this is the same update
    ``add_run_tags`` makes (the run's serialized body and its tag rows), in reverse."""
    from carinho_pipelines.platform.dagster_internals import RunTagsTable, RunsTable, get_current_datetime, serialize_value

    run = instance.get_run_by_id(run_id)
    gone = [k for k in keys if run is not None and k in run.tags]
    if not gone:
        return
    kept = {k: v for k, v in run.tags.items() if k not in gone}
    with _sql_run_storage(instance).connect() as conn:
        conn.execute(
            RunsTable.update().where(RunsTable.c.run_id == run_id)
            .values(run_body=serialize_value(run.with_tags(kept)), update_timestamp=get_current_datetime())
        )
        conn.execute(RunTagsTable.delete().where(sa.and_(RunTagsTable.c.run_id == run_id, RunTagsTable.c.key.in_(gone))))


def migrate_tags(instance: DagsterInstance, batch: int = 500) -> dict[str, int]:
    """One-off: make existing runs follow "the DLQ tag means the DLQ". Runs that did not
    fail lose ``carinho/dlq`` and the error tags; failed in-scope runs without the tag get
    it (``open``); empty error tags are removed. Idempotent."""
    from dagster import DagsterRunStatus

    counts = {"examined": 0, "cleared": 0, "opened": 0, "emptied": 0}
    cursor = None
    while True:
        runs = instance.get_runs(limit=batch, cursor=cursor)
        if not runs:
            return counts
        for run in runs:
            counts["examined"] += 1
            if run.status == DagsterRunStatus.FAILURE:
                if in_scope(run) and tags.DLQ not in run.tags:
                    annotate(instance, run)
                    counts["opened"] += 1
                    continue
                empty = [k for k in tags.FAILURE_TAGS if run.tags.get(k) == ""]
                if empty:
                    remove_run_tags(instance, run.run_id, empty)
                    counts["emptied"] += 1
            elif run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.CANCELED):
                if clear_failure_tags(instance, run):
                    counts["cleared"] += 1
        cursor = runs[-1].run_id


def kind_of(run: DagsterRun) -> str:
    return "sync" if tags.SYNC in run.tags else "event"


def run_group(instance: DagsterInstance, run: DagsterRun) -> list[DagsterRun]:
    from dagster import RunsFilter

    root = run.root_run_id or run.get_root_run_id() or run.run_id
    group = list(instance.get_runs(filters=RunsFilter(tags={tags.ROOT_RUN_ID: root})))
    root_run = instance.get_run_by_id(root)
    return [r for r in [root_run, *group] if r is not None]


def item(instance: DagsterInstance, run: DagsterRun, *, run_url: str | None = None) -> dict[str, Any]:
    """A DLQ item (CONTRACTS §10)."""
    from dagster import DagsterRunStatus

    record = instance.get_run_record_by_id(run.run_id)
    failure = failure_of(instance, run.run_id)
    group = run_group(instance, run)
    failed = [r for r in group if r.status == DagsterRunStatus.FAILURE]
    attempts = sum(failure_of(instance, r.run_id).attempts for r in failed if r.run_id != run.run_id) + failure.attempts
    first = min((instance.get_run_record_by_id(r.run_id).end_time or 0 for r in failed), default=None)
    last = record.end_time if record else None
    event_id = run.tags.get(tags.EVENT_ID)
    return {
        "id": run.run_id,
        "kind": kind_of(run),
        "event_id": int(event_id) if event_id and event_id.isdigit() else None,
        "event_type": run.tags.get(tags.EVENT_TYPE),
        "sync": run.tags.get(tags.SYNC),
        "source": run.tags.get(tags.SOURCE),
        "queue": run.tags.get(tags.QUEUE),
        "job": run.job_name,
        "failed_ops": failure.failed_ops,
        "error_class": failure.error_class,
        "error_message": failure.error_message,
        "attempts": attempts,
        "first_failed_at": _iso(_ts(first)) if first else _iso(_ts(last)),
        "last_failed_at": _iso(_ts(last)),
        "status": run.tags.get(tags.DLQ, OPEN),
        "parent_run_id": run.parent_run_id or run.get_parent_run_id(),
        "root_run_id": run.root_run_id or run.get_root_run_id(),
        "run_url": run_url,
        "archived": {"by": run.tags.get(tags.ARCHIVED_BY), "at": run.tags.get(tags.ARCHIVED_AT), "reason": run.tags.get(tags.ARCHIVE_REASON)}
        if run.tags.get(tags.DLQ) == ARCHIVED else None,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def failed_runs(
    instance: DagsterInstance,
    *,
    statuses: Iterable[str] = (OPEN,),
    event_type: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    error_class: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = SCAN_LIMIT,
) -> list[DagsterRun]:
    """Failed runs in the DLQ (newest first) matching the filters."""
    from dagster import DagsterRunStatus, RunsFilter

    wanted: dict[str, Any] = {tags.DLQ: list(statuses)}
    if event_type:
        wanted[tags.EVENT_TYPE] = event_type
    if source:
        wanted[tags.SOURCE] = source
    runs = instance.get_runs(
        filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags=wanted, created_after=since, created_before=until),
        limit=limit,
    )
    replayed = replayed_ids(instance, [r.run_id for r in runs])
    out = []
    for run in runs:
        if run.run_id in replayed and run.tags.get(tags.DLQ) == OPEN:
            continue  # re-executed (from the UI or the API): its newest re-execution is the item
        if kind and kind_of(run) != kind:
            continue
        if error_class:
            tagged = run.tags.get(tags.ERROR_CLASS) or failure_of(instance, run.run_id).error_class
            if tagged != error_class:
                continue
        out.append(run)
    return out


def replayed_ids(instance: DagsterInstance, run_ids: list[str]) -> set[str]:
    """The runs among ``run_ids`` that have a re-execution (whoever launched it)."""
    from dagster import RunsFilter

    found: set[str] = set()
    for start in range(0, len(run_ids), 200):
        chunk = run_ids[start : start + 200]
        if chunk:
            for child in instance.get_runs(filters=RunsFilter(tags={tags.PARENT_RUN_ID: chunk})):
                found.add(child.tags[tags.PARENT_RUN_ID])
    return found


def reconcile(instance: DagsterInstance, store: Any = None, limit: int = 200) -> list[str]:
    """Tag as ``replayed`` the open items someone re-executed from the Dagster UI, so
    the UI's tags and the API agree, and say who launched those re-executions (the UI
    copied the parent's ``carinho/launched_by``); returns the parents' ids. Also takes
    the DLQ and error tags off the re-executions that succeeded (or were cancelled):
    the UI copied them from the failed parent."""
    from dagster import DagsterRunStatus, RunsFilter

    finished = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.CANCELED],
                                                    tags={tags.DLQ: [OPEN, REPLAYED, ARCHIVED]}), limit=limit)
    for run in finished:
        clear_failure_tags(instance, run)
    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE], tags={tags.DLQ: OPEN}), limit=limit)
    ids = sorted(replayed_ids(instance, [r.run_id for r in runs]))
    if store is not None and ids:
        # an item :func:`replay` claimed is being re-executed by the API, the CLI or the
        # re-drive, which marks it replayed once the launch returns: not the UI's
        with store.engine.connect() as conn:
            ours = set(conn.execute(sa.select(dlq_replays.c.parent_run_id)
                                    .where(dlq_replays.c.parent_run_id.in_(ids))).scalars())
        ids = [run_id for run_id in ids if run_id not in ours]
    for run_id in ids:
        mark_replayed(instance, run_id, "dagster-ui")
        for child in instance.get_runs(filters=RunsFilter(tags={tags.PARENT_RUN_ID: run_id})):
            with TAG_WRITES:
                instance.add_run_tags(child.run_id, {tags.LAUNCHED_BY: tags.BY_DAGSTER_UI})
    return ids


def stats(instance: DagsterInstance, now: dt.datetime) -> dict[str, Any]:
    runs = failed_runs(instance)
    by_type: dict[str, int] = {}
    by_class: dict[str, int] = {}
    day = week = 0
    for run in runs:
        label = run.tags.get(tags.EVENT_TYPE) or f"sync:{run.tags.get(tags.SYNC, run.job_name)}"
        by_type[label] = by_type.get(label, 0) + 1
        cls = run.tags.get(tags.ERROR_CLASS) or failure_of(instance, run.run_id).error_class
        by_class[cls] = by_class.get(cls, 0) + 1
        record = instance.get_run_record_by_id(run.run_id)
        ended = _ts(record.end_time) if record else None
        if ended and now - ended <= dt.timedelta(days=1):
            day += 1
        if ended and now - ended <= dt.timedelta(days=7):
            week += 1
    archived = len(failed_runs(instance, statuses=(ARCHIVED,)))
    return {"total": len(runs), "last_24h": day, "last_7d": week, "archived": archived,
            "by_type": by_type, "by_error_class": by_class}


def archive(instance: DagsterInstance, run_id: str, reason: str, who: str, now: dt.datetime) -> None:
    with TAG_WRITES:
        instance.add_run_tags(run_id, {tags.DLQ: ARCHIVED, tags.ARCHIVED_BY: who[:64], tags.ARCHIVED_AT: now.isoformat(),
                                       tags.ARCHIVE_REASON: reason[:500]})


def mark_replayed(instance: DagsterInstance, run_id: str, who: str) -> None:
    with TAG_WRITES:
        instance.add_run_tags(run_id, {tags.DLQ: REPLAYED, tags.REPLAYED_BY: who[:64]})


def reexecution_tags(parent: DagsterRun, launched_by: str) -> dict[str, str]:
    """Tags of a re-execution: the parent's, without its DLQ state and failure
    annotations (a re-execution that succeeds carries none; one that fails gets its
    own), on the retry queue, saying who launched it."""
    from carinho_pipelines.platform.dagster_internals import TAGS_TO_MAYBE_OMIT_ON_RETRY

    inherited = {k: v for k, v in parent.tags.items()
                 if k not in tags.FAILURE_TAGS and k not in TAGS_TO_MAYBE_OMIT_ON_RETRY}
    return {
        **inherited,
        tags.QUEUE: RETRY,
        tags.CELERY_QUEUE: RETRY,
        tags.PRIORITY: str(QUEUES[RETRY].priority),
        tags.LAUNCHED_BY: launched_by[:64],
    }


# -- replays -----------------------------------------------------------------------------


def reexecution_strategy(instance: DagsterInstance, parent: DagsterRun) -> str:
    """``FROM_FAILURE`` (the failed and unfinished ops run again), unless the run failed
    after every op had succeeded (its run-success event not written while PostgreSQL
    restarted, its worker killed right then): Dagster finds nothing to re-execute from
    failure in it, so ``ALL_STEPS``, and the ledger skips every action already done."""
    from dagster import DagsterRunStatus

    from carinho_pipelines.platform.dagster_internals import KnownExecutionState

    if parent.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        return "FROM_FAILURE"  # Dagster answers why it cannot
    steps, _known = KnownExecutionState.build_resume_retry_reexecution(instance, parent)
    return "FROM_FAILURE" if steps else "ALL_STEPS"


class ReplayError(Exception):
    """The re-execution could not be launched: Dagster's webserver is unavailable
    (``refused`` false: nothing else can be launched now either), or this item cannot
    be (``refused`` true: it is being launched already, Dagster refused it; the next
    item may go)."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def replay(store: Any, instance: DagsterInstance, run_id: str, who: str, now: dt.datetime,
           launched_by: str | None = None) -> tuple[str, bool]:
    """Re-execute a DLQ item from failure on ``integrations-retry``; ``(child run id,
    already)``. Exactly one re-execution per item: the claim row is committed first.
    ``who`` goes to the parent's ``carinho/replayed_by``, ``launched_by`` (default
    ``who``) to the child's ``carinho/launched_by``."""
    with store.engine.begin() as conn:
        existing = conn.execute(sa.select(dlq_replays).where(dlq_replays.c.parent_run_id == run_id)).mappings().first()
        if existing is None:
            try:
                conn.execute(dlq_replays.insert().values(parent_run_id=run_id, requested_at=now, requested_by=who[:64]))
            except sa.exc.IntegrityError:
                existing = {"child_run_id": None}
    if existing is not None:
        child = existing["child_run_id"]
        if child is None:  # another request holds the claim and is launching it now
            raise ReplayError("a re-execution of this item is being launched", refused=True)
        return child, True
    try:
        parent = instance.get_run_by_id(run_id)
        if parent is None:
            raise graphql_client.LaunchFailed("RunNotFoundError", f"no run {run_id}")
        child = graphql_client.launch_reexecution(run_id, reexecution_tags(parent, launched_by or who),
                                                  use_parent_run_tags=False, strategy=reexecution_strategy(instance, parent))
    except (graphql_client.DagsterUnavailable, graphql_client.LaunchFailed) as exc:
        with store.engine.begin() as conn:
            conn.execute(dlq_replays.delete().where(dlq_replays.c.parent_run_id == run_id))
        raise ReplayError(str(exc), refused=isinstance(exc, graphql_client.LaunchFailed)) from exc
    with store.engine.begin() as conn:
        conn.execute(dlq_replays.update().where(dlq_replays.c.parent_run_id == run_id).values(child_run_id=child))
    mark_replayed(instance, run_id, who)
    return child, False


# -- a time window (dlq/recover.py re-executes it; the relay's dry run counts it) --------


def matching(instance: DagsterInstance, since: dt.datetime, until: dt.datetime, *,
             destination: str | None = None, event_type: str | None = None,
             error_class: str | None = None) -> list[DagsterRun]:
    """The open DLQ items that failed in ``[since, until]``, oldest first."""
    found = failed_runs(instance, event_type=event_type, error_class=error_class, since=since, until=until)
    if destination:
        found = [r for r in found if destination in _destinations(instance, r)]
    return sorted(found, key=lambda r: _created(instance, r))


def _destinations(instance: DagsterInstance, run: DagsterRun) -> list[str]:
    tagged = run.tags.get(tags.FAILED_DESTINATIONS)
    return tagged.split(",") if tagged else failure_of(instance, run.run_id).destinations


def _created(instance: DagsterInstance, run: DagsterRun) -> float:
    record = instance.get_run_record_by_id(run.run_id)
    return record.create_timestamp.timestamp() if record and record.create_timestamp else 0.0


def estimate(instance: DagsterInstance, since: dt.datetime, until: dt.datetime, **filters: Any) -> dict[str, Any]:
    """The dry run: how many items, and the oldest and the newest."""
    found = matching(instance, since, until, **filters)

    def brief(run: DagsterRun) -> dict[str, Any]:
        created = _created(instance, run)
        return {"id": run.run_id, "event_type": run.tags.get(tags.EVENT_TYPE), "sync": run.tags.get(tags.SYNC),
                "created_at": dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat() if created else None}

    return {"count": len(found), "oldest": brief(found[0]) if found else None,
            "newest": brief(found[-1]) if found else None}
