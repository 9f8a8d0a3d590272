"""The private Dagster names the hub uses are fenced in one module, for pinned versions."""

from __future__ import annotations

import re
from importlib.metadata import version

from carinho_pipelines.platform import dagster_internals
from tests.support import REPO_ROOT


def test_the_installed_dagster_is_the_one_the_fence_was_written_for():
    installed = {name: version(name) for name in dagster_internals.WRITTEN_FOR}
    assert installed == dagster_internals.WRITTEN_FOR, (
        "Dagster changed: re-check every private name in carinho_pipelines/platform/dagster_internals.py "
        f"against the new version, then update WRITTEN_FOR (installed {installed})")
    pinned = dict(re.findall(r'"(dagster(?:-celery|-postgres)?)==([\d.]+)"', (REPO_ROOT / "setup.py").read_text()))
    assert {k: pinned[k] for k in dagster_internals.WRITTEN_FOR} == dagster_internals.WRITTEN_FOR


def test_every_fenced_name_still_exists_and_nothing_else_reaches_into_dagster_privates():
    for name in dagster_internals.__all__:
        assert getattr(dagster_internals, name) is not None, name
    assert callable(getattr(dagster_internals.CeleryRunLauncher, dagster_internals.CELERY_SUBMIT_HOOK))
    private = re.compile(r"^\s*(from|import)\s+dagster(_celery|_postgres)?\._|^\s*from dagster_celery\.launcher import .*\b_",
                         re.M)
    leaks = [str(p.relative_to(REPO_ROOT)) for pkg in ("carinho_pipelines", "relay")
             for p in (REPO_ROOT / pkg).rglob("*.py")
             if p.name != "dagster_internals.py" and private.search(p.read_text())]
    assert leaks == []
