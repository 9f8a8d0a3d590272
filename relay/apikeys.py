"""The operations API's keys, from the request's side (CONTRACTS §2.3, §10): the key
presented as ``X-API-Key`` or ``Authorization: Bearer``, checked against the key store
(:mod:`carinho_pipelines.store.apikeys`). No key → 401; a key without the scope → 403.
"""

from __future__ import annotations

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from carinho_pipelines.store.apikeys import SCOPES, ApiKey, audit, lookup  # noqa: F401 - the relay's names
from carinho_pipelines.kernel.tags import launched_by_api

from .errors import ApiError


def _presented(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return request.headers.get("x-api-key") or None


async def require_scope(request: Request, scope: str) -> ApiKey:
    key = _presented(request)
    if not key:
        raise ApiError(401, "unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)")
    try:
        found = await run_in_threadpool(lookup, request.app.state.store, key)
    except sa.exc.SQLAlchemyError as exc:
        raise ApiError(503, "store_unavailable", "cannot check the API key now", headers={"Retry-After": "5"}) from exc
    if found is None:
        raise ApiError(401, "unauthorized", "invalid API key")
    if not found.allows(scope):
        raise ApiError(403, "forbidden", f"this API key lacks the scope {scope!r}", scope=scope)
    return found


#: the ``User-Agent`` of the ``carinho`` ops CLI (carinho_pipelines.ops_cli)
CLI_USER_AGENT = "carinho-cli"


def launched_by(request: Request, key: ApiKey) -> str:
    """``carinho/launched_by`` of a run an API request launches: ``api:<key name>``, or
    ``cli:<key name>`` when the ``carinho`` CLI sent it (the key, not the agent, is what
    is authenticated; the agent only says which tool the person used)."""
    return launched_by_api(key.name, cli=request.headers.get("user-agent", "").startswith(CLI_USER_AGENT))


