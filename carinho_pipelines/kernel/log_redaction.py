"""Keep secrets and phone numbers out of log lines (CONTRACTS §1, §10 "Logs").

httpx logs every request URL at INFO (``HTTP Request: POST https://…``). Z-API puts
its instance token in the URL path, the feedback links and Z-API's webhook carry
``?token=``, and CRM lookups carry ``?phone=``. :func:`install_log_redaction` adds a
filter to the HTTP client loggers that rewrites those records before any handler
sees them. Plain Python: the relay uses it for its access log too.
"""

from __future__ import annotations

import logging
import re
import threading

from carinho_pipelines.kernel.privacy import mask_email, mask_phone

REDACTED = "***"

_TOKEN_IN_PATH = re.compile(r"(/token/)[^/\s?#\"']+")
_SECRET_QUERY = re.compile(
    r"([?&](?:token|access_token|api_key|apikey|key|secret|signature|client_token)=)[^&\s#\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)[^\s\"',;]+", re.IGNORECASE)
_PHONE_QUERY = re.compile(r"([?&](?:phone|telefone|client_phone)=)([^&\s#\"']+)", re.IGNORECASE)
_EMAIL_QUERY = re.compile(r"([?&]email=)([^&\s#\"']+)", re.IGNORECASE)

#: loggers whose records may carry request URLs or headers
HTTP_LOGGERS: tuple[str, ...] = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "uvicorn.access",
    "uvicorn.error",
)

_secrets: set[str] = set()
_lock = threading.Lock()
_MIN_SECRET_LEN = 6


def register_secret(*values: str | None) -> None:
    """Redact these literal values wherever they appear in a filtered record."""
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_SECRET_LEN:
                _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with tokens, bearer credentials, known secrets and phones masked."""
    if not text:
        return text
    text = _TOKEN_IN_PATH.sub(r"\1" + REDACTED, text)
    text = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _PHONE_QUERY.sub(lambda m: m.group(1) + (mask_phone(m.group(2)) or ""), text)
    text = _EMAIL_QUERY.sub(lambda m: m.group(1) + (mask_email(m.group(2).replace("%40", "@")) or ""), text)
    # longest first, so a secret that contains another is replaced whole
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record in place; never drops a record.

    String arguments are redacted one by one and kept as arguments, because some
    formatters (uvicorn's access log) read ``record.args`` themselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        return True


def _redact_arg(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # keeps %d / %f formatting working
    text = value if isinstance(value, str) else str(value)  # e.g. httpx.URL
    cleaned = redact(text)
    return cleaned if cleaned != text or isinstance(value, str) else value


_FILTER = RedactingFilter()


def install_log_redaction(*logger_names: str) -> None:
    """Attach the redacting filter to the HTTP loggers (idempotent)."""
    for name in logger_names or HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
