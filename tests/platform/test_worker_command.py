"""`carinho worker`: the Celery command each worker group runs (issues 12 and 17):
integrations-high keeps one process while idle, the other groups none, and each grows
to its group's maximum under load, niced by queue priority."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from carinho_pipelines import cli


@pytest.fixture
def execs(monkeypatch):
    """The command `carinho worker` would exec, and the niceness it would add."""
    seen: dict = {}
    monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(cli.settings, "current", lambda: type("S", (), {"celery_broker_url": "redis://x"})())
    monkeypatch.setattr(os, "nice", lambda n: seen.setdefault("nice", n))
    monkeypatch.setattr(os, "execv", lambda path, args: seen.setdefault("args", args))
    return seen


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_each_group_autoscales_from_one_process_to_its_maximum(execs):
    result = CliRunner().invoke(cli.main, ["worker", "--queues", "integrations-high"])
    assert result.exit_code == 0, result.output
    args = execs["args"]
    assert _option(args, "--autoscale") == f"{cli.WORKER_CONCURRENCY['integrations-high']},1"
    assert "--concurrency" not in args and _option(args, "-Q") == "integrations-high"
    assert execs["nice"] == 0


def test_the_lower_groups_keep_no_process_while_idle_and_a_fixed_size_does_not_autoscale(execs):
    result = CliRunner().invoke(cli.main, ["worker", "--queues", "integrations,notifications"])
    assert result.exit_code == 0, result.output
    assert _option(execs["args"], "--autoscale") == f"{cli.WORKER_CONCURRENCY['integrations']},0"
    assert execs["nice"] == 10  # integrations' niceness: lower-priority work yields the CPU
    execs.clear()
    result = CliRunner().invoke(cli.main, ["worker", "--queues", "integrations-low,integrations-retry"])
    assert result.exit_code == 0, result.output
    assert _option(execs["args"], "--autoscale") == "1,0" and "--concurrency" not in execs["args"]
    execs.clear()
    result = CliRunner().invoke(cli.main, ["worker", "--queues", "integrations,notifications", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert _option(execs["args"], "--concurrency") == "2" and "--autoscale" not in execs["args"]
