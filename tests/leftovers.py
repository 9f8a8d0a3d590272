"""``make test`` leaves nothing running: a pytest plugin that fails the run when a
process the suite started (at any depth) is still alive once every fixture is torn down.

The pytest process makes itself a *child subreaper*, so a process whose parent exited
(a broker a fixture forgot, a daemon's grandchild) is re-parented to pytest instead of
init, and is still found here. Survivors are listed, killed, and the exit status is 1.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

import pytest

_PR_SET_CHILD_SUBREAPER = 36
#: processes get this long to finish exiting (a SIGTERM'd server still shutting down)
GRACE_SECONDS = 20.0


def _stat(pid: int) -> tuple[int, str] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), fields[0]  # ppid, state


def descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of ``root``."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) and st[1] != "Z":
            parent[int(entry.name)] = st[0]
    out, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier}
        out += frontier
    return sorted(out)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"


def pytest_configure(config: pytest.Config) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:  # pragma: no cover - not Linux
        pass


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    me = os.getpid()
    deadline = time.monotonic() + GRACE_SECONDS
    while (left := descendants(me)) and time.monotonic() < deadline:
        _reap()
        time.sleep(0.2)
    _reap()
    if not left:
        return
    report = "\n".join(f"  {pid} {_cmdline(pid)}" for pid in left)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap()
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"processes started by the tests were still running after the suite (now killed):\n{report}"
    if terminal is not None:
        terminal.ensure_newline()
        terminal.write_line(message, red=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
