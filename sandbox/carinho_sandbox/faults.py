"""The ASGI layer in front of every simulated system.

It records each call, then plays the injected faults (latency, scheduled failures), then
checks credentials and replays repeated ``Idempotency-Key`` writes — in that order,
because a real outage answers before auth and a replay must never skip auth.
("Down" is not here: the sandbox closes the port, so the client sees a refused connection.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carinho_sandbox.state import StoredResponse, SystemState, now_iso

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: Decides whether a request's headers carry valid credentials.
AuthCheck = Callable[[dict[str, str]], bool]
#: Builds the JSON body of an error answered by this layer (systems and Z-API differ).
ErrorBody = Callable[[int, str], dict[str, Any]]


def internal_error_body(status: int, message: str) -> dict[str, Any]:
    return {"message": message}


def parse_body(body: bytes, content_type: str) -> tuple[Any, str | None]:
    """``(json, None)`` when the body is JSON, else ``(None, text)``."""
    if not body:
        return None, None
    if "json" in content_type or body[:1] in (b"{", b"["):
        try:
            return json.loads(body), None
        except ValueError:
            pass
    return None, body.decode("utf-8", errors="replace")


async def _json_response(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class SystemLayer:
    """Recording, faults, auth and idempotency around one system's app."""

    def __init__(
        self,
        app: ASGIApp,
        state: SystemState,
        auth: AuthCheck | None = None,
        error_body: ErrorBody = internal_error_body,
        idempotent_writes: bool = True,
    ) -> None:
        self.app = app
        self.state = state
        self.auth = auth
        self.error_body = error_body
        self.idempotent_writes = idempotent_writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        parsed, text = parse_body(body, headers.get("content-type", ""))
        call: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)),
            "headers": headers,
            "json": parsed,
            "body": text,
            "status": None,
            "at": now_iso(),
        }
        self.state.record_call(call)

        def mark(status: int) -> None:
            with self.state.lock:
                call["status"] = status

        async def answer(status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
            mark(status)
            await _json_response(send, status, self.error_body(status, message), extra)

        generation = self.state.generation
        latency = self.state.faults.latency
        if latency > 0:
            await asyncio.sleep(latency)
            if generation != self.state.generation:
                # the sandbox was reset while this (abandoned) call hung: it must not
                # consume the new faults nor write into the new state
                await answer(503, "Sandbox was reset while this call was delayed")
                return

        failure = self.state.take_failure()
        if failure is not None:
            status, retry_after = failure
            extra = []
            if retry_after is not None:
                extra.append((b"retry-after", _retry_after_value(retry_after).encode()))
            with self.state.lock:
                call["fault"] = True
            await answer(status, f"Simulated failure of {self.state.name} (sandbox fault injection)", extra)
            return

        if self.auth is not None and not self.auth(headers):
            await answer(401, "Unauthenticated.")
            return

        key = headers.get("idempotency-key") if self.idempotent_writes and scope["method"] in WRITE_METHODS else None
        if key:
            with self.state.lock:
                stored = self.state.idempotency.get(key)
                busy = key in self.state.in_flight
                if stored is None and not busy:
                    self.state.in_flight.add(key)
            if stored is not None:
                with self.state.lock:
                    call["replayed"] = True
                mark(stored.status)
                await send({
                    "type": "http.response.start",
                    "status": stored.status,
                    "headers": [
                        (b"content-type", stored.content_type.encode()),
                        (b"content-length", str(len(stored.body)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                })
                await send({"type": "http.response.body", "body": stored.body})
                return
            if busy:
                await answer(409, "A request with this Idempotency-Key is still being processed.")
                return

        captured: dict[str, Any] = {"status": 500, "content_type": "application/json", "chunks": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        captured["content_type"] = v.decode("latin-1")
                mark(message["status"])
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), capture)
        finally:
            if key:
                with self.state.lock:
                    self.state.in_flight.discard(key)
                    # only successes are remembered: a rejected write may be corrected and retried
                    if 200 <= captured["status"] < 300:
                        self.state.idempotency[key] = StoredResponse(
                            captured["status"], b"".join(captured["chunks"]), captured["content_type"]
                        )


def _retry_after_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
