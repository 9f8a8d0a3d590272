"""Log redaction: no secret in any log line (CONTRACTS §10 "Logs")."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"([?&](?:token|api_key|key)=)[^&\s\"']+", re.I), r"\1***"),
    (re.compile(r"(/token/)[^/\s\"']+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1***"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_installed = False


def install() -> None:
    """Attach the filter to the loggers that print URLs (uvicorn's access log, httpx)."""
    global _installed
    if _installed:
        return
    for name in ("uvicorn.access", "uvicorn.error", "httpx", "relay"):
        logging.getLogger(name).addFilter(RedactingFilter())
    _installed = True
