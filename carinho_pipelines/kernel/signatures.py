"""Webhook signatures (CONTRACTS §2.2, §10): Standard Webhooks through its reference
library (``standardwebhooks``), and the legacy ``X-Webhook-Signature``. One key rule for
both directions: the relay verifying what a system signed, and the hub signing what it
forwards."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac

from standardwebhooks.webhooks import Webhook


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (a secret that is not base64 is used
    as it is, rather than refusing to sign or verify)."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, as the reference library signs."""
    return Webhook(secret_key(secret)).sign(msg_id, dt.datetime.fromtimestamp(timestamp, dt.timezone.utc),
                                            body.decode("utf-8"))


def legacy_signature(secret: str, body: bytes) -> str:
    """``X-Webhook-Signature``: the hex HMAC-SHA256 of the raw body, keyed by the secret as configured."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
