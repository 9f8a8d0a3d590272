"""Phone normalisation and masking of personal data (CONTRACTS §1, LGPD).

Everything that may reach a log line, a run tag or UI metadata goes through
:func:`mask_payload` / :func:`mask_phone` first.
"""

from __future__ import annotations

import re
from typing import Any

_NON_DIGITS = re.compile(r"\D+")
_EMAIL = re.compile(r"^([^@\s]{1,64})@([^@\s]+)$")

#: payload keys whose values are personal data, masked wherever shown
PHONE_KEYS = frozenset({"phone", "client_phone", "caregiver_phone", "sender_phone", "connectedPhone", "participantPhone"})
EMAIL_KEYS = frozenset({"email", "client_email", "caregiver_email"})
TEXT_KEYS = frozenset({"message", "content", "text", "body", "caption", "comment", "cpf", "rg", "name",
                       "client_name", "caregiver_name", "senderName", "chatName", "lead_name"})
SECRET_KEYS = frozenset({"token", "password", "secret", "api_key", "authorization"})


def normalize_phone(raw: str | None) -> str | None:
    """Digits with country code: ``55`` + DDD + number.

    Strips punctuation, a leading ``+`` and a leading trunk ``0``; prefixes ``55`` to
    a 10/11-digit national number (including DDD 55 numbers, which the PHP module got
    wrong). Returns ``None`` when nothing usable remains.
    """
    if raw is None:
        return None
    digits = _NON_DIGITS.sub("", str(raw))
    if not digits:
        return None
    digits = digits.lstrip("0") if digits.startswith("0") else digits
    if len(digits) in (10, 11):
        return "55" + digits
    if len(digits) in (12, 13) and digits.startswith("55"):
        return digits
    return digits if len(digits) >= 8 else None


def mask_phone(phone: str | None) -> str | None:
    """``5511988887777`` → ``55119****7777``."""
    if not phone:
        return phone
    digits = _NON_DIGITS.sub("", str(phone))
    if len(digits) < 8:
        return "****"
    return digits[:5] + "****" + digits[-4:]


def mask_email(email: str | None) -> str | None:
    if not email:
        return email
    m = _EMAIL.match(str(email))
    if not m:
        return "***"
    return m.group(1)[0] + "***@" + m.group(2)


def mask_text(value: Any) -> str:
    if value is None:
        return value
    return f"<{len(str(value))} chars>"


def mask_payload(value: Any, _key: str | None = None) -> Any:
    """A deep copy of a JSON payload with personal data and secrets masked."""
    if isinstance(value, dict):
        return {k: mask_payload(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_payload(v, _key) for v in value]
    if _key is None or value is None or isinstance(value, bool):
        return value
    key = _key
    if key in SECRET_KEYS:
        return "***"
    if key in PHONE_KEYS:
        return mask_phone(str(value))
    if key in EMAIL_KEYS:
        return mask_email(str(value))
    if key in TEXT_KEYS:
        return mask_text(value)
    return value
