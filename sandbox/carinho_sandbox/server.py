"""The sandbox: every simulated system on its own loopback port, plus the control server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from carinho_sandbox.control import control_app
from carinho_sandbox.runner import BackgroundServers
from carinho_sandbox.state import SystemState
from carinho_sandbox.systems import APP_FACTORIES
from carinho_sandbox.zapi import (
    DEFAULT_CLIENT_TOKEN,
    DEFAULT_INSTANCE_ID,
    DEFAULT_INSTANCE_TOKEN,
    ZapiSimulator,
    ZapiState,
    zapi_app,
)

#: Port offsets from ``base_port`` (fixed: other tooling relies on them).
PORT_OFFSETS: dict[str, int] = {
    "zapi": 0,
    "crm": 1,
    "operacao": 2,
    "financeiro": 3,
    "cuidadores": 4,
    "atendimento": 5,
    "marketing": 6,
    "site": 7,
    "documentos": 8,
    "control": 9,
}
INTERNAL_SYSTEMS: tuple[str, ...] = tuple(APP_FACTORIES)
ALL_SYSTEMS: tuple[str, ...] = ("zapi", *INTERNAL_SYSTEMS)
DEFAULT_BASE_PORT = 8100
DEFAULT_WEBHOOK_TOKEN = "sandbox-webhook-token"


def default_token(system: str) -> str:
    return f"sandbox-{system}-token"


class Sandbox:
    """Z-API and the internal systems as real HTTP servers (see the package docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int = DEFAULT_BASE_PORT,
        tokens: dict[str, str] | None = None,
        webhook_secrets: dict[str, str] | None = None,
        zapi_instance_id: str = DEFAULT_INSTANCE_ID,
        zapi_token: str = DEFAULT_INSTANCE_TOKEN,
        zapi_client_token: str | None = DEFAULT_CLIENT_TOKEN,
        webhook_token: str = DEFAULT_WEBHOOK_TOKEN,
        page_size: int = 100,
        auto_callbacks: float | None = None,
    ) -> None:
        self.host = host
        self.base_port = base_port
        self.webhook_token = webhook_token
        tokens = tokens or {}
        secrets = webhook_secrets or {}
        self.systems: dict[str, SystemState] = {
            name: SystemState(name, token=tokens.get(name, default_token(name)),
                              webhook_secret=secrets.get(name), page_size=page_size)
            for name in INTERNAL_SYSTEMS
        }
        self.systems["zapi"] = SystemState("zapi")
        self.zapi_state = ZapiState(instance_id=zapi_instance_id, token=zapi_token,
                                    client_token=zapi_client_token, auto_callbacks=auto_callbacks)
        self._servers = BackgroundServers(host)
        self.zapi = ZapiSimulator(self.zapi_state, webhook_token, self._run)
        self._ports: dict[str, int] = {}
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._started:
            return self
        apps: dict[str, tuple[Any, int]] = {}
        for name in ALL_SYSTEMS:
            app = zapi_app(self.zapi, self.systems["zapi"]) if name == "zapi" else APP_FACTORIES[name](self.systems[name])
            apps[name] = (app, self._port_for(name))
        apps["control"] = (control_app(self), self._port_for("control"))
        self._ports = self._servers.start(apps)
        self._started = True
        return self

    def stop(self) -> None:
        self._servers.stop()
        self._started = False

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _port_for(self, name: str) -> int:
        return 0 if self.base_port == 0 else self.base_port + PORT_OFFSETS[name]

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._servers.loop is None:
            return asyncio.run(coro)
        return self._servers.run(coro)

    # -- addresses -----------------------------------------------------------------------

    def port(self, system: str) -> int:
        return self._ports[system]

    def url(self, system: str) -> str:
        return f"http://{self.host}:{self._ports[system]}"

    @property
    def control_url(self) -> str:
        return self.url("control")

    def token(self, system: str) -> str | None:
        return self.systems[system].token

    def zapi_api_url(self) -> str:
        """The instance base URL the hub calls (``…/instances/{id}/token/{token}``)."""
        return f"{self.url('zapi')}/instances/{self.zapi_state.instance_id}/token/{self.zapi_state.token}"

    def env(self, webhook_url: str | None = None) -> dict[str, str]:
        """The hub's environment for this sandbox.

        With ``webhook_url`` (the hub's ``/webhooks/whatsapp``), Z-API's callbacks are
        pointed there as well, so one call wires both directions.
        """
        out: dict[str, str] = {}
        for name in INTERNAL_SYSTEMS:
            state = self.systems[name]
            out[f"CARINHO_{name.upper()}_URL"] = self.url(name)
            out[f"CARINHO_{name.upper()}_TOKEN"] = state.token or ""
            if state.webhook_secret:
                out[f"CARINHO_{name.upper()}_WEBHOOK_SECRET"] = state.webhook_secret
        out["ZAPI_BASE_URL"] = self.url("zapi")
        out["ZAPI_INSTANCE_ID"] = self.zapi_state.instance_id
        out["ZAPI_TOKEN"] = self.zapi_state.token
        out["ZAPI_CLIENT_TOKEN"] = self.zapi_state.client_token or ""
        out["ZAPI_WEBHOOK_TOKEN"] = self.webhook_token
        if webhook_url:
            self.zapi.set_webhook(webhook_url)
        return out

    # -- inspection ----------------------------------------------------------------------

    def calls(self, system: str) -> list[dict[str, Any]]:
        return self.systems[system].list_calls()

    def clear_calls(self, system: str | None = None) -> None:
        for name in self._names(system):
            with self.systems[name].lock:
                self.systems[name].calls.clear()

    def records(self, system: str, collection: str) -> list[dict[str, Any]]:
        """Everything a system stores in one collection (e.g. ``records("crm", "leads")``)."""
        return self.systems[system].all(collection)

    def events(self, system: str) -> list[dict[str, Any]]:
        """Canonical events received by that system's inbox."""
        return self.systems[system].all("events")

    def dump(self, system: str) -> dict[str, list[dict[str, Any]]]:
        return self.systems[system].dump()

    # -- faults --------------------------------------------------------------------------

    def fail(self, system: str, status: int = 503, count: int = 1, retry_after: float | None = None) -> None:
        """The next ``count`` calls to ``system`` answer ``status`` (with Retry-After when given)."""
        state = self.systems[system]
        with state.lock:
            state.faults.fail_status = status
            state.faults.fail_count = count
            state.faults.retry_after = retry_after

    def latency(self, system: str, seconds: float) -> None:
        """Delay every call; more than the client's timeout looks like a hang."""
        state = self.systems[system]
        with state.lock:
            state.faults.latency = float(seconds)

    def down(self, system: str) -> None:
        self._run(self.adown(system))

    def up(self, system: str) -> None:
        self._run(self.aup(system))

    async def adown(self, system: str) -> None:
        self._check(system)
        self.systems[system].faults.down = True
        await self._servers.astop(system)

    async def aup(self, system: str) -> None:
        self._check(system)
        await self._servers.astart(system)
        self.systems[system].faults.down = False

    def is_up(self, system: str) -> bool:
        return self._servers.is_up(system)

    def faults(self, system: str) -> dict[str, Any]:
        state = self.systems[system]
        with state.lock:
            return state.faults.as_dict()

    def clear_faults(self, system: str | None = None) -> None:
        """Remove every fault (bringing a down system back up)."""
        self._run(self.aclear_faults(system))

    async def aclear_faults(self, system: str | None = None) -> None:
        for name in self._names(system):
            self.systems[name].clear_faults()
            if self._started and not self._servers.is_up(name):
                await self.aup(name)

    def reset(self) -> None:
        """Forget all state, calls and faults of every system; seeds nothing."""
        self._run(self.areset())

    async def areset(self) -> None:
        await self.zapi.acancel_playback()
        for state in self.systems.values():
            state.reset()
        self.zapi_state.reset()
        await self.aclear_faults(None)

    def seed(self, data: dict[str, dict[str, list[dict[str, Any]]]] | None = None) -> dict[str, dict[str, int]]:
        """Add records, ``{system: {collection: [record, ...]}}``; ``None`` = the default day."""
        from carinho_sandbox.seed import default_seed

        data = default_seed() if data is None else data
        counts: dict[str, dict[str, int]] = {}
        for system, collections in data.items():
            self._check(system)
            for collection, rows in collections.items():
                for row in rows:
                    self.systems[system].insert(collection, row)
                counts.setdefault(system, {})[collection] = len(rows)
        return counts

    def seed_default(self) -> dict[str, dict[str, int]]:
        """The default day of data (:func:`carinho_sandbox.seed.default_seed`)."""
        return self.seed(None)

    def _names(self, system: str | None) -> list[str]:
        if system is None:
            return list(ALL_SYSTEMS)
        self._check(system)
        return [system]

    def _check(self, system: str) -> None:
        if system not in self.systems:
            raise KeyError(f"unknown system {system!r}; known: {', '.join(ALL_SYSTEMS)}")
