"""Direct submission of an event's run (GraphQL ``launchRun``, the tags the dispatch
sensor would set), right after the event is committed, instead of waiting for the
sensor's next tick. Used by the relay for the events it receives and by runs for the
events they create.

Exactly once: the event is first *claimed* (:func:`~carinho_pipelines.store.claims.claim_events`),
then launched, then its run id is written back. The dispatch sensor leaves freshly
claimed events alone and is the safety net: when a submission failed or its process
died between commit and submit, the claim goes stale and the sensor dispatches the
event. No dagster import: the relay uses this module.
"""

from __future__ import annotations

import logging

import httpx

from carinho_pipelines.kernel import tags
from carinho_pipelines.kernel.catalogue import CATALOGUE
from carinho_pipelines.platform import graphql_client
from carinho_pipelines.kernel.settings import current
from carinho_pipelines.store import EventStore, utcnow
from carinho_pipelines.store.claims import claim_events, own_event

log = logging.getLogger("carinho.submission")

#: the whole launch must end well inside the claim's lifetime
LAUNCH_TIMEOUT = httpx.Timeout(5.0, connect=1.0)


def enabled() -> bool:
    """``CARINHO_DIRECT_SUBMIT``."""
    return current().direct_submit


def claim(store: EventStore, event_id: int) -> bool:
    # only an unclaimed event: no check for an existing run here, so a stale claim
    # (the sensor's, or an earlier relay's) is the sensor's to resolve
    return event_id in claim_events(store.engine, [event_id], utcnow(), take_over_stale=False)


def submit_now(store: EventStore, event_id: int, launched_by: str = tags.BY_RELAY) -> str | None:
    """Claim, launch and record the run of ``event_id``; ``None`` when someone else holds
    the claim or the launch failed (the sensor will dispatch it)."""
    if not claim(store, event_id):
        return None
    event = store.get_event(event_id)
    spec = CATALOGUE.get(event["event_type"]) if event else None
    if spec is None:
        return None
    try:
        run_id = graphql_client.launch_job(spec.job_name, tags.event_run_tags(event, launched_by),
                                           timeout=LAUNCH_TIMEOUT)
    except (graphql_client.DagsterUnavailable, graphql_client.LaunchFailed) as exc:
        log.warning("event %s not submitted (%s); the sensor will dispatch it", event_id, exc)
        return None
    # the run coordinator made it the event's run as it was submitted; written here too for
    # an instance configured with another coordinator (a no-op otherwise)
    own_event(store.engine, event_id, run_id, utcnow())
    return run_id
