"""The relay's error contract (CONTRACTS §2): JSON ``{"error", "message", ...}``."""

from __future__ import annotations

from typing import Any

import sqlalchemy.exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"error": self.error, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid(field: str, reason: str, **extra: Any) -> ApiError:
    """A 422 for one field (``fields`` lists it too, like the 422s that name several)."""
    return ApiError(422, "validation_failed", f"{field}: {reason}", field=field, reason=reason,
                    fields=[{"field": field, "reason": reason}], **extra)


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_exception_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        {"error": code, "message": exc.detail or code.replace("_", " ")},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


#: what a database the relay reads (the event store, Dagster's storage) raises when it
#: cannot be reached or is not ready: restarting, a dropped connection, a locked or
#: unmigrated SQLite file. The caller may retry, so it is a 503, not a 500.
DATABASE_UNAVAILABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                        sqlalchemy.exc.DisconnectionError)


async def database_unavailable_handler(_request: Request, exc: Exception) -> JSONResponse:
    return ApiError(503, "store_unavailable", f"a database of the hub cannot be reached now ({type(exc).__name__})",
                    headers={"Retry-After": "5"}).response()


EXCEPTION_HANDLERS = {ApiError: api_error_handler, HTTPException: http_exception_handler,
                      **{cls: database_unavailable_handler for cls in DATABASE_UNAVAILABLE}}
