"""Who is posting: per-system credentials, Z-API's webhook token, signatures
(CONTRACTS §2.2, §10)."""

from __future__ import annotations

import hmac
import time

from starlette.requests import HTTPConnection, Request

from carinho_pipelines.kernel import settings
from carinho_pipelines.kernel import signatures as signing

from .errors import ApiError

SIGNATURE_TOLERANCE_SECONDS = 300


def credential(conn: HTTPConnection, *headers: str) -> str | None:
    """The one bearer parser: ``Authorization: Bearer <token>``, else the first of
    ``headers`` that is set."""
    auth = conn.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return next((conn.headers[h] for h in headers if conn.headers.get(h)), None)


def presented_token(request: Request) -> str | None:
    """A system's webhook token (CONTRACTS §2.2)."""
    return credential(request, "x-internal-token", "x-api-key")


def authenticate_system(request: Request) -> str:
    """The system whose token was presented; 401 when none matches."""
    token = presented_token(request)
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "missing credentials: send Authorization: Bearer <token> (or X-Internal-Token / X-API-Key)",
        )
    system = settings.system_for_token(token)
    if system is None:
        raise ApiError(401, "unauthorized", "invalid credentials")
    return system


def require_system(request: Request, expected: str) -> str:
    system = authenticate_system(request)
    if system != expected:
        raise ApiError(403, "forbidden", f"credentials of {system!r} cannot post to {expected!r}'s route")
    return system


def authenticate_zapi(request: Request) -> None:
    expected = settings.env("ZAPI_WEBHOOK_TOKEN")
    if not expected:
        raise ApiError(401, "unauthorized", "Z-API webhooks are refused: ZAPI_WEBHOOK_TOKEN is not configured")
    candidates = [request.query_params.get("token"), request.headers.get("z-api-token")]
    for candidate in candidates:
        if candidate and hmac.compare_digest(candidate.encode(), expected.encode()):
            return
    raise ApiError(401, "unauthorized", "missing or invalid Z-API webhook token")


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<signature>`` (used by tests and forwarding): :func:`carinho_pipelines.kernel.signatures.sign`."""
    return signing.sign(secret, msg_id, timestamp, body)


def verify_signature(request: Request, system: str, body: bytes, now: float | None = None) -> None:
    """When ``CARINHO_<SYS>_WEBHOOK_SECRET`` is set, a valid signature is required."""
    secret = settings.system_config(system).webhook_secret
    if not secret:
        return
    headers = request.headers
    msg_id, stamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if msg_id and stamp and signatures:
        try:
            ts = int(stamp)
        except ValueError as exc:
            raise ApiError(401, "invalid_signature", "webhook-timestamp is not a unix timestamp") from exc
        if abs((now or time.time()) - ts) > SIGNATURE_TOLERANCE_SECONDS:
            raise ApiError(401, "invalid_signature", "webhook-timestamp is more than 5 minutes away from now")
        expected = sign_standard_webhook(secret, msg_id, ts, body).split(",", 1)[1]
        for part in signatures.split():
            version, _, sig = part.partition(",")
            if version == "v1" and hmac.compare_digest(sig.encode(), expected.encode()):
                return
        raise ApiError(401, "invalid_signature", "webhook-signature does not match")
    legacy = headers.get("x-webhook-signature")
    if legacy:
        expected = signing.legacy_signature(secret, body)
        if hmac.compare_digest(legacy.strip().lower().removeprefix("sha256=").encode(), expected.encode()):
            return
        raise ApiError(401, "invalid_signature", "X-Webhook-Signature does not match")
    raise ApiError(
        401,
        "missing_signature",
        "this system must sign its webhooks (Standard Webhooks headers or X-Webhook-Signature)",
    )
