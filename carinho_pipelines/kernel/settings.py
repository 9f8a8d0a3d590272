"""Configuration read from the environment (CONTRACTS §9).

:class:`HubSettings` is the typed list of the hub's own ``CARINHO_*`` settings
(pydantic-settings); :func:`current` reads it when asked, never at import, so a changed
environment (a test's ``monkeypatch.setenv``, a restarted process) applies at once. The
per-system variables (``CARINHO_<SYS>_URL|TOKEN|WEBHOOK_SECRET``) and Z-API's are read by
name through :func:`env`: their names are built from the system table, and the relay reads
tokens on every request without building a settings object.

No dagster import: the relay imports this module.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

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


class HubSettings(BaseSettings):
    """The hub's own settings; each field is ``CARINHO_<FIELD>`` (README, "Environment")."""

    model_config = SettingsConfigDict(env_prefix="CARINHO_", env_ignore_empty=True, extra="ignore")

    #: the embedded default's data folder (SQLite files, Dagster home, logs)
    data_dir: Path = Path(".carinho")
    #: the event store; unset → SQLite in the data folder
    database_url: str | None = None
    dagster_graphql_url: str = DEFAULT_DAGSTER_GRAPHQL_URL
    #: the Dagster UI's public address (links in e-mails); unset → from the GraphQL URL
    dagster_ui_url: str | None = None
    #: the relay submits each run itself (the dispatch sensor is the safety net)
    direct_submit: bool = False
    #: a direct-submission claim older than this is the sensor's to take over
    submit_claim_seconds: float = 30
    #: how long an open breaker fails fast before one probe call
    breaker_open_seconds: float = 60
    #: how often the DLQ re-drive sensor looks
    redrive_interval_seconds: int = 30
    #: /metrics needs a status:read key too
    metrics_require_key: bool = False
    #: ``name:key:scope,scope;…`` operations keys from the environment
    api_keys: str = ""
    #: the HMAC key of the people's hashed phones, e-mails and CPFs (search and erasure
    #: by person); unset → nothing is hashed and search by person is off
    person_key_secret: str | None = None
    #: the caregivers' feedback form and the HMAC secret of its links
    feedback_url: str | None = None
    feedback_secret: str | None = None
    #: who gets the 07:30 checklist and the WhatsApp alerts (default: the level-1 address)
    checklist_email: str | None = None
    whatsapp_alert_email: str | None = None
    #: an unacknowledged alert climbs one level after this
    alert_escalate_minutes: float = 60
    #: ``celery`` (warm workers) or ``process`` (a process per run)
    run_launcher: str = "celery"
    celery_broker_url: str | None = None
    celery_backend_url: str | None = None
    #: runs the run queue hands the broker per queue slot
    celery_queue_factor: int = 4
    #: a run still STARTING after this many seconds (its task lost with a killed worker
    #: or a broker restart) is failed by run monitoring, and re-driven; unset → the
    #: ``start_timeout_seconds`` of dagster.yaml's ``run_monitoring``
    run_start_timeout_seconds: int | None = None


#: the variables HubSettings reads (``CARINHO_<FIELD>``)
_VARIABLES = tuple(f"CARINHO_{name.upper()}" for name in HubSettings.model_fields)


@functools.lru_cache(maxsize=16)
def _settings_for(_snapshot: tuple[str | None, ...]) -> HubSettings:
    return HubSettings()


def current() -> HubSettings:
    """The settings as the environment says now: parsed again only when one of its
    variables changed (a parse costs ~1.7 ms; this lookup a few microseconds, so the
    relay may ask on every request)."""
    return _settings_for(tuple(os.environ.get(name) for name in _VARIABLES))


def data_dir() -> Path:
    """Local data folder of the embedded default (SQLite files, Dagster home)."""
    return current().data_dir.resolve()


def database_url() -> str:
    url = current().database_url
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
