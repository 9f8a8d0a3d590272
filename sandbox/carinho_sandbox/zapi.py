"""A Z-API instance: the send/status API and the callbacks it posts (reference/zapi.md).

The HTTP side is :func:`zapi_app`; :class:`ZapiSimulator` is the handle tests and ops use
(``sandbox.zapi``) to change the instance state and to play the phone side of a chat.
"""

from __future__ import annotations

import asyncio
import copy
import gzip as gzip_module
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from carinho_pipelines.kernel.privacy import mask_phone, normalize_phone
from carinho_sandbox.faults import SystemLayer
from carinho_sandbox.state import SystemState, now_iso

log = logging.getLogger("carinho.sandbox.zapi")

DEFAULT_INSTANCE_ID = "SANDBOXINSTANCE0000000000000001"
DEFAULT_INSTANCE_TOKEN = "SANDBOXTOKEN000000000001"
DEFAULT_CLIENT_TOKEN = "sandbox-client-token"
DEFAULT_CONNECTED_PHONE = "5511940000000"
CALLBACK_TIMEOUT = 5.0
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

#: callback kinds, each with its own configurable URL (Z-API's update-webhook-*)
CALLBACK_KINDS = ("received", "delivery", "message_status", "connected", "disconnected", "presence")
UPDATE_ENDPOINTS = {
    "update-webhook-received": ("received",),
    "update-webhook-received-delivery": ("received",),
    "update-webhook-delivery": ("delivery",),
    "update-webhook-message-status": ("message_status",),
    "update-webhook-disconnected": ("disconnected",),
    "update-webhook-connected": ("connected",),
    "update-webhook-chat-presence": ("presence",),
    "update-every-webhooks": CALLBACK_KINDS,
}


class CallbackFailed(RuntimeError):
    """The webhook answered a callback with a non-2xx status."""

    def __init__(self, kind: str, status: int, body: str) -> None:
        super().__init__(f"{kind} callback answered {status}: {body[:200]}")
        self.kind = kind
        self.status = status
        self.body = body


class NoWebhook(RuntimeError):
    """A callback was asked for while no webhook URL is configured for it."""


def message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


def zaap_id() -> str:
    return secrets.token_hex(16).upper()


def now_ms() -> int:
    return int(time.time() * 1000)


def status_url(url: str) -> str:
    """The hub's status route: ``/status`` appended to the path, before the query."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/status"))


def with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "token" in query:
        return url
    query["token"] = token
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    query = [(k, "***" if k == "token" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@dataclass
class ZapiState:
    instance_id: str = DEFAULT_INSTANCE_ID
    token: str = DEFAULT_INSTANCE_TOKEN
    #: ``None`` = the account has not activated its Client-Token (no enforcement)
    client_token: str | None = DEFAULT_CLIENT_TOKEN
    #: value of the ``z-api-token`` header on callbacks (real Z-API: the instance token)
    header_token: str | None = None
    connected: bool = True
    connected_phone: str = DEFAULT_CONNECTED_PHONE
    since: str = field(default_factory=now_iso)
    webhooks: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(CALLBACK_KINDS))
    notify_sent_by_me: bool = False
    disable_enqueue_when_disconnected: bool = False
    #: seconds between a send and its Delivery/MessageStatus callbacks; ``None`` = off
    auto_callbacks: float | None = None
    #: phone → DeliveryCallback error, for scripted failed deliveries
    delivery_errors: dict[str, str] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: bumped by reset, so a callback in flight across a reset is not recorded after it
    generation: int = 0

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.connected = True
            self.since = now_iso()
            self.webhooks = dict.fromkeys(CALLBACK_KINDS)
            self.notify_sent_by_me = False
            self.disable_enqueue_when_disconnected = False
            self.delivery_errors.clear()
            self.sent.clear()
            self.callbacks.clear()


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


class ZapiSimulator:
    """The Z-API instance as seen by whoever plays the phone (``sandbox.zapi``)."""

    def __init__(self, state: ZapiState, webhook_token: str | None, runner: Runner) -> None:
        self.state = state
        self.webhook_token = webhook_token
        self._run = runner
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- configuration -------------------------------------------------------------------

    def set_webhook(self, url: str | None, append_token: bool = True) -> None:
        """Point every callback at the hub's ``/webhooks/whatsapp`` URL.

        Message status goes to the same URL + ``/status`` (the hub's second route). Like
        an operator pasting the hub URL into the panel, the hub's secret is added as
        ``?token=`` unless the URL already carries one.
        """
        with self.state.lock:
            if not url:
                self.state.webhooks = dict.fromkeys(CALLBACK_KINDS)
                return
            if append_token:
                url = with_token(url, self.webhook_token)
            for kind in CALLBACK_KINDS:
                self.state.webhooks[kind] = url
            self.state.webhooks["message_status"] = status_url(url)

    def webhooks(self) -> dict[str, str | None]:
        with self.state.lock:
            return dict(self.state.webhooks)

    def set_auto_callbacks(self, delay: float | None) -> None:
        """After each send, emit Delivery then RECEIVED/READ statuses every ``delay`` s."""
        with self.state.lock:
            self.state.auto_callbacks = delay

    def fail_delivery(self, phone: str, error: str = "Phone number does not exist") -> None:
        """Sends to ``phone`` are accepted but their DeliveryCallback carries ``error``."""
        with self.state.lock:
            self.state.delivery_errors[normalize_phone(phone) or phone] = error

    def reject_sends_when_disconnected(self, value: bool = True) -> None:
        """Z-API's ``disableEnqueueWhenDisconnected``: refuse sends instead of queueing."""
        with self.state.lock:
            self.state.disable_enqueue_when_disconnected = value

    @property
    def connected(self) -> bool:
        return self.state.connected

    def sent(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return copy.deepcopy(self.state.sent)

    def callbacks(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return copy.deepcopy(self.state.callbacks)

    # -- instance state ------------------------------------------------------------------

    def disconnect(self, error: str = "Device has been disconnected") -> None:
        self._run(self.adisconnect(error))

    def connect(self) -> None:
        self._run(self.aconnect())

    async def adisconnect(self, error: str = "Device has been disconnected") -> None:
        with self.state.lock:
            changed = self.state.connected
            self.state.connected = False
            self.state.since = now_iso()
        if changed:
            log.warning("zapi instance disconnected")
            await self._quiet_emit("disconnected", {
                "momment": int(time.time()),
                "error": error,
                "disconnected": True,
                "type": "DisconnectedCallback",
                "instanceId": self.state.instance_id,
            })

    async def aconnect(self) -> None:
        with self.state.lock:
            changed = not self.state.connected
            self.state.connected = True
            self.state.since = now_iso()
            queued = [m for m in self.state.sent if m["status"] == "QUEUED"]
            for m in queued:
                m["status"] = "SENT"
                m["sent_at"] = now_iso()
        if changed:
            log.info("zapi instance connected; flushing %d queued message(s)", len(queued))
            await self._quiet_emit("connected", {
                "type": "ConnectedCallback",
                "connected": True,
                "momment": now_ms(),
                "instanceId": self.state.instance_id,
                "phone": self.state.connected_phone,
            })
        for m in queued:
            self.schedule_auto_callbacks(m)

    # -- callbacks -----------------------------------------------------------------------

    def emit_received(
        self,
        phone: str,
        text: str | None = None,
        button_id: str | None = None,
        sender_name: str = "Cliente Sandbox",
        reference_message_id: str | None = None,
        gzip: bool = False,
        button_label: str | None = None,
        message_id: str | None = None,
        check: bool = True,
        **extra: Any,
    ) -> str:
        """Post a ReceivedCallback (a text, or a click on a button) and return its messageId."""
        payload = self.received_payload(phone, text, button_id, sender_name, reference_message_id,
                                        button_label, message_id, **extra)
        self._run(self.emit("received", payload, gzip=gzip, check=check))
        return payload["messageId"]

    def emit_status(self, ids: str | list[str], status: str, phone: str | None = None,
                    gzip: bool = False, check: bool = True) -> None:
        self._run(self.emit("message_status", self.status_payload(ids, status, phone), gzip=gzip, check=check))

    def emit_delivery(self, message_id: str, error: str | None = None, phone: str | None = None,
                      gzip: bool = False, check: bool = True) -> None:
        self._run(self.emit("delivery", self.delivery_payload(message_id, error, phone), gzip=gzip, check=check))

    def received_payload(
        self,
        phone: str,
        text: str | None = None,
        button_id: str | None = None,
        sender_name: str = "Cliente Sandbox",
        reference_message_id: str | None = None,
        button_label: str | None = None,
        message_id_: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        if text is None and button_id is None:
            raise ValueError("a received message needs text or button_id")
        digits = normalize_phone(phone) or phone
        payload: dict[str, Any] = {
            "isStatusReply": False,
            "chatLid": None,
            "senderLid": None,
            "connectedPhone": self.state.connected_phone,
            "waitingMessage": False,
            "isEdit": False,
            "isGroup": False,
            "isNewsletter": False,
            "instanceId": self.state.instance_id,
            "messageId": message_id_ or message_id(),
            "phone": digits,
            "fromMe": False,
            "momment": now_ms(),
            "status": "RECEIVED",
            "chatName": sender_name,
            "senderPhoto": None,
            "senderName": sender_name,
            "participantPhone": None,
            "participantLid": None,
            "photo": None,
            "broadcast": False,
            "messageExpirationSeconds": 0,
            "forwarded": False,
            "type": "ReceivedCallback",
            "fromApi": False,
        }
        if button_id is not None:
            if reference_message_id is None:
                reference_message_id = self._last_button_message(digits)
            payload["referenceMessageId"] = reference_message_id
            payload["buttonsResponseMessage"] = {
                "buttonId": button_id,
                "message": button_label or self._button_label(digits, button_id) or text or button_id,
            }
        else:
            payload["text"] = {"message": text}
            if reference_message_id is not None:
                payload["referenceMessageId"] = reference_message_id
        payload.update(extra)
        return payload

    def status_payload(self, ids: str | list[str], status: str, phone: str | None = None) -> dict[str, Any]:
        id_list = [ids] if isinstance(ids, str) else list(ids)
        if phone is None:
            phone = self._phone_of(id_list[0]) if id_list else None
        return {
            "instanceId": self.state.instance_id,
            "status": status,
            "ids": id_list,
            "momment": now_ms(),
            "phoneDevice": 0,
            "phone": phone,
            "type": "MessageStatusCallback",
            "isGroup": False,
        }

    def delivery_payload(self, message_id_: str, error: str | None = None, phone: str | None = None) -> dict[str, Any]:
        sent = self._find_sent(message_id_)
        payload: dict[str, Any] = {
            "phone": phone or (sent or {}).get("phone"),
            "messageId": message_id_,
            "instanceId": self.state.instance_id,
            "zaapId": (sent or {}).get("zaapId") or zaap_id(),
            "momment": now_ms(),
            "type": "DeliveryCallback",
        }
        if error:
            payload["error"] = error
        return payload

    async def emit(self, kind: str, payload: dict[str, Any], gzip: bool = False, check: bool = True) -> int:
        """POST one callback like Z-API does; returns the webhook's status code."""
        url = self.state.webhooks.get(kind)
        if not url:
            raise NoWebhook(f"no webhook configured for {kind} callbacks")
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "Origin": "https://api.z-api.io",
            "Server": "Z-API",
            "User-Agent": BROWSER_UA,
            "z-api-token": self.state.header_token or self.state.token,
        }
        if gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        generation = self.state.generation
        record: dict[str, Any] = {"kind": kind, "type": payload.get("type"), "url": redact_url(url),
                                  "payload": payload, "gzip": gzip, "status": None, "at": now_iso()}
        try:
            async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            self._remember(record, generation)
            log.warning("zapi %s callback to %s failed: %s", payload.get("type"), redact_url(url), type(exc).__name__)
            raise
        record["status"] = response.status_code
        record["response"] = response.text[:2000]
        self._remember(record, generation)
        log.info("zapi %s callback (%s) → %s", payload.get("type"), mask_phone(payload.get("phone")), response.status_code)
        if check and not 200 <= response.status_code < 300:
            raise CallbackFailed(kind, response.status_code, response.text)
        return response.status_code

    async def _quiet_emit(self, kind: str, payload: dict[str, Any]) -> None:
        if not self.state.webhooks.get(kind):
            return
        try:
            await self.emit(kind, payload, check=False)
        except httpx.HTTPError:
            pass  # already recorded; a state change never fails because the hub is away

    def _remember(self, record: dict[str, Any], generation: int) -> None:
        with self.state.lock:
            if generation == self.state.generation:
                self.state.callbacks.append(record)

    async def acancel_playback(self) -> None:
        """Stop delivery playback still pending (a reset must not be followed by old callbacks)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- sends ---------------------------------------------------------------------------

    def accept(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Queue a send like Z-API: IDs now, delivery later (or when reconnected)."""
        mid = message_id()
        with self.state.lock:
            record = {
                "zaapId": zaap_id(),
                "messageId": mid,
                "id": mid,
                "kind": kind,
                "phone": normalize_phone(body.get("phone")) or body.get("phone"),
                "message": body.get("message"),
                "buttons": (body.get("buttonList") or {}).get("buttons") if kind == "button-list" else None,
                "link": {k: body.get(k) for k in ("linkUrl", "title", "linkDescription", "image")} if kind == "link" else None,
                "body": copy.deepcopy(body),
                "status": "SENT" if self.state.connected else "QUEUED",
                "at": now_iso(),
                # when it arrived, in epoch seconds (a rate is measured from these)
                "received_ts": time.time(),
                "sent_at": now_iso() if self.state.connected else None,
            }
            self.state.sent.append(record)
        log.info("zapi %s to %s accepted (%s, %s)", kind, mask_phone(record["phone"]), mid, record["status"])
        if record["status"] == "SENT":
            self.schedule_auto_callbacks(record)
        return {"zaapId": record["zaapId"], "messageId": mid, "id": mid}

    def schedule_auto_callbacks(self, record: dict[str, Any]) -> None:
        delay = self.state.auto_callbacks
        if delay is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._play_delivery(record, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play_delivery(self, record: dict[str, Any], delay: float) -> None:
        error = self.state.delivery_errors.get(record["phone"])
        steps: list[tuple[str, dict[str, Any]]] = [
            ("delivery", self.delivery_payload(record["messageId"], error, record["phone"]))]
        if not error:
            steps += [("message_status", self.status_payload([record["messageId"]], s, record["phone"]))
                      for s in ("RECEIVED", "READ")]
        for kind, payload in steps:
            await asyncio.sleep(delay)
            payload["momment"] = now_ms()
            try:
                await self._quiet_emit(kind, payload)
            except Exception:  # noqa: BLE001 - background playback must not crash the loop
                log.exception("zapi auto callback failed")

    def _find_sent(self, mid: str) -> dict[str, Any] | None:
        with self.state.lock:
            return next((copy.deepcopy(m) for m in self.state.sent if m["messageId"] == mid), None)

    def _phone_of(self, mid: str) -> str | None:
        return (self._find_sent(mid) or {}).get("phone")

    def _last_button_message(self, phone: str) -> str | None:
        with self.state.lock:
            for m in reversed(self.state.sent):
                if m["kind"] == "button-list" and m["phone"] == phone:
                    return m["messageId"]
        return None

    def _button_label(self, phone: str, button_id: str) -> str | None:
        with self.state.lock:
            for m in reversed(self.state.sent):
                if m["kind"] == "button-list" and m["phone"] == phone:
                    for b in m["buttons"] or []:
                        if b.get("id") == button_id:
                            return b.get("label")
        return None


# -- the HTTP API --------------------------------------------------------------------------


def zapi_error(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def zapi_app(sim: ZapiSimulator, system: SystemState) -> SystemLayer:
    state = sim.state

    def guard(request: Request) -> Response | None:
        if request.path_params["instance"] != state.instance_id or request.path_params["token"] != state.token:
            return JSONResponse({"error": "Instance not found"}, status_code=404)
        if state.client_token:
            given = request.headers.get("client-token")
            if given is None:
                return JSONResponse({"error": "your client-token is not configured"}, status_code=400)
            if not hmac.compare_digest(given.encode(), state.client_token.encode()):
                return JSONResponse({"error": f"Client-Token {given} not allowed"}, status_code=403)
        return None

    async def body_of(request: Request) -> dict[str, Any] | Response:
        if "application/json" not in request.headers.get("content-type", ""):
            return JSONResponse({"error": "Content-Type must be application/json"}, status_code=415)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "Malformed JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "Body must be a JSON object"}, status_code=400)
        return body

    def sender(kind: str, check: Callable[[dict[str, Any]], str | None]) -> Callable[[Request], Any]:
        async def send(request: Request) -> Response:
            problem = guard(request)
            if problem:
                return problem
            body = await body_of(request)
            if isinstance(body, Response):
                return body
            if not body.get("phone"):
                return JSONResponse({"error": "phone is required"}, status_code=400)
            if not isinstance(body.get("message"), str) or not body["message"].strip():
                return JSONResponse({"error": "message is required"}, status_code=400)
            error = check(body)
            if error:
                return JSONResponse({"error": error}, status_code=400)
            if not state.connected and state.disable_enqueue_when_disconnected:
                return JSONResponse({"error": "You are not connected."}, status_code=400)
            return JSONResponse(sim.accept(kind, body))

        return send

    def check_buttons(body: dict[str, Any]) -> str | None:
        buttons = (body.get("buttonList") or {}).get("buttons") if isinstance(body.get("buttonList"), dict) else None
        if not isinstance(buttons, list) or not buttons:
            return "buttonList.buttons is required"
        if any(not isinstance(b, dict) or not b.get("label") for b in buttons):
            return "every button needs a label"
        return None

    def check_link(body: dict[str, Any]) -> str | None:
        missing = [f for f in ("linkUrl", "title", "linkDescription") if not body.get(f)]
        return f"{', '.join(missing)} is required" if missing else None

    async def status(request: Request) -> Response:
        problem = guard(request)
        if problem:
            return problem
        if state.connected:
            return JSONResponse({"connected": True, "error": "You are already connected.", "smartphoneConnected": True})
        return JSONResponse({"connected": False, "error": "You are not connected.", "smartphoneConnected": False})

    def updater(kinds: tuple[str, ...]) -> Callable[[Request], Any]:
        async def update(request: Request) -> Response:
            problem = guard(request)
            if problem:
                return problem
            body = await body_of(request)
            if isinstance(body, Response):
                return body
            value = body.get("value")
            if value is not None and (not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https")):
                return JSONResponse({"error": "Invalid url"}, status_code=400)
            with state.lock:
                for kind in kinds:
                    state.webhooks[kind] = value or None
                if "notifySentByMe" in body:
                    state.notify_sent_by_me = bool(body["notifySentByMe"])
            return JSONResponse({"value": True})

        return update

    async def notify_sent_by_me(request: Request) -> Response:
        problem = guard(request)
        if problem:
            return problem
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        with state.lock:
            state.notify_sent_by_me = bool(body.get("notifySentByMe"))
        return JSONResponse({"value": True})

    async def queue_settings(request: Request) -> Response:
        problem = guard(request)
        if problem:
            return problem
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        sim.reject_sends_when_disconnected(bool(body.get("disableEnqueueWhenDisconnected")))
        return JSONResponse({"success": True})

    async def queue_count(request: Request) -> Response:
        problem = guard(request)
        if problem:
            return problem
        with state.lock:
            return JSONResponse({"count": sum(1 for m in state.sent if m["status"] == "QUEUED")})

    async def phone_exists(request: Request) -> Response:
        problem = guard(request)
        if problem:
            return problem
        phone = normalize_phone(request.path_params["phone"]) or request.path_params["phone"]
        exists = state.delivery_errors.get(phone) != "Phone number does not exist"
        return JSONResponse({"exists": exists, "phone": phone, "lid": None})

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 404
        if code == 405:
            return JSONResponse({"error": "METHOD_NOT_ALLOWED", "message": "Method not allowed"}, status_code=405)
        return JSONResponse({"error": "NOT_FOUND", "message": "Unable to find matching target resource method"},
                            status_code=404)

    base = "/instances/{instance}/token/{token}"
    routes = [
        Route(f"{base}/send-text", sender("text", lambda b: None), methods=["POST"]),
        Route(f"{base}/send-button-list", sender("button-list", check_buttons), methods=["POST"]),
        Route(f"{base}/send-link", sender("link", check_link), methods=["POST"]),
        Route(f"{base}/status", status, methods=["GET"]),
        Route(f"{base}/update-notify-sent-by-me", notify_sent_by_me, methods=["PUT"]),
        Route(f"{base}/update-queue-settings", queue_settings, methods=["PUT"]),
        Route(f"{base}/queue/count", queue_count, methods=["GET"]),
        Route(f"{base}/phone-exists/{{phone}}", phone_exists, methods=["GET"]),
    ]
    routes += [Route(f"{base}/{endpoint}", updater(kinds), methods=["PUT"]) for endpoint, kinds in UPDATE_ENDPOINTS.items()]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return SystemLayer(app, system, auth=None, error_body=zapi_error, idempotent_writes=False)
