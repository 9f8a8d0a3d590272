"""Outbound clients as Dagster resources, configured from the environment (CONTRACTS §9).

``build_resources()`` is what ``Definitions`` uses; tests build the classes directly
with plain values (``CrmResource(base_url=..., token=...)``).
"""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar

from carinho_pipelines.kernel.log_redaction import install_log_redaction
from carinho_pipelines.kernel.settings import SYSTEMS, env
from .email import EmailResource
from .http import HttpResource, InternalApiResource, unwrap
from .systems import (
    SYSTEM_RESOURCES,
    AtendimentoResource,
    CrmResource,
    CuidadoresResource,
    DocumentosResource,
    FinanceiroResource,
    InternalSystemResource,
    MarketingResource,
    OperacaoResource,
    SiteResource,
    canonical_event,
    sign_standard_webhook,
)
from .zapi import DEFAULT_ZAPI_BASE_URL, ZApiResource

__all__ = [
    "AtendimentoResource",
    "CrmResource",
    "CuidadoresResource",
    "DocumentosResource",
    "EmailResource",
    "FinanceiroResource",
    "HttpResource",
    "InternalApiResource",
    "InternalSystemResource",
    "MarketingResource",
    "OperacaoResource",
    "SiteResource",
    "SYSTEM_RESOURCES",
    "ZApiResource",
    "RESOURCE_KEYS",
    "build_resources",
    "canonical_event",
    "install_log_redaction",
    "sign_standard_webhook",
    "unwrap",
]

#: the keys of ``build_resources()``: the eight systems, then the two channels
RESOURCE_KEYS: tuple[str, ...] = (*SYSTEMS, "zapi", "email")


def _env_or(name: str, default: str) -> EnvVar | str:
    """``EnvVar(name)`` when the variable is set (resolved at run time, never shown in
    the UI), else the default, so an optional variable does not fail resource init."""
    return EnvVar(name) if env(name) is not None else default


def _system(name: str) -> ConfigurableResource:
    key = name.upper()
    return SYSTEM_RESOURCES[name](
        base_url=_env_or(f"CARINHO_{key}_URL", f"https://{name}.carinho.com.vc"),
        token=_env_or(f"CARINHO_{key}_TOKEN", ""),
        webhook_secret=_env_or(f"CARINHO_{key}_WEBHOOK_SECRET", ""),
    )


def _flag(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def build_resources() -> dict[str, ConfigurableResource]:
    """Every outbound client, keyed as the jobs and assets require them."""
    install_log_redaction()
    resources: dict[str, ConfigurableResource] = {name: _system(name) for name in SYSTEMS}
    resources["zapi"] = ZApiResource(
        base_url=_env_or("ZAPI_BASE_URL", DEFAULT_ZAPI_BASE_URL),
        instance_id=_env_or("ZAPI_INSTANCE_ID", ""),
        token=_env_or("ZAPI_TOKEN", ""),
        client_token=_env_or("ZAPI_CLIENT_TOKEN", ""),
    )
    resources["email"] = EmailResource(
        host=_env_or("SMTP_HOST", "localhost"),
        port=int(env("SMTP_PORT", "587") or 587),
        user=_env_or("SMTP_USER", ""),
        password=_env_or("SMTP_PASSWORD", ""),
        starttls=_flag("SMTP_STARTTLS", True),
    )
    return resources
