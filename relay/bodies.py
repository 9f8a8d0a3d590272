"""Reading request bodies: size limit, JSON content type, gzip, malformed JSON."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from starlette.requests import Request

from carinho_pipelines.kernel.settings import MAX_BODY_BYTES

from .errors import ApiError


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes (1 MiB)")


async def read_raw(request: Request) -> bytes:
    """The (decompressed) body, refusing more than 1 MiB before or after gzip."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported (use gzip)")
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise ApiError(400, "bad_request", "the body is not valid gzip") from exc
    if len(out) > MAX_BODY_BYTES or decompressor.unconsumed_tail:
        raise _too_large()
    return out


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def read_json_object(request: Request) -> tuple[bytes, dict[str, Any]]:
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise ApiError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
    raw = await read_raw(request)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object", field="body", reason="not an object",
                       fields=[{"field": "body", "reason": "not an object"}])
    if b"\\u" in raw:  # only escapes can smuggle in what a database cannot store
        found = list(_unstorable(data, ""))
        if found:
            message = "; ".join(f"{p['field']}: {p['reason']}" for p in found)
            raise ApiError(422, "validation_failed", message, field=found[0]["field"], reason=found[0]["reason"],
                           fields=found)
    return raw, data


def _storable(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def _unstorable(value: Any, path: str):
    """Strings PostgreSQL cannot store (NUL, lone surrogates), in keys or values."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            reason = _storable(key)
            if reason:
                yield {"field": path or "body", "reason": "a key " + reason}
                continue
            yield from _unstorable(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unstorable(item, f"{path}[{i}]")
    elif isinstance(value, str):
        reason = _storable(value)
        if reason:
            yield {"field": path or "body", "reason": reason}


__all__ = ["read_raw", "read_json_object", "gzip"]
