from __future__ import annotations

from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa

from relay.app import create_app
from carinho_pipelines.store import EventStore
from carinho_pipelines.store.tables import events
from tests.conftest import TOKENS
from tests.support import ServerThread


class Relay:
    """The relay served by uvicorn on a loopback port, with its store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.server = ServerThread(create_app(store)).start()
        self.url = self.server.url
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def post(self, path: str, system: str | None = None, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if system:
            headers.setdefault("Authorization", f"Bearer {TOKENS[system]}")
        return self.http.post(path, headers=headers, **kwargs)

    def rows(self) -> list[dict]:
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(events).order_by(events.c.id)).mappings()]

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.store.engine.dispose()


@pytest.fixture
def relay(store_url: str, hub_env) -> Iterator[Relay]:
    r = Relay(EventStore(store_url))
    yield r
    r.close()
