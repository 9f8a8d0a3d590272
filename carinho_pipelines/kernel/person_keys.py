"""Who an event is about, as keyed hashes (issue 16: search and erasure by person).

The normalised phone, e-mail and CPF found in a payload are hashed with HMAC-SHA256
under ``CARINHO_PERSON_KEY_SECRET``; only the hashes are stored (the payload itself is
masked everywhere it is shown, and purged by retention). The same normalisation turns
an operator's query (``?phone=(11) 98888-7777``) into the same hash, so a search is an
exact, indexed match and nothing personal is kept in clear to make it possible. Without
the secret nothing is hashed and search by person is off.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from .privacy import CPF_KEYS, EMAIL_KEYS, PHONE_KEYS, normalize_phone
from .settings import current

KINDS = ("phone", "email", "cpf")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_KEYS = {"phone": PHONE_KEYS, "email": EMAIL_KEYS, "cpf": CPF_KEYS - {"rg"}}


def secret() -> bytes | None:
    value = current().person_key_secret
    return value.encode("utf-8") if value else None


def normalise(kind: str, raw: Any) -> str | None:
    """The canonical form of a phone (``55`` + DDD + number), an e-mail (lower case) or
    a CPF (its 11 digits); ``None`` when ``raw`` is not one."""
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if kind == "phone":
        phone = normalize_phone(text)
        return phone if phone and len(phone) in (12, 13) else None
    if kind == "email":
        return text.lower() if _EMAIL.match(text) else None
    if kind == "cpf":
        digits = re.sub(r"\D", "", text)
        return digits if len(digits) == 11 else None
    raise ValueError(f"unknown kind {kind!r}")


def digest(kind: str, value: str, key: bytes) -> str:
    return hmac.new(key, f"{kind}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()


def values_of(payload: Any) -> set[tuple[str, str]]:
    """``(kind, normalised value)`` of every phone, e-mail and CPF in ``payload``, under
    whichever key names it (nested objects and lists included)."""
    found: set[tuple[str, str]] = set()

    def walk(value: Any, name: str | None) -> None:
        if isinstance(value, dict):
            for k, item in value.items():
                walk(item, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, name)
        elif name is not None:
            for kind, names in _KEYS.items():
                if name in names and (normal := normalise(kind, value)) is not None:
                    found.add((kind, normal))

    walk(payload, None)
    return found


def keys_of(payload: Any, key: bytes | None = None) -> set[tuple[str, str]]:
    """``(kind, digest)`` of every phone, e-mail and CPF in ``payload`` (none without the secret)."""
    key = key if key is not None else secret()
    if key is None:
        return set()
    return {(kind, digest(kind, value, key)) for kind, value in values_of(payload)}
