"""Pooled PostgreSQL connections checked before use without a round trip
(carinho_pipelines/store/liveness.py), on the event store's engine: one the server
closed is replaced, and one lost without a word is caught by the ping after idling."""

import pytest
import sqlalchemy as sa

from carinho_pipelines.store import liveness
from carinho_pipelines.store.engine import make_engine
from tests.conftest import PG_ADMIN_URL
from tests.support import TcpProxy, wait_for


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()


def test_a_connection_the_server_closed_is_replaced_before_use(pg_database):
    engine = make_engine(pg_database())
    first = _backend(engine)  # now pooled
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
        wait_for(lambda: not conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                          {"pid": first}).scalar(), timeout=30, what="the backend gone", interval=0.05)
    admin.dispose()
    assert _backend(engine) != first  # no error: a new connection
    engine.dispose()


def test_a_connection_lost_silently_is_replaced_once_it_idled_past_the_ping_threshold(pg_database, monkeypatch):
    url = sa.engine.make_url(pg_database())
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    engine = make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        _backend(engine)
        proxy.forget()  # nothing reaches the client: the socket looks idle and fine
        # used again at once, the lost connection is not noticed before use (no round trip)…
        with pytest.raises(sa.exc.OperationalError):
            _backend(engine)
        _backend(engine)  # (SQLAlchemy replaced it after that error)
        proxy.forget()
        # …but after idling past the threshold it is pinged first, and replaced
        monkeypatch.setattr(liveness, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert _backend(engine) > 0
    finally:
        engine.dispose()
        proxy.cut()
