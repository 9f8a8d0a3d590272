"""One job per catalogued event type; one op per action; ``depends_on`` as edges.

Everything here is derived from :data:`carinho_pipelines.kernel.catalogue.CATALOGUE`.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    Failure,
    GraphDefinition,
    In,
    JobDefinition,
    MetadataValue,
    Nothing,
    OpDefinition,
    Out,
    Output,
    RetryRequested,
    in_process_executor,
)
from dagster import DependencyDefinition
from sqlalchemy.exc import OperationalError

from carinho_pipelines.destinations import breakers, limits, pauses, slots
from carinho_pipelines.kernel import tags
from carinho_pipelines.dlq.hooks import dlq_on_failure
from carinho_pipelines.kernel.settings import SYSTEMS
from carinho_pipelines.kernel.catalogue import CATALOGUE, Action, EventType
from carinho_pipelines.kernel.errors import ActionError
from carinho_pipelines.kernel.privacy import mask_payload
from carinho_pipelines.events.retries import MAX_RETRIES, retry_policy, wait_seconds

from . import ledger
from .actions import ActionContext, implementation


#: destinations behind a circuit breaker (WhatsApp has the outbox instead: a message
#: waits there, it never fails a run because Z-API is down)
BREAKER_DESTINATIONS = frozenset({*SYSTEMS, "email"})


def _resource_keys(action: Action) -> set[str]:
    keys = {"event_store"}
    if action.destination == "whatsapp":
        keys.add("zapi")
    elif action.destination != "hub":
        keys.add(action.destination)
    if action.name == "marketing_conversion":
        keys.add("marketing")
    return keys


def _wait_outside(context: Any, store, event_id: int, action: Action, cause: str, why: dict[str, Any]):
    """End the op without calling: the action waits in the ledger (``paused``) for
    ``cause`` (a paused destination, or one whose slots stayed busy), and
    paused_actions_sensor runs the event again when it can go. The run is tagged with
    what it waits for."""
    ledger.record_outcome(store, event_id, action.name, pauses.PAUSED,
                          {"status": pauses.PAUSED, "destination": action.destination,
                           "paused_destination": cause, **why}, context.run_id)
    current = context.instance.get_run_by_id(context.run_id).tags.get(tags.PAUSED, "")
    paused = sorted({*filter(None, current.split(",")), cause})
    context.instance.add_run_tags(context.run_id, {tags.PAUSED: ",".join(paused)})
    yield Output(None, metadata={"outcome": "paused", "destination": action.destination,
                                 **{k: str(v) for k, v in why.items()}})


def run_action(context: Any, action: Action):
    """The body of every action op: ledger check, the action, error classification."""
    event_id = int(context.run.tags[tags.EVENT_ID])
    store = context.resources.event_store.store
    prior = ledger.get_action(store, event_id, action.name)
    if prior is not None and prior.status in ledger.DONE:
        context.log.info(f"{action.name} already {prior.status} (run {prior.run_id}); not repeated")
        yield Output(None, metadata={"outcome": "already done", "status": prior.status, "in_run": prior.run_id or ""})
        return
    event = store.get_event(event_id)
    if event is None:
        raise Failure(f"event {event_id} not found in the event store", allow_retries=False)
    queue = event["queue"]
    if event.get("payload_purged_at"):
        raise Failure(f"event {event_id}'s payload was removed by retention", allow_retries=False)
    waiting = pauses.is_paused(store, action.destination)
    upstream = {d: (prior_dep.result or {}).get("paused_destination") for d in action.depends_on
                if (prior_dep := ledger.get_action(store, event_id, d)) is not None and prior_dep.status == pauses.PAUSED}
    if waiting or upstream:  # wait, without calling: resumed by paused_actions_sensor
        cause = action.destination if waiting else next(iter(upstream.values()))
        why = ({"reason": waiting["reason"], "until": waiting["until"]} if waiting else {"waits_for": sorted(upstream)})
        context.log.info(f"{action.name} waits: {action.destination} is paused" if waiting
                         else f"{action.name} waits for {', '.join(upstream)}")
        yield from _wait_outside(context, store, event_id, action, cause, why)
        return
    resources = {key: getattr(context.resources, key) for key in _resource_keys(action)}
    ctx = ActionContext(event=event, action=action, resources=resources, store=store, run_id=context.run_id, log=context.log)
    guarded = action.destination in BREAKER_DESTINATIONS
    if guarded and not breakers.allow(store, action.destination):
        err = ActionError("unavailable", f"circuit open: {action.destination} keeps failing", destination=action.destination)
        ledger.record_failure(store, event_id, action.name, err, context.run_id)
        # fail fast: no in-run retries while the destination is down; the DLQ re-drive
        # re-executes this run from failure once the destination is healthy again
        raise Failure(
            description=f"{action.name} → {action.destination}: unavailable: circuit open",
            metadata={"error_class": "unavailable", "destination": action.destination, "circuit": "open"},
            allow_retries=False,
        )
    priority = int(context.run.tags.get(tags.PRIORITY, "0"))
    with slots.slot(context.instance, action.destination, context.run_id, action.name, priority,
                    limits.SLOT_WAIT_SECONDS) as claimed:
        if not claimed:  # the destination's slots stay busy (a flood): wait outside the run
            outcome = None
        else:
            try:
                outcome = implementation(action)(ctx)
            except ActionError as err:
                ledger.record_failure(store, event_id, action.name, err, context.run_id)
                if guarded and err.retryable:
                    breakers.record_failure(store, err.destination if err.destination in BREAKER_DESTINATIONS else action.destination)
                metadata = {
                    "error_class": err.error_class,
                    "destination": err.destination or action.destination,
                    "status": MetadataValue.int(err.status) if err.status is not None else MetadataValue.text("none"),
                    "response": MetadataValue.json(err.to_dict()),
                }
                if err.retryable and context.retry_number < MAX_RETRIES:
                    wait = wait_seconds(queue, context.retry_number, err.retry_after)
                    context.log.warning(f"{action.name}: {err.error_class} ({err.message}); retry in {wait}s")
                    raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from err
                raise Failure(
                    description=f"{action.name} → {err.destination or action.destination}: {err.error_class}: {err.message}",
                    metadata=metadata,
                    allow_retries=False,
                ) from err
            except OperationalError as err:  # the event store itself is briefly unavailable
                if context.retry_number < MAX_RETRIES:
                    raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait_seconds(queue, context.retry_number)) from err
                raise Failure(description=f"event store unavailable: {err.__class__.__name__}",
                              metadata={"error_class": "unavailable"}, allow_retries=False) from err
    if outcome is None:
        context.log.info(f"{action.name} waits: no {action.destination} slot in {limits.SLOT_WAIT_SECONDS:g} s")
        yield from _wait_outside(context, store, event_id, action, action.destination, {"busy": True})
        return
    if guarded:
        breakers.record_success(store, action.destination)
    ledger.record_outcome(store, event_id, action.name, outcome["status"], outcome, context.run_id)
    yield Output(None, metadata={k: MetadataValue.json(v) if isinstance(v, (dict, list)) else str(v)
                                 for k, v in mask_payload(outcome).items()})


_OPS: dict[str, OpDefinition] = {}


def action_op(action: Action) -> OpDefinition:
    """One op per action name, shared by the jobs that have that action (op names are
    unique in a code location); the retry policy is set per job, from its queue."""
    if action.name not in _OPS:

        def compute(context, _inputs):
            yield from run_action(context, action)

        _OPS[action.name] = OpDefinition(
            name=action.name,
            description=f"{action.description} ({action.destination})",
            ins={dep: In(Nothing) for dep in action.depends_on},
            outs={"result": Out(Nothing)},
            compute_fn=compute,
            required_resource_keys=_resource_keys(action),
            tags={tags.DESTINATION: action.destination},
            # no ``pool=``: run_action claims the destination's pool slot around the call
            # itself (destinations/slots.py)
        )
    return _OPS[action.name]


def event_job(event_type: EventType) -> JobDefinition:
    ops = [action_op(a) for a in event_type.actions]
    deps = {
        a.name: {dep: DependencyDefinition(dep, "result") for dep in a.depends_on} for a in event_type.actions
    }
    graph = GraphDefinition(
        name=event_type.job_name,
        description=event_type.description or f"fan-out of {event_type.name}",
        node_defs=ops,
        dependencies=deps,
    )
    return graph.to_job(
        executor_def=in_process_executor,
        op_retry_policy=retry_policy(event_type.queue),
        tags={tags.EVENT_TYPE: event_type.name, tags.QUEUE: event_type.queue},
        hooks={dlq_on_failure},
    )


EVENT_JOBS: dict[str, JobDefinition] = {name: event_job(spec) for name, spec in CATALOGUE.items()}


def run_tags(event: dict[str, Any], launched_by: str = tags.BY_DISPATCH_SENSOR) -> dict[str, str]:
    """The tags of an event's run (set by the sensor and by direct submission)."""
    return tags.event_run_tags(event, launched_by)
