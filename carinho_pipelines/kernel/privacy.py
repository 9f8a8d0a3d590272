"""Phone normalisation and masking of personal data (CONTRACTS §1, LGPD).

Everything that may reach a log line, a run tag or UI metadata goes through
:func:`mask_payload` / :func:`mask_phone` first. A downstream system's error text
(a 422's ``message``) stays readable: :func:`mask_response` / :func:`mask_in_text`
mask the personal data *inside* it (phones, e-mails, CPF, the names the hub sent).
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
NAME_KEYS = frozenset({"name", "client_name", "caregiver_name", "senderName", "chatName", "lead_name"})
CPF_KEYS = frozenset({"cpf", "rg"})
#: free text a person wrote (a WhatsApp message, a lead's message): never shown, even in part
PERSONAL_TEXT_KEYS = frozenset({"content", "text", "body", "caption", "comment"})

#: a formatted CPF, or digits right after the word "CPF"
_CPF_IN_TEXT = re.compile(r"(CPF\s*[:=]?\s*)?((?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)|(?<=\s)\d[\d.-]{9,13}\d)", re.IGNORECASE)
_PHONE_IN_TEXT = re.compile(r"(?<![\w@])\+?\d[\d\s().-]{7,}\d(?![\w@])")
_EMAIL_IN_TEXT = re.compile(r"[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+\.[A-Za-z]{2,}")


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


def mask_name(name: Any) -> str | None:
    """``Maria da Silva`` → ``M*** d*** S***`` (initials only)."""
    if name is None:
        return None
    return " ".join(part[0] + "***" for part in str(name).split() if part) or "***"


def mask_cpf(value: Any) -> str:
    digits = _NON_DIGITS.sub("", str(value))
    return "***.***.***-" + digits[-2:] if len(digits) >= 2 else "***"


def pii_values(value: Any, _key: str | None = None) -> list[tuple[str, str]]:
    """The names, phones, e-mails and CPFs in a JSON body (what the hub sent), each with
    its masked form, longest first: :func:`mask_in_text` masks them wherever an answer
    quotes them back."""
    found: dict[str, str] = {}

    def walk(v: Any, key: str | None) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                walk(item, k)
        elif isinstance(v, list):
            for item in v:
                walk(item, key)
        elif isinstance(v, (str, int)) and not isinstance(v, bool) and len(str(v).strip()) >= 3:
            text = str(v).strip()
            if key in NAME_KEYS and isinstance(v, str):
                found[text] = mask_name(text) or "***"
                # "Maria" alone, or "Silva", quoted back
                found.update({p: mask_name(p) or "***" for p in text.split() if len(p) >= 3 and p[0].isupper()})
            elif key in PHONE_KEYS:
                found[text] = mask_phone(text) or "****"
            elif key in EMAIL_KEYS:
                found[text] = mask_email(text) or "***"
            elif key in CPF_KEYS:
                found[text] = mask_cpf(text)

    walk(value, _key)
    return sorted(found.items(), key=lambda kv: len(kv[0]), reverse=True)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}")


def _phone_match(m: re.Match) -> str:
    if _DATE.search(m.group(0)):  # 2026-12-01, 01/12/2026: a date, not a phone
        return m.group(0)
    return mask_phone(m.group(0)) or "****"


def _cpf_match(m: re.Match) -> str:
    prefix, number = m.group(1), m.group(2)
    if prefix is None and "." not in number:  # bare digits without "CPF": a phone, masked below
        return m.group(0)
    return (prefix or "") + mask_cpf(number)


def mask_in_text(text: Any, known: list[tuple[str, str]] | tuple = ()) -> Any:
    """Free text from a downstream system (an error message) with the personal data
    inside it masked and the rest left readable: the ``known`` values (names, phones…
    the hub sent, from :func:`pii_values`), CPFs, phone numbers and e-mail addresses."""
    if not isinstance(text, str) or not text:
        return text
    for value, masked in known:
        if value and value in text:
            text = text.replace(value, masked)
    text = _CPF_IN_TEXT.sub(_cpf_match, text)
    text = _PHONE_IN_TEXT.sub(_phone_match, text)
    return _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)) or "***", text)


#: containers of validation messages in an answer (``{"errors": {"email": ["… já cadastrado"]}}``):
#: below them a key names the field a message is about, the values are messages
MESSAGE_CONTAINER_KEYS = frozenset({"errors", "error", "detail", "details", "messages", "violations"})


def mask_response(value: Any, known: list[tuple[str, str]] | tuple = (), _key: str | None = None,
                  _messages: bool = False) -> Any:
    """A downstream answer (or an error built from one) fit for DLQ details and run
    metadata: personal fields masked as in :func:`mask_payload`, but error texts
    (``message``, ``errors.<field>``, ``detail``…) kept readable with the personal data
    inside them masked (:func:`mask_in_text`)."""
    if isinstance(value, dict):
        inner = _messages or (_key in MESSAGE_CONTAINER_KEYS)
        return {k: mask_response(v, known, k, inner) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_response(v, known, _key, _messages) for v in value]
    if value is None or isinstance(value, bool) or not isinstance(value, str):
        return value
    key = _key or ""
    if key in SECRET_KEYS:
        return "***"
    if _messages or key in MESSAGE_CONTAINER_KEYS:
        return mask_in_text(value, known)
    if key in PHONE_KEYS:
        return mask_phone(value)
    if key in EMAIL_KEYS:
        return mask_email(value)
    if key in NAME_KEYS:
        return mask_name(value)
    if key in CPF_KEYS:
        return mask_cpf(value)
    if key in PERSONAL_TEXT_KEYS:
        return mask_text(value)
    return mask_in_text(value, known)
