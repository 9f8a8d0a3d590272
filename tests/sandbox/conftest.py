"""Fixtures for the sandbox's own tests: one running sandbox, reset before each test."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from carinho_sandbox import Sandbox
from carinho_sandbox.runner import BackgroundServers

SECRET = "whsec_" + "c2FuZGJveC1zaWduaW5nLXNlY3JldC0wMTIzNDU2Nzg5"  # base64 of a made-up key


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(base_port=0, webhook_secrets={"atendimento": SECRET}).start()
    yield sb
    sb.stop()


@pytest.fixture()
def sb(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    running_sandbox.zapi.set_auto_callbacks(None)
    for state in running_sandbox.systems.values():
        state.page_size = 100
    return running_sandbox


def client(sb: Sandbox, system: str, timeout: float = 5.0, **headers: str) -> httpx.Client:
    """An httpx client that authenticates like the hub does (CONTRACTS §1)."""
    token = sb.token(system)
    base = {
        "Authorization": f"Bearer {token}",
        "X-Internal-Token": token or "",
        "X-Source-System": "integracoes",
        "X-Request-ID": "test-request",
    }
    return httpx.Client(base_url=sb.url(system), headers={**base, **headers}, timeout=timeout)


def zapi_client(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.zapi_api_url(), headers={"Client-Token": "sandbox-client-token"}, timeout=5)


class Receiver:
    """A tiny hub stand-in that records every request it gets (decoding gzip like the hub must)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 202
        self.lock = threading.Lock()
        self.servers = BackgroundServers(thread_name="test-receiver")
        self.url = ""

    def app(self) -> Starlette:
        async def record(request: Request) -> JSONResponse:
            raw = await request.body()
            decoded = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
            with self.lock:
                self.requests.append({
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "headers": dict(request.headers),
                    "raw": raw,
                    "json": json.loads(decoded) if decoded else None,
                })
            return JSONResponse({"event_id": len(self.requests), "duplicate": False}, status_code=self.status)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST", "PUT", "GET"])])

    def start(self) -> Receiver:
        port = self.servers.start({"hub": (self.app(), 0)})["hub"]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.servers.stop()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


@pytest.fixture(scope="session")
def hub_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture()
def hub(hub_receiver: Receiver) -> Receiver:
    with hub_receiver.lock:
        hub_receiver.requests.clear()
    hub_receiver.status = 202
    return hub_receiver


@pytest.fixture()
def api(sb: Sandbox):
    """``api("crm")`` → an authenticated httpx client for that system."""
    opened: list[httpx.Client] = []

    def make(system: str, timeout: float = 5.0, **headers: str) -> httpx.Client:
        c = client(sb, system, timeout=timeout, **headers)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


@pytest.fixture()
def zapi(sb: Sandbox) -> Iterator[httpx.Client]:
    with zapi_client(sb) as c:
        yield c
