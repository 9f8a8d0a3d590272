"""The operations API's keys, from the request's side (CONTRACTS §2.3, §10).

Starlette's ``AuthenticationMiddleware`` runs :class:`ApiKeyBackend` on the operations
routes: the key presented as ``X-API-Key`` or ``Authorization: Bearer`` is checked
against the key store (:mod:`carinho_pipelines.store.apikeys`) and becomes
``request.user`` with its scopes as ``request.auth.scopes``. Endpoints declare their scope
with :func:`requires` (Starlette's); the contract's answers are kept: no key → 401, an
unknown key → 401, a key without the scope → 403 naming it, the key store down → 503.
"""

from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    has_required_scope,
)
from starlette.authentication import requires as starlette_requires
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from carinho_pipelines.kernel.tags import launched_by_api
from carinho_pipelines.store.apikeys import SCOPES, ApiKey, audit, lookup  # noqa: F401 - the relay's names

from .auth import credential
from .errors import ApiError

#: the routes whose requests carry an operations key (the webhooks carry system tokens,
#: checked by their endpoints, and cost no key lookup)
OPERATIONS_PREFIXES = ("/api/events", "/api/dlq", "/api/sync", "/api/privacy", "/api/destinations", "/status", "/metrics")


class KeyUser(BaseUser):
    """An operations API key, as ``request.user``."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.key.name


class UnknownKey(BaseUser):
    """A key was presented and is not a (live) key: every scope check answers 401."""

    is_authenticated = False
    display_name = ""


class StoreDown(AuthenticationError):
    """The key store could not be read."""


class ApiKeyBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        path = conn.url.path
        if not path.startswith(OPERATIONS_PREFIXES) or (path == "/api/events" and conn.scope.get("method") == "POST"):
            return None
        key = credential(conn, "x-api-key")
        if not key:
            return None
        try:
            found = await run_in_threadpool(lookup, conn.app.state.store, key)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreDown(exc.__class__.__name__) from exc
        if found is None:
            return AuthCredentials(), UnknownKey()
        scopes = SCOPES if "*" in found.scopes else tuple(found.scopes)
        return AuthCredentials(list(scopes)), KeyUser(found)


def on_auth_error(_conn: HTTPConnection, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreDown)
    return ApiError(503, "store_unavailable", "cannot check the API key now", headers={"Retry-After": "5"}).response()


#: endpoint (as routed, wrapped by :func:`requires`) → its scope, for the 403's message
_SCOPE_OF: dict[Callable[..., Any], str] = {}


def requires(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Starlette's ``requires(scope)``; the endpoint's scope is remembered for the answer."""
    def decorate(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = starlette_requires(scope)(endpoint)
        _SCOPE_OF[wrapped] = scope
        return wrapped
    return decorate


def check_scope(request: Request, scope: str) -> None:
    """The same check as :func:`requires`, for a route whose scope depends on settings."""
    if not has_required_scope(request, [scope]):
        raise denied(request, scope)


def denied(request: Request, scope: str | None) -> ApiError:
    """The contract's answer to a request without ``scope``."""
    if isinstance(request.user, UnknownKey):
        return ApiError(401, "unauthorized", "invalid API key")
    if not request.user.is_authenticated:
        return ApiError(401, "unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)")
    return ApiError(403, "forbidden", f"this API key lacks the scope {scope!r}", scope=scope)


def forbidden_handler(request: Request, exc: HTTPException) -> JSONResponse | None:
    """Starlette's ``requires`` raises a bare 403: answer it as the contract says."""
    endpoint = request.scope.get("endpoint")
    if exc.status_code != 403 or endpoint not in _SCOPE_OF:
        return None
    return denied(request, _SCOPE_OF[endpoint]).response()


def key_of(request: Request) -> ApiKey:
    """The authenticated key (an endpoint behind :func:`requires`)."""
    return request.user.key


#: the ``User-Agent`` of the ``carinho`` ops CLI (carinho_pipelines.ops_cli)
CLI_USER_AGENT = "carinho-cli"


def launched_by(request: Request, key: ApiKey) -> str:
    """``carinho/launched_by`` of a run an API request launches: ``api:<key name>``, or
    ``cli:<key name>`` when the ``carinho`` CLI sent it (the key, not the agent, is what
    is authenticated; the agent only says which tool the person used)."""
    return launched_by_api(key.name, cli=request.headers.get("user-agent", "").startswith(CLI_USER_AGENT))



