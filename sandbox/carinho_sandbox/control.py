"""The admin API of the sandbox, on its own port so a "down" system can still be driven."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from carinho_sandbox.zapi import CallbackFailed, NoWebhook


def control_app(sandbox: Any) -> Starlette:
    """The control server of ``sandbox`` (a :class:`~carinho_sandbox.server.Sandbox`; not
    imported here: the server module builds this app, so the import runs one way)."""

    def unknown(system: str) -> Response | None:
        if system not in sandbox.systems:
            return JSONResponse({"error": "unknown_system", "message": f"unknown system {system!r}",
                                 "systems": list(sandbox.systems)}, status_code=404)
        return None

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        parsed = await request.json()
        return parsed if isinstance(parsed, dict) else {}

    async def systems(request: Request) -> Response:
        return JSONResponse({"systems": {
            name: {"url": sandbox.url(name), "up": sandbox.is_up(name), "faults": sandbox.faults(name),
                   "calls": len(sandbox.systems[name].calls)}
            for name in sandbox.systems
        }})

    async def env(request: Request) -> Response:
        return JSONResponse(sandbox.env())

    async def calls(request: Request) -> Response:
        system = request.path_params["system"]
        return unknown(system) or JSONResponse({"calls": sandbox.calls(system)})

    async def clear_calls(request: Request) -> Response:
        system = request.path_params["system"]
        if problem := unknown(system):
            return problem
        sandbox.clear_calls(system)
        return JSONResponse({"cleared": True})

    async def state(request: Request) -> Response:
        system = request.path_params["system"]
        return unknown(system) or JSONResponse(sandbox.dump(system))

    async def set_faults(request: Request) -> Response:
        system = request.path_params["system"]
        if problem := unknown(system):
            return problem
        try:
            body = await body_of(request)
        except ValueError:
            return JSONResponse({"error": "malformed_json", "message": "body must be JSON"}, status_code=400)
        if "status" in body:
            sandbox.fail(system, status=int(body["status"]), count=int(body.get("count", 1)),
                         retry_after=body.get("retry_after"))
        if "latency" in body:
            sandbox.latency(system, float(body["latency"] or 0))
        if body.get("down") is True:
            await sandbox.adown(system)
        if body.get("down") is False or body.get("up") is True:
            await sandbox.aup(system)
        if not {"status", "latency", "down", "up"} & body.keys():
            return JSONResponse({"error": "invalid", "message": "give status (+count, retry_after), latency, down or up"},
                                status_code=422)
        return JSONResponse({"system": system, "up": sandbox.is_up(system), "faults": sandbox.faults(system)})

    async def clear_faults(request: Request) -> Response:
        system = request.path_params["system"]
        if problem := unknown(system):
            return problem
        await sandbox.aclear_faults(system)
        return JSONResponse({"system": system, "up": sandbox.is_up(system), "faults": sandbox.faults(system)})

    async def reset(request: Request) -> Response:
        await sandbox.areset()
        return JSONResponse({"reset": True})

    async def seed(request: Request) -> Response:
        body = await body_of(request)
        try:
            counts = sandbox.seed(body or None)
        except KeyError as exc:
            return JSONResponse({"error": "unknown_system", "message": str(exc)}, status_code=422)
        return JSONResponse({"seeded": counts})

    async def zapi_disconnect(request: Request) -> Response:
        await sandbox.zapi.adisconnect()
        return JSONResponse({"connected": sandbox.zapi.connected})

    async def zapi_connect(request: Request) -> Response:
        await sandbox.zapi.aconnect()
        return JSONResponse({"connected": sandbox.zapi.connected})

    async def zapi_sent(request: Request) -> Response:
        return JSONResponse({"sent": sandbox.zapi.sent()})

    async def zapi_callbacks(request: Request) -> Response:
        return JSONResponse({"callbacks": sandbox.zapi.callbacks()})

    async def zapi_webhook(request: Request) -> Response:
        body = await body_of(request)
        sandbox.zapi.set_webhook(body.get("url"), append_token=bool(body.get("append_token", True)))
        if "auto_callbacks" in body:
            sandbox.zapi.set_auto_callbacks(body["auto_callbacks"])
        return JSONResponse({"webhooks": {k: _redact(v) for k, v in sandbox.zapi.webhooks().items()}})

    async def emit(kind: str, payload: dict[str, Any], gzip: bool) -> Response:
        try:
            status = await sandbox.zapi.emit(kind, payload, gzip=gzip, check=False)
        except NoWebhook as exc:
            return JSONResponse({"error": "no_webhook", "message": str(exc)}, status_code=409)
        except (httpx.HTTPError, CallbackFailed) as exc:
            return JSONResponse({"error": "webhook_unreachable", "message": f"{type(exc).__name__}: {exc}"},
                                status_code=502)
        last = sandbox.zapi.callbacks()[-1]
        return JSONResponse({"payload": payload, "webhook_status": status, "webhook_response": last.get("response")})

    async def emit_received(request: Request) -> Response:
        body = await body_of(request)
        if not body.get("phone") or (body.get("text") is None and body.get("button_id") is None):
            return JSONResponse({"error": "invalid", "message": "phone and text or button_id are required"},
                                status_code=422)
        payload = sandbox.zapi.received_payload(
            body["phone"], body.get("text"), body.get("button_id"),
            body.get("sender_name") or "Cliente Sandbox", body.get("reference_message_id"), body.get("button_label"),
        )
        return await emit("received", payload, bool(body.get("gzip")))

    async def emit_status(request: Request) -> Response:
        body = await body_of(request)
        if not body.get("ids") or not body.get("status"):
            return JSONResponse({"error": "invalid", "message": "ids and status are required"}, status_code=422)
        return await emit("message_status", sandbox.zapi.status_payload(body["ids"], body["status"], body.get("phone")),
                          bool(body.get("gzip")))

    async def emit_delivery(request: Request) -> Response:
        body = await body_of(request)
        if not body.get("message_id"):
            return JSONResponse({"error": "invalid", "message": "message_id is required"}, status_code=422)
        payload = sandbox.zapi.delivery_payload(body["message_id"], body.get("error"), body.get("phone"))
        return await emit("delivery", payload, bool(body.get("gzip")))

    return Starlette(routes=[
        Route("/systems", systems, methods=["GET"]),
        Route("/env", env, methods=["GET"]),
        Route("/systems/{system}/calls", calls, methods=["GET"]),
        Route("/systems/{system}/calls", clear_calls, methods=["DELETE"]),
        Route("/systems/{system}/state", state, methods=["GET"]),
        Route("/systems/{system}/faults", set_faults, methods=["POST"]),
        Route("/systems/{system}/faults", clear_faults, methods=["DELETE"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/seed", seed, methods=["POST"]),
        Route("/zapi/disconnect", zapi_disconnect, methods=["POST"]),
        Route("/zapi/connect", zapi_connect, methods=["POST"]),
        Route("/zapi/sent", zapi_sent, methods=["GET"]),
        Route("/zapi/callbacks", zapi_callbacks, methods=["GET"]),
        Route("/zapi/webhook", zapi_webhook, methods=["PUT", "POST"]),
        Route("/zapi/emit/received", emit_received, methods=["POST"]),
        Route("/zapi/emit/status", emit_status, methods=["POST"]),
        Route("/zapi/emit/delivery", emit_delivery, methods=["POST"]),
    ])


def _redact(url: str | None) -> str | None:
    from carinho_sandbox.zapi import redact_url

    return redact_url(url)


DEFAULT_CONTROL_URL = "http://127.0.0.1:8109"


class ControlError(RuntimeError):
    pass


class ControlClient:
    """Drives a sandbox running elsewhere (another process) through its control server."""

    def __init__(self, url: str = DEFAULT_CONTROL_URL, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ControlError(f"sandbox control server at {self.url} unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise ControlError(f"{method} {path} → {response.status_code}: {response.text}")
        return response.json()

    def systems(self) -> dict[str, Any]:
        return self._call("GET", "/systems")["systems"]

    def env(self) -> dict[str, str]:
        return self._call("GET", "/env")

    def calls(self, system: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/systems/{system}/calls")["calls"]

    def faults(self, system: str, **fault: Any) -> dict[str, Any]:
        return self._call("POST", f"/systems/{system}/faults", fault)

    def clear_faults(self, system: str) -> dict[str, Any]:
        return self._call("DELETE", f"/systems/{system}/faults")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def seed(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/seed", data or {})

    def zapi_connect(self, connected: bool) -> dict[str, Any]:
        return self._call("POST", "/zapi/connect" if connected else "/zapi/disconnect")

    def zapi_webhook(self, url: str | None, auto_callbacks: float | None = None) -> dict[str, Any]:
        return self._call("PUT", "/zapi/webhook", {"url": url, "auto_callbacks": auto_callbacks})

    def zapi_sent(self) -> list[dict[str, Any]]:
        return self._call("GET", "/zapi/sent")["sent"]

    def emit_received(self, phone: str, text: str | None = None, button_id: str | None = None,
                      sender_name: str | None = None, gzip: bool = False) -> dict[str, Any]:
        return self._call("POST", "/zapi/emit/received", {"phone": phone, "text": text, "button_id": button_id,
                                                          "sender_name": sender_name, "gzip": gzip})
