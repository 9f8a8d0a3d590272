"""Circuit breaker per destination (ARCHITECTURE.md "Retries, circuit breaking, DLQ"):
opens after 5 consecutive failures within 5 minutes, half-opens after 60 s (one
probe), closes on the probe's success. State lives in the event store, so every run
process and the relay see the same breaker."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from carinho_pipelines.store import EventStore, as_utc, utcnow
from carinho_pipelines.store.tables import breakers

from carinho_pipelines.kernel.settings import env

FAILURE_THRESHOLD = 5
FAILURE_WINDOW = dt.timedelta(minutes=5)
#: how long an open breaker fails fast before one probe is let through
def open_for() -> dt.timedelta:
    """``CARINHO_BREAKER_OPEN_SECONDS`` (read when used): how long an open breaker fails fast."""
    return dt.timedelta(seconds=float(env("CARINHO_BREAKER_OPEN_SECONDS", "60") or 60))

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def _insert(store: EventStore):
    return postgresql.insert if store.dialect == "postgresql" else sqlite.insert


def _row(conn: sa.Connection, destination: str) -> dict | None:
    row = conn.execute(sa.select(breakers).where(breakers.c.destination == destination)).mappings().first()
    return dict(row) if row else None


def allow(store: EventStore, destination: str, now: dt.datetime | None = None) -> bool:
    """May an action call ``destination`` now? While open, no; once :func:`open_for` has
    passed, exactly one caller wins the half-open probe (compare-and-set)."""
    now = now or utcnow()
    with store.engine.begin() as conn:
        row = _row(conn, destination)
        if row is None or row["state"] == CLOSED:
            return True
        opened_at = as_utc(row["opened_at"])
        if opened_at is None or now - opened_at < open_for():
            return False
        # open (or a probe that never reported back) for long enough: one probe goes through
        result = conn.execute(
            breakers.update()
            .where(breakers.c.destination == destination, breakers.c.opened_at == row["opened_at"])
            .values(state=HALF_OPEN, opened_at=now, updated_at=now)
        )
        return result.rowcount == 1


def record_success(store: EventStore, destination: str, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    stmt = _insert(store)(breakers).values(destination=destination, state=CLOSED, failures=0, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["destination"],
        set_={"state": CLOSED, "failures": 0, "window_started_at": None, "opened_at": None, "updated_at": now},
        # a success of an old in-flight call does not close a freshly opened breaker
        where=breakers.c.state != CLOSED,
    )
    with store.engine.begin() as conn:
        conn.execute(stmt)


def record_failure(store: EventStore, destination: str, now: dt.datetime | None = None) -> str:
    """Count a failure of class ``unavailable``; returns the state afterwards."""
    now = now or utcnow()
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(
                postgresql.insert(breakers).values(destination=destination, state=CLOSED, updated_at=now)
                .on_conflict_do_nothing(index_elements=["destination"])
            )
            conn.execute(sa.select(breakers.c.destination).where(breakers.c.destination == destination).with_for_update())
        row = _row(conn, destination)
        if row is None:
            conn.execute(breakers.insert().values(destination=destination, state=CLOSED, updated_at=now))
            row = {"state": CLOSED, "failures": 0, "window_started_at": None}
        if row["state"] == HALF_OPEN or row["state"] == OPEN:
            values = {"state": OPEN, "opened_at": now, "failures": FAILURE_THRESHOLD}
        else:
            window = as_utc(row["window_started_at"])
            if window is None or now - window > FAILURE_WINDOW:
                failures, window = 1, now
            else:
                failures = row["failures"] + 1
            values = {"failures": failures, "window_started_at": window, "state": CLOSED}
            if failures >= FAILURE_THRESHOLD:
                values.update(state=OPEN, opened_at=now)
        conn.execute(breakers.update().where(breakers.c.destination == destination).values(updated_at=now, **values))
        return values["state"]


def states(store: EventStore, destinations: tuple[str, ...] = ()) -> dict[str, str]:
    """Every known breaker's state (destinations never seen are closed)."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(breakers.c.destination, breakers.c.state)).all()
    out = {d: CLOSED for d in destinations}
    out.update({d: s for d, s in rows})
    return out


def healthy(store: EventStore, destination: str, now: dt.datetime | None = None) -> bool:
    """Closed, or open long enough that a probe may go (without taking the probe)."""
    now = now or utcnow()
    with store.engine.connect() as conn:
        row = _row(conn, destination)
    if row is None or row["state"] == CLOSED:
        return True
    opened_at = as_utc(row["opened_at"])
    return opened_at is not None and now - opened_at >= open_for()


def probe_at(store: EventStore, destination: str) -> dt.datetime | None:
    """When an open breaker lets its next probe through (``None`` when it is closed):
    the DLQ re-drive and a retry's 409 tell people this time."""
    with store.engine.connect() as conn:
        row = _row(conn, destination)
    if row is None or row["state"] == CLOSED:
        return None
    opened_at = as_utc(row["opened_at"])
    return opened_at + open_for() if opened_at else None
