"""The error taxonomy of outbound actions (CONTRACTS §1, §10 "DLQ item").

Every failed call to a destination becomes an :class:`ActionError` whose
``error_class`` decides what happens next: ``unavailable`` is retried and re-driven
automatically once the destination is healthy, the others wait for a person.

Plain Python on purpose: the relay and the DLQ service import it without Dagster.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

from carinho_pipelines.kernel.privacy import mask_response

UNAVAILABLE = "unavailable"
REJECTED = "rejected"
INVALID = "invalid"
ERROR = "error"

#: every value ``ActionError.error_class`` can take
ERROR_CLASSES: tuple[str, ...] = (UNAVAILABLE, REJECTED, INVALID, ERROR)

#: statuses that mean "try again later", besides every 5xx
RETRYABLE_STATUSES = frozenset({408, 429})

MAX_BODY_CHARS = 1000


class ActionError(Exception):
    """A call to ``destination`` failed; ``error_class`` says how to treat it."""

    def __init__(
        self,
        error_class: str,
        message: str,
        *,
        status: int | None = None,
        response_body: str | None = None,
        retry_after: float | None = None,
        destination: str = "",
        request_id: str | None = None,
    ) -> None:
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"unknown error class {error_class!r}; expected one of {ERROR_CLASSES}")
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.response_body = response_body
        self.retry_after = retry_after
        self.destination = destination
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        return self.error_class == UNAVAILABLE

    def to_dict(self) -> dict[str, Any]:
        """Safe to show (bodies are already masked and truncated)."""
        return {
            "error_class": self.error_class,
            "message": self.message,
            "status": self.status,
            "destination": self.destination,
            "retry_after": self.retry_after,
            "response_body": self.response_body,
            "request_id": self.request_id,
        }

    def __str__(self) -> str:
        prefix = f"[{self.error_class}] {self.destination}: " if self.destination else f"[{self.error_class}] "
        return prefix + self.message

    def __repr__(self) -> str:
        return f"ActionError({self.error_class!r}, {self.message!r}, status={self.status!r}, destination={self.destination!r})"

    # Exceptions with keyword-only arguments do not survive pickling (multiprocess
    # executors, run workers) without this.
    def __reduce__(self):  # type: ignore[override]
        return (_rebuild, (self.to_dict(),))


def _rebuild(state: dict[str, Any]) -> ActionError:
    return ActionError(
        state["error_class"],
        state["message"],
        status=state["status"],
        response_body=state["response_body"],
        retry_after=state["retry_after"],
        destination=state["destination"],
        request_id=state.get("request_id"),
    )


def error_class_for_status(status: int) -> str | None:
    """The class of an HTTP status, ``None`` for a success."""
    if 200 <= status < 300:
        return None
    if status >= 500 or status in RETRYABLE_STATUSES:
        return UNAVAILABLE
    if status == 422:
        return INVALID
    if 400 <= status < 500:
        return REJECTED
    return ERROR


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def summarize_body(raw: bytes | str | None, *, limit: int = MAX_BODY_CHARS, known: Any = ()) -> str | None:
    """A response body fit for logs and DLQ metadata: masked when JSON (error texts kept
    readable with the personal data inside them masked), truncated."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        shown = text
    else:
        shown = json.dumps(mask_response(parsed, known), ensure_ascii=False, separators=(",", ":"))
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    return shown
