"""Test support: real servers on loopback (uvicorn in a thread, a TCP proxy that can
be cut to simulate a database outage)."""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn

#: the repository checkout the tests run from (workspace.yaml, deploy/, .importlinter)
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """An ASGI app served by uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app: Any, port: int | None = None, log_config: Any = None) -> None:
        self.port = port or free_port()
        kwargs = {"log_config": log_config} if log_config is not None else {}
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="info", lifespan="on", **kwargs)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class TcpProxy:
    """Forwards a loopback port to ``target``; ``cut()`` drops every connection and
    refuses new ones (the database is "down"), ``restore()`` brings it back;
    ``forget()`` loses the open connections without a word (a NAT or firewall that
    dropped its state: the client hears nothing until it sends, and is then reset)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._forgotten: set[socket.socket] = set()  # client sockets whose upstream is gone
        self._lock = threading.Lock()
        self.restore()

    def forget(self) -> None:
        with self._lock:
            clients, upstreams = self._conns[0::2], self._conns[1::2]
            self._forgotten.update(clients)
            self._conns.clear()
        for upstream in upstreams:
            upstream.close()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src in self._forgotten:
                    break  # a forgotten client spoke: reset it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                if s in self._forgotten and s is dst:
                    continue  # its upstream went silently: the client hears nothing
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:  # wakes the thread blocked in accept(); close() alone does not on Linux
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns.clear()


class MailSink:
    """aiosmtpd handler: keeps what it accepts; refuses scripted recipients."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if address.startswith("inexistente@"):
            return "550 5.1.1 <%s>: Recipient address rejected" % address
        if address.startswith("lotado@"):
            return "452 4.2.2 Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        with self.lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [message_from_bytes(e.original_content or e.content, policy=policy.default) for e in self.envelopes]

    def clear(self) -> None:
        with self.lock:
            self.envelopes.clear()


def wait_for(predicate: Any, timeout: float = 120, what: str = "condition", interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
