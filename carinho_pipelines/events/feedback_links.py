"""Signed feedback links (CONTRACTS §3 ``feedback.requested``).

The token names the service, the client and the caregiver and expires after 7 days:
``<base64url(JSON claims)>.<base64url(HMAC-SHA256(claims part))>`` keyed with
``CARINHO_FEEDBACK_SECRET``. The PHP module used unsigned base64; anyone could rate
any service. Plain Python: the page that receives the rating verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carinho_pipelines.kernel.settings import env

TTL_SECONDS = 7 * 24 * 3600
DEFAULT_FEEDBACK_URL = "https://carinho.com.vc/feedback"


class FeedbackTokenError(ValueError):
    """The token cannot be trusted (malformed or bad signature)."""


class FeedbackTokenExpired(FeedbackTokenError):
    """The token was genuine but is older than its validity."""


@dataclass(frozen=True)
class FeedbackClaims:
    service_id: str
    client_id: str | None
    caregiver_id: str | None
    expires_at: int


def _secret(secret: str | None) -> bytes:
    value = secret or env("CARINHO_FEEDBACK_SECRET")
    if not value:
        raise RuntimeError("CARINHO_FEEDBACK_SECRET is not set: feedback links cannot be signed")
    return value.encode("utf-8")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


def _optional_id(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def make_token(
    service_id: Any,
    client_id: Any = None,
    caregiver_id: Any = None,
    *,
    now: float | datetime | None = None,
    ttl_seconds: int = TTL_SECONDS,
    secret: str | None = None,
) -> str:
    claims = {
        "service_id": str(service_id),
        "client_id": _optional_id(client_id),
        "caregiver_id": _optional_id(caregiver_id),
        "exp": int(_now(now)) + ttl_seconds,
    }
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    signature = _b64(hmac.new(_secret(secret), payload.encode("ascii"), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def make_link(
    service_id: Any,
    client_id: Any = None,
    caregiver_id: Any = None,
    *,
    now: float | datetime | None = None,
    base_url: str | None = None,
    secret: str | None = None,
) -> str:
    """``CARINHO_FEEDBACK_URL?token=<signed token>``."""
    url = base_url or env("CARINHO_FEEDBACK_URL", DEFAULT_FEEDBACK_URL) or DEFAULT_FEEDBACK_URL
    token = make_token(service_id, client_id, caregiver_id, now=now, secret=secret)
    return f"{url}{'&' if '?' in url else '?'}token={token}"


def verify_token(token: str, now: float | datetime | None = None, *, secret: str | None = None) -> FeedbackClaims:
    """The claims of a genuine, unexpired token; :class:`FeedbackTokenError` otherwise."""
    try:
        payload, signature = token.strip().split(".")
        given = _unb64(signature)
    except (AttributeError, ValueError) as exc:
        raise FeedbackTokenError("malformed feedback token") from exc
    expected = hmac.new(_secret(secret), payload.encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise FeedbackTokenError("feedback token signature does not match")
    try:
        claims = json.loads(_unb64(payload))
        expires_at = int(claims["exp"])
        service_id = str(claims["service_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedbackTokenError("malformed feedback token claims") from exc
    if _now(now) >= expires_at:
        raise FeedbackTokenExpired("feedback token expired")
    return FeedbackClaims(
        service_id=service_id,
        client_id=claims.get("client_id"),
        caregiver_id=claims.get("caregiver_id"),
        expires_at=expires_at,
    )
