"""Uvicorn servers living on one asyncio loop in a background thread.

The sandbox (and the tests' receiving apps) need real sockets while the main thread
keeps driving: each app gets its own port, and a port can be closed and reopened
(``down``/``up``) without touching the others.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

T = TypeVar("T")

START_TIMEOUT = 10.0


class _Listener:
    def __init__(self, name: str, app: ASGIApp, host: str, port: int) -> None:
        self.name = name
        self.app = app
        self.host = host
        self.port = port
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self.server is not None


class BackgroundServers:
    """Named ASGI apps served on loopback by uvicorn, from a background thread."""

    def __init__(self, host: str = "127.0.0.1", thread_name: str = "carinho-sandbox") -> None:
        self.host = host
        self._thread_name = thread_name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, _Listener] = {}

    # -- loop plumbing ---------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the background loop and wait for its result (main thread only)."""
        if self._loop is None:
            raise RuntimeError("servers are not started")
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("blocking call from the server thread; use the async variant")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _ensure_loop(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self._thread_name, daemon=True)
        self._thread.start()

    # -- servers ---------------------------------------------------------------------

    def start(self, apps: dict[str, tuple[ASGIApp, int]]) -> dict[str, int]:
        """Serve each ``name -> (app, port)`` (port 0 = a free one); returns the ports."""
        self._ensure_loop()
        for name, (app, port) in apps.items():
            self._listeners[name] = _Listener(name, app, self.host, port)
        try:
            self.run(self._start_all(list(apps)))
        except BaseException:
            self.stop()
            raise
        return {name: self._listeners[name].port for name in apps}

    def port(self, name: str) -> int:
        return self._listeners[name].port

    def is_up(self, name: str) -> bool:
        return self._listeners[name].listening

    def names(self) -> list[str]:
        return list(self._listeners)

    async def _start_all(self, names: list[str]) -> None:
        await asyncio.gather(*(self.astart(name) for name in names))

    async def astart(self, name: str) -> None:
        """Open ``name``'s port again (same port number) and serve until stopped."""
        listener = self._listeners[name]
        if listener.listening:
            return
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
        # for sockets that say they are TCP, and without it every answer written in two
        # parts (headers, then body) waits ~40 ms for the client's delayed ACK (Nagle)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((listener.host, listener.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"sandbox: cannot listen on {listener.host}:{listener.port} for {name}: {exc}") from exc
        listener.port = sock.getsockname()[1]
        config = uvicorn.Config(
            listener.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            log_level="warning",
        )
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not server.started:
            if task.done():
                sock.close()
                task.result()
                raise RuntimeError(f"sandbox: {name} stopped while starting")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"sandbox: {name} did not start")
            await asyncio.sleep(0.005)
        listener.server = server
        listener.task = task

    async def astop(self, name: str) -> None:
        """Close ``name``'s port at once: new connections are refused, open ones dropped."""
        listener = self._listeners[name]
        server, task = listener.server, listener.task
        listener.server = None
        listener.task = None
        if server is None or task is None:
            return
        server.should_exit = True
        # force_exit: do not wait for in-flight (possibly hanging) requests
        server.force_exit = True
        for connection in list(server.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(task, timeout=5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            task.cancel()
        for t in list(server.server_state.tasks):
            t.cancel()

    def up(self, name: str) -> None:
        self.run(self.astart(name))

    def down(self, name: str) -> None:
        self.run(self.astop(name))

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            async def stop_all() -> None:
                await asyncio.gather(*(self.astop(n) for n in list(self._listeners)), return_exceptions=True)
                pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

            try:
                self.run(stop_all(), timeout=15)
            except Exception:  # noqa: BLE001 - stopping must not fail the caller
                pass
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = None
        self._thread = None
