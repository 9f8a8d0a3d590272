"""A NUL character in the URL (``%00`` in the path or the query) is a 422 before any
handler runs: PostgreSQL cannot compare or store it, so it would otherwise surface as a
500 from whichever query the value reached. (Bodies: :func:`relay.bodies.read_json_object`.)"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = None
            if "\x00" in scope.get("path", ""):
                where = "path"
            elif b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
                where = "query"
            if where is not None:
                reason = "must not contain NUL characters"
                response = ApiError(422, "validation_failed", f"{where}: {reason}", field=where, reason=reason,
                                    fields=[{"field": where, "reason": reason}]).response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
