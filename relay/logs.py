"""The relay's logging: the shared redaction filter on the access log, the HTTP
client and the relay's own loggers (CONTRACTS §10 "Logs")."""

from __future__ import annotations

from carinho_pipelines.kernel.log_redaction import HTTP_LOGGERS, install_log_redaction, register_secret
from carinho_pipelines.kernel.settings import SYSTEMS, env, system_config


def install() -> None:
    install_log_redaction(*HTTP_LOGGERS, "relay", "relay.webhooks")
    register_secret(
        env("ZAPI_WEBHOOK_TOKEN"),
        env("ZAPI_TOKEN"),
        env("ZAPI_CLIENT_TOKEN"),
        *(system_config(s).token for s in SYSTEMS),
    )
