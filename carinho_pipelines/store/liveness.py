"""A pooled PostgreSQL connection checked before use without a round trip.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` to the server every time a connection
leaves the pool. A run checks a connection out dozens of times (every Dagster event,
every slot and ledger write), so in a burst on PostgreSQL the pings were 14 % of an
``integrations-high`` run's time in its worker, each one a wait on the busiest process
of the machine (py-spy, benchmarks/README.md).

A connection PostgreSQL has closed (a restart, ``pg_terminate_backend``, an idle
timeout) has its last words waiting on the socket: an error message, then the end of
the stream. An idle connection that is still good has nothing to read. So on checkout:

* the socket is polled, without waiting: anything readable means the server has
  closed it (or is about to), and the pool replaces it;
* a connection idle for longer than :data:`PING_AFTER_IDLE_SECONDS` is also pinged, as
  ``pool_pre_ping`` would: a peer gone without a word (a network cut between hosts)
  leaves nothing on the socket.

A connection the check rejects is replaced by the pool (SQLAlchemy's pessimistic
disconnect handling: ``DisconnectionError`` from a ``checkout`` listener).
"""

from __future__ import annotations

import select
import time
from typing import Any

import sqlalchemy as sa

#: a connection unused for longer than this is pinged (one round trip) before use
PING_AFTER_IDLE_SECONDS = 2.0
_IDLE_SINCE = "carinho_idle_since"


def check_on_checkout(engine: sa.Engine) -> sa.Engine:
    """Install the check on ``engine`` (created without ``pool_pre_ping``)."""
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)  # None: opened just now
        if idle_since is None:
            return
        if _closed_by_server(dbapi_connection):
            raise sa.exc.DisconnectionError("PostgreSQL closed this connection")
        if time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
            try:
                dialect.do_ping(dbapi_connection)
            except Exception as exc:  # noqa: BLE001 - any failure to answer: replace it
                raise sa.exc.DisconnectionError(f"PostgreSQL did not answer a ping: {exc}") from exc

    sa.event.listen(engine, "checkin", checkin)
    sa.event.listen(engine, "checkout", checkout)
    return engine


def _closed_by_server(dbapi_connection: Any) -> bool:
    if getattr(dbapi_connection, "closed", False):
        return True
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - no socket: not usable
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)  # errors and hang-ups are always reported
    return bool(poller.poll(0))
