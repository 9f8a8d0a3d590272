"""The shared base of every HTTP client (CONTRACTS §1, §4, §10).

One ``httpx.Client`` per resource instance, created on first use and closed when the
run tears its resources down; every client of the process shares one TLS context
(building one loads the CA bundle: ~30 ms of CPU, which a warm run worker would
otherwise pay for each run). Failures become :class:`~carinho_pipelines.kernel.errors.ActionError`
with the class that decides retry versus manual review.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from carinho_pipelines.kernel.errors import (
    ERROR,
    UNAVAILABLE,
    ActionError,
    error_class_for_status,
    parse_retry_after,
    summarize_body,
)
from carinho_pipelines.kernel.privacy import mask_in_text, pii_values
from carinho_pipelines.kernel.log_redaction import install_log_redaction, redact, register_secret

__all__ = [
    "HttpResource",
    "InternalApiResource",
    "install_log_redaction",
    "redact",
    "scrub",
    "unwrap",
]

logger = logging.getLogger("carinho_pipelines.resources")

SOURCE_SYSTEM = "integracoes"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: a guard against a server whose ``links.next`` never ends
MAX_PAGES = 500

_TLS_CONTEXT: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The process's TLS context for outgoing calls (httpx's default verification)."""
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        with _TLS_LOCK:
            if _TLS_CONTEXT is None:
                _TLS_CONTEXT = httpx.create_ssl_context()
    return _TLS_CONTEXT


_UNAVAILABLE_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)


def unwrap(body: Any) -> Any:
    """``{"data": x, ...}`` → ``x``; a bare object or list is returned as is."""
    if isinstance(body, dict) and "data" in body and isinstance(body["data"], (dict, list)):
        return body["data"]
    return body


def next_page(body: Any, current_page: int) -> tuple[str | None, int | None]:
    """Where the next page is: ``(next_url, None)``, ``(None, page_number)`` or ``(None, None)``."""
    if not isinstance(body, dict):
        return None, None
    links = body.get("links")
    if isinstance(links, dict) and isinstance(links.get("next"), str) and links["next"]:
        return links["next"], None
    if isinstance(body.get("next_page_url"), str) and body["next_page_url"]:
        return body["next_page_url"], None
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else body
    last_page = meta.get("last_page")
    page = meta.get("current_page", current_page)
    try:
        if last_page is not None and int(page) < int(last_page):
            return None, int(page) + 1
    except (TypeError, ValueError):
        pass
    return None, None


class HttpResource(ConfigurableResource):
    """httpx client with the hub's timeouts and error classification."""

    #: the destination name used in errors, logs and circuit breakers
    destination: ClassVar[str] = "http"

    base_url: str = Field(description="Base URL of the destination, without a trailing slash.")
    timeout_seconds: float = Field(default=10.0, description="Per-call timeout (CONTRACTS §1).")
    connect_timeout_seconds: float = Field(default=3.0, description="Connect timeout (CONTRACTS §1).")

    _client: httpx.Client | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # -- lifecycle -----------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        install_log_redaction()
        register_secret(*self._secrets())

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    @property
    def client(self) -> httpx.Client:
        # a closed client can come from a copy of this resource that was torn down
        if self._client is None or self._client.is_closed:
            with self._client_lock:
                if self._client is None or self._client.is_closed:
                    register_secret(*self._secrets())
                    self._client = httpx.Client(
                        base_url=self.base_url.rstrip("/"),
                        timeout=httpx.Timeout(self.timeout_seconds, connect=self.connect_timeout_seconds),
                        headers={"Accept": "application/json", "User-Agent": "carinho-integracoes/1.0"},
                        follow_redirects=False,
                        verify=tls_context(),
                    )
        return self._client

    # -- hooks for subclasses ---------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        return ()

    def _headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {"X-Request-ID": str(uuid.uuid4())}
        if idempotency_key and method in WRITE_METHODS:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    # -- calls --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        not_found_ok: bool = False,
    ) -> httpx.Response | None:
        """One call; an ``ActionError`` for anything but a 2xx (or a tolerated 404 → ``None``)."""
        method = method.upper()
        sent_headers = self._headers(method, idempotency_key)
        if headers:
            sent_headers.update(headers)
        request_id = sent_headers.get("X-Request-ID")
        where = f"{method} {redact(urlsplit(path).path or path)}"
        clean_params = {k: v for k, v in (params or {}).items() if v is not None} or None
        # personal data the hub sent, masked wherever the answer quotes it back
        known = pii_values({"params": clean_params or {}, "body": json_body if content is None else _json_or_none(content)})
        started = time.monotonic()
        try:
            response = self.client.request(
                method, path, params=clean_params, json=json_body, content=content, headers=sent_headers
            )
        except _UNAVAILABLE_EXCEPTIONS as exc:
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
            logger.warning("%s %s %s (%s)", self.destination, where, kind, type(exc).__name__)
            raise ActionError(
                UNAVAILABLE,
                f"{where} {kind}: {type(exc).__name__}",
                destination=self.destination,
                request_id=request_id,
            ) from exc
        except httpx.HTTPError as exc:
            raise ActionError(
                ERROR, f"{where} failed: {type(exc).__name__}", destination=self.destination, request_id=request_id
            ) from exc
        elapsed = time.monotonic() - started
        logger.debug("%s %s -> %s in %.3fs", self.destination, where, response.status_code, elapsed)

        if response.status_code == 404 and not_found_ok:
            return None
        error_class = error_class_for_status(response.status_code)
        if error_class is not None:
            raise ActionError(
                error_class,
                f"{where} answered {response.status_code}{_short_reason(response, known)}",
                status=response.status_code,
                response_body=body_summary(response, known=known),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                destination=self.destination,
                request_id=request_id,
            )
        return response

    def json_of(self, response: httpx.Response | None) -> Any:
        """The decoded body (``None`` when empty); a non-JSON 2xx is an ``error``."""
        if response is None or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ActionError(
                ERROR,
                f"{response.request.method} answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
                response_body=body_summary(response, limit=200),
                destination=self.destination,
            ) from exc

    def get_object(self, path: str, *, params: Mapping[str, Any] | None = None, not_found_ok: bool = False) -> Any:
        response = self.request("GET", path, params=params, not_found_ok=not_found_ok)
        if response is None:
            return None
        return unwrap(self.json_of(response))

    def get_all(self, path: str, *, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a list endpoint, following ``links.next`` / ``meta.last_page``."""
        return [item for page in self.pages(path, params=params) for item in page]

    def pages(self, path: str, *, params: Mapping[str, Any] | None = None) -> Pager:
        """A list endpoint read one page at a time (see :class:`Pager`)."""
        return Pager(self, path, params)

    def write(self, method: str, path: str, body: Any, *, idempotency_key: str) -> Any:
        """POST/PUT ``body``; the unwrapped answer (``{}`` for an empty one)."""
        if not idempotency_key:
            raise ValueError("writes need an idempotency_key stable across retries")
        response = self.request(method, path, json_body=body, idempotency_key=idempotency_key)
        data = unwrap(self.json_of(response))
        return {} if data is None else data

    def _same_origin(self, next_url: str, path: str, query: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Follow a next link, but never send our credentials to another host."""
        parts = urlsplit(next_url)
        base = urlsplit(self.base_url)
        next_query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if not parts.netloc:
            # the link carries its own query string; do not add ours again
            return parts.path or path, next_query
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), next_query
        return path, {**dict(query), **({"page": next_query["page"]} if "page" in next_query else {})}


class Pager:
    """Reads a list endpoint page by page, following ``links.next`` / ``meta.last_page``.

    :meth:`next_page` moves on only when a page was read, so a failed read can simply be
    retried; iterating gives the pages without retries. A link already followed, or more
    than :data:`MAX_PAGES` pages, ends the list (a server whose ``links.next`` loops).
    """

    def __init__(self, resource: HttpResource, path: str, params: Mapping[str, Any] | None = None) -> None:
        self.resource = resource
        self.path = path
        self.params = dict(params or {})
        self._url = path
        self._query: dict[str, Any] = dict(self.params)
        self._page = 1
        self._seen: set[str] = set()
        self.read = 0  #: pages read so far
        self.done = False

    def next_page(self) -> list[Any] | None:
        """The next page's items; None once the list is over."""
        if self.done:
            return None
        if self.read >= MAX_PAGES:
            logger.warning("%s GET %s: stopped after %d pages", self.resource.destination, self.path, MAX_PAGES)
            self.done = True
            return None
        body = self.resource.json_of(self.resource.request("GET", self._url, params=self._query))
        self.read += 1
        data = unwrap(body)
        items = data if isinstance(data, list) else ([] if data is None else [data])
        next_url, next_number = next_page(body, self._page)
        if next_url:
            url, query = self.resource._same_origin(next_url, self.path, self._query)
            key = url + "?" + json.dumps(query, sort_keys=True, default=str)
            if key in self._seen:
                self.done = True
            else:
                self._seen.add(key)
                self._url, self._query = url, query
                self._page += 1
        elif next_number:
            self._page = next_number
            self._query = {**self.params, "page": next_number}
        else:
            self.done = True
        return items

    def __iter__(self):
        while (page := self.next_page()) is not None:
            yield page


class InternalApiResource(HttpResource):
    """An internal Carinho system: bearer token and the §1 headers on every call."""

    token: str = Field(default="", description="CARINHO_<SYSTEM>_TOKEN: this system's credential.")

    def _secrets(self) -> tuple[str, ...]:
        return (self.token,)

    def _headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        headers = super()._headers(method, idempotency_key)
        headers["X-Source-System"] = SOURCE_SYSTEM
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
            headers["X-Internal-Token"] = self.token
        return headers




def _json_or_none(content: bytes) -> Any:
    """A raw body the hub sent (a signed forward), decoded when it is JSON."""
    try:
        return json.loads(content)
    except ValueError:
        return None


def scrub(text: str, known: list[tuple[str, str]] | tuple = ()) -> str:
    """Free text from a server, with secrets and the personal data inside it (the values
    the hub sent, CPFs, phone-like numbers, e-mails) masked; the rest stays readable."""
    return mask_in_text(redact(text), known)


def body_summary(response: httpx.Response, *, limit: int = 1000, known: list[tuple[str, str]] | tuple = ()) -> str | None:
    """The response body for errors and metadata: JSON masked by key (error texts kept
    readable, personal data inside them masked), other text scrubbed."""
    text = response.text
    try:
        json.loads(text)
    except ValueError:
        return summarize_body(scrub(text, known), limit=limit)
    return summarize_body(redact(text), limit=limit, known=known)


def _short_reason(response: httpx.Response, known: list[tuple[str, str]] | tuple = ()) -> str:
    """A short human reason from the body (``message``/``error``), personal data masked."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return f": {scrub(value, known)[:300]}"
    return ""
