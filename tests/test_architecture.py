"""The layers hold (``.importlinter``), and the product installs without the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    """``lint-imports`` (import-linter, pinned in the test extra) over ``.importlinter``."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(REPO / ".importlinter"), "--no-cache"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    for contract in ("Nothing under carinho_pipelines imports the relay", "The product never imports the sandbox",
                     "The store imports neither Dagster", "The kernel imports neither Dagster",
                     "No two modules import each other", "carinho_pipelines is layered"):
        assert f"{contract}" in done.stdout and "KEPT" in done.stdout


def test_a_plain_install_has_no_sandbox_and_its_cli_still_works(tmp_path):
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    py = target / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
                   check=True, env=env, cwd=tmp_path, timeout=600)
    probe = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None "
             "for m in ('carinho_pipelines', 'relay', 'carinho_sandbox', 'aiosmtpd')}))")
    found = subprocess.run([str(py), "-c", probe], check=True, capture_output=True, text=True, env=env,
                           cwd=tmp_path).stdout.strip()
    assert found == '{"carinho_pipelines": true, "relay": true, "carinho_sandbox": false, "aiosmtpd": false}'
    carinho = target / "bin" / "carinho"
    helped = subprocess.run([str(carinho), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "run" in helped.stdout and "dlq" in helped.stdout and "sandbox" not in helped.stdout
    # `carinho run` says what is missing instead of failing half-way
    ran = subprocess.run([str(carinho), "run", "--relay-port", "0"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert ran.returncode != 0
    assert "the sandbox is not installed" in ran.stderr and "Traceback" not in ran.stderr
    assert sys.prefix != str(target)
