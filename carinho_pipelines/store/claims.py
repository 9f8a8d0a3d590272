"""The one claim taken before launching an event's run, by the relay and by the dispatch
sensor alike (a conditional UPDATE of ``events.submit_claimed_at``): whoever holds it
launches; the other skips. And the last word on it: the first run that starts owns the
event (``events.run_id``), so a run submitted twice (a launch that timed out at the
relay but went through at the webserver, then the sensor's) is launched once."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from carinho_pipelines.kernel.settings import current

from .tables import events


def claim_ttl() -> dt.timedelta:
    """``CARINHO_SUBMIT_CLAIM_SECONDS``: after this, a claim whose run never appeared is
    the sensor's to dispatch."""
    return dt.timedelta(seconds=current().submit_claim_seconds)


def claim_events(engine: sa.Engine, event_ids: list[int], now: dt.datetime, *, take_over_stale: bool) -> set[int]:
    """Of ``event_ids``, those due, not filtered, not dispatched and not claimed (or,
    with ``take_over_stale``, whose claim went stale) are claimed now and returned."""
    if not event_ids:
        return set()
    claimable = sa.not_(claim_is_fresh(now)) if take_over_stale else events.c.submit_claimed_at.is_(None)
    with engine.begin() as conn:
        return set(conn.execute(
            events.update()
            .where(events.c.id.in_(event_ids), events.c.run_id.is_(None), events.c.filtered_reason.is_(None),
                   events.c.available_at <= now, claimable)
            .values(submit_claimed_at=now)
            .returning(events.c.id)
        ).scalars())


def claim_is_fresh(now: dt.datetime):
    """SQL condition: someone (the relay, a sensor tick) is submitting this event now."""
    return sa.and_(events.c.submit_claimed_at.is_not(None), events.c.submit_claimed_at > now - claim_ttl())


def own_event(engine: sa.Engine, event_id: int, run_id: str, now: dt.datetime) -> str | None:
    """Make ``run_id`` the run of ``event_id`` unless the event already has one; the run
    that owns the event now (``None`` for an unknown event). One conditional UPDATE, so
    of two runs of one event exactly one becomes its owner."""
    with engine.begin() as conn:
        conn.execute(
            events.update()
            .where(events.c.id == event_id, events.c.run_id.is_(None))
            .values(run_id=run_id, dispatched_at=now)
        )
        return conn.execute(sa.select(events.c.run_id).where(events.c.id == event_id)).scalar()
