"""Configuration read from the environment (CONTRACTS §9).

Pure Python on purpose: the relay imports this module and must not pay for
``import dagster``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

#: Internal systems the hub talks to, by the key used in env var names.
SYSTEMS: tuple[str, ...] = (
    "crm",
    "operacao",
    "financeiro",
    "cuidadores",
    "atendimento",
    "marketing",
    "site",
    "documentos",
)

#: Source name used for Z-API callbacks.
WHATSAPP_SOURCE = "whatsapp"
#: Source name for events the hub creates itself (e.g. ``feedback.requested``).
HUB_SOURCE = "hub"

DEFAULT_DAGSTER_GRAPHQL_URL = "http://127.0.0.1:3000/graphql"
MAX_BODY_BYTES = 1024 * 1024


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def data_dir() -> Path:
    """Local data folder of the embedded default (SQLite files, Dagster home)."""
    return Path(env("CARINHO_DATA_DIR", ".carinho")).resolve()


def database_url() -> str:
    url = env("CARINHO_DATABASE_URL")
    if url:
        return url
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'events.db'}"


@dataclass(frozen=True)
class SystemConfig:
    name: str
    url: str
    token: str | None
    webhook_secret: str | None


def system_config(name: str) -> SystemConfig:
    key = name.upper()
    return SystemConfig(
        name=name,
        url=env(f"CARINHO_{key}_URL", f"https://{name}.carinho.com.vc") or "",
        token=env(f"CARINHO_{key}_TOKEN"),
        webhook_secret=env(f"CARINHO_{key}_WEBHOOK_SECRET"),
    )


_TOKEN_VARS: tuple[tuple[str, str], ...] = tuple((name, f"CARINHO_{name.upper()}_TOKEN") for name in SYSTEMS)


def system_for_token(token: str) -> str | None:
    """The system whose configured inbound token equals ``token`` (constant time).

    Runs on every request: reads only the token variables (not the whole
    :func:`system_config` of each system, three variables and an object apiece) and
    still reads them every time, so a changed environment applies at once."""
    import hmac

    found = None
    presented = token.encode()
    for name, var in _TOKEN_VARS:
        expected = env(var)
        if expected and hmac.compare_digest(expected.encode(), presented):
            found = name
    return found


#: the first day the hub ran in production, when CARINHO_GO_LIVE_DATE is unset
DEFAULT_GO_LIVE_DATE = "2026-12-01"


def go_live_date() -> dt.date:
    """``CARINHO_GO_LIVE_DATE`` (YYYY-MM-DD): the first partition of the daily syncs
    (``operacao_financeiro``) and the earliest date a manual run or backfill accepts."""
    raw = env("CARINHO_GO_LIVE_DATE", DEFAULT_GO_LIVE_DATE) or DEFAULT_GO_LIVE_DATE
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"CARINHO_GO_LIVE_DATE must be YYYY-MM-DD, not {raw!r}") from exc
