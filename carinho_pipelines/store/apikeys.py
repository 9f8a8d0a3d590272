"""The API-key store: keys with scopes for the operations API (CONTRACTS §2.3, §10).

Two sources: ``CARINHO_API_KEYS`` (``name:key:scope1,scope2;name2:key2:*``) and keys
created with ``carinho apikey create`` (stored as SHA-256 digests). A key is sent as
``X-API-Key`` or ``Authorization: Bearer``; the relay's auth middleware checks it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from carinho_pipelines.kernel.settings import current

from .clock import utcnow
from .event_store import EventStore, StoreUnavailable
from .tables import api_keys, audit_log

#: every scope the operations API checks
SCOPES = ("events:read", "dlq:read", "dlq:write", "sync:read", "sync:run", "status:read", "privacy:erase", "destinations:write")


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def configured_keys() -> list[tuple[str, str, frozenset[str]]]:
    out = []
    for item in current().api_keys.split(";"):
        parts = item.strip().split(":", 2)
        if len(parts) != 3 or not parts[0] or not parts[1]:
            continue
        out.append((parts[0], parts[1], frozenset(s.strip() for s in parts[2].split(",") if s.strip())))
    return out


def lookup(store: EventStore, key: str) -> ApiKey | None:
    found = None
    for name, value, scopes in configured_keys():
        if hmac.compare_digest(value.encode(), key.encode()):
            found = ApiKey(name, scopes)
    if found:
        return found
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(api_keys.c.name, api_keys.c.scopes).where(
                api_keys.c.key_hash == digest(key), api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return ApiKey(row.name, frozenset(s for s in row.scopes.split(",") if s))


def audit(store: EventStore, key: ApiKey, action: str, target: str | None, detail: dict | None = None) -> None:
    try:
        with store.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(at=utcnow(), key_name=key.name, action=action, target=target, detail=detail)
            )
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(exc.__class__.__name__) from exc


# -- management (the `carinho apikey` commands) ----------------------------------


def create_key(store: EventStore, name: str, scopes: list[str]) -> str:
    unknown = [s for s in scopes if s != "*" and s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)} or *")
    key = "carinho_" + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        existing = conn.execute(sa.select(api_keys.c.id, api_keys.c.revoked_at).where(api_keys.c.name == name)).first()
        if existing is not None and existing.revoked_at is None:
            raise ValueError(f"an active key named {name!r} exists; revoke it first")
        if existing is not None:
            conn.execute(api_keys.delete().where(api_keys.c.id == existing.id))
        conn.execute(
            api_keys.insert().values(name=name, key_hash=digest(key), scopes=",".join(scopes), created_at=utcnow())
        )
    return key


def revoke_key(store: EventStore, name: str) -> bool:
    with store.engine.begin() as conn:
        result = conn.execute(
            api_keys.update()
            .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return result.rowcount > 0


def list_keys(store: EventStore) -> list[dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at, api_keys.c.revoked_at)).mappings().all()
    return [dict(r) for r in rows]
