"""deploy/monitoring: the Prometheus rules and the Grafana dashboard, for real.

- the committed files are what the generator derives from thresholds.py and queues.py;
- ``promtool check rules`` accepts the rules; ``promtool test rules`` runs unit tests,
  derived from the same tables, for every alert (quiet at the threshold, firing above);
- a real Prometheus (Debian's ``prometheus``) scrapes a running relay's /metrics, loads
  the rules, sees every series the rules and the dashboard use, and fires the breaker
  alert when a destination's breaker opens.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from carinho_pipelines.destinations import breakers
from carinho_pipelines.events import ledger
from carinho_pipelines.monitoring import prometheus, thresholds
from carinho_pipelines.kernel.queues import QUEUES
from relay import runs
from relay.app import create_app
from carinho_pipelines.store import EventStore
from tests.support import ServerThread, free_port

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = MONITORING / prometheus.RULES_FILE
DASHBOARD = MONITORING / prometheus.DASHBOARD_FILE
SERIES = re.compile(r"\bcarinho_[a-z_]+\b")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (apt-get install prometheus; .ci/run installs it)"
    return path


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def test_the_committed_files_are_generated_from_the_thresholds_and_the_queue_table():
    assert RULES.read_text(encoding="utf-8") == prometheus.rules_text(), \
        "regenerate: python -m carinho_pipelines.monitoring.prometheus deploy/monitoring"
    assert DASHBOARD.read_text(encoding="utf-8") == prometheus.dashboard_text()
    by_name: dict[str, list[dict]] = {}
    for rule in _rules():
        by_name.setdefault(rule["alert"], []).append(rule)
    # §7 at both levels, with the numbers of thresholds.py
    for metric, t in thresholds.THRESHOLDS.items():
        scale = 0.01 if t.unit == "percent" else 1
        [alert] = by_name[prometheus.ALERT_NAMES[metric]]
        [critical] = by_name[prometheus.ALERT_NAMES[metric] + "Critical"]
        assert f"> {prometheus._number(t.alert * scale)}" in alert["expr"]
        assert f"> {prometheus._number(t.critical * scale)}" in critical["expr"]
    # every queue against its SLA (and 3× it)
    assert {re.search(r'queue="([^"]+)"', r["expr"]).group(1) for r in by_name["CarinhoQueueSla"]} == set(QUEUES)
    assert len(by_name["CarinhoQueueSlaCritical"]) == len(QUEUES)
    assert "> 900" in by_name["CarinhoWhatsAppDisconnected"][0]["expr"]
    assert by_name["CarinhoBreakerOpen"]


def test_promtool_accepts_the_rules():
    result = subprocess.run([_tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


# -- promtool unit tests, one or more per alert ------------------------------------------


def _render(text: str, value: float, labels: dict[str, str]) -> str:
    text = text.replace("{{ $value }}", prometheus._number(value))
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)


def _case(rule: dict, series: list[dict], quiet_at: list[str], firing_at: str, value: float,
          labels: dict[str, str]) -> dict:
    alert_labels = {**labels, **rule["labels"]}
    annotations = {k: _render(v, value, alert_labels) for k, v in rule["annotations"].items()}
    tests = [{"eval_time": t, "alertname": rule["alert"], "exp_alerts": []} for t in quiet_at]
    tests.append({"eval_time": firing_at, "alertname": rule["alert"],
                  "exp_alerts": [{"exp_labels": alert_labels, "exp_annotations": annotations}]})
    return {"interval": "1m", "input_series": series, "alert_rule_test": tests}


def _quiet(rule: dict, series: list[dict], at: str = "10m") -> dict:
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": at, "alertname": rule["alert"], "exp_alerts": []}]}


def _flat(value: float, minutes: int = 12) -> str:
    return f"{prometheus._number(value)}x{minutes}"


def unit_tests() -> list[dict]:
    cases = []
    for rule in _rules():
        name, labels = rule["alert"], rule["labels"]
        if "metric" in labels:  # §7: quiet at the limit, fires above it once `for` has passed
            t = thresholds.THRESHOLDS[labels["metric"]]
            scale = 0.01 if t.unit == "percent" else 1.0
            limit = (t.critical if labels["level"] == thresholds.CRITICAL else t.alert) * scale
            above = limit + (0.01 if t.unit == "percent" else 1)
            series_name = prometheus.METRIC_SERIES[labels["metric"]]
            samples = [{"series": "carinho_runs_finished_window", "values": _flat(t.min_samples)}] if t.min_samples else []
            cases.append(_quiet(rule, [{"series": series_name, "values": _flat(limit)}, *samples]))
            cases.append(_case(rule, [{"series": series_name, "values": _flat(above)}, *samples],
                               ["1m"], "5m", above, {}))
            if t.min_samples:  # too few finished runs: a high ratio is not an alert
                cases.append(_quiet(rule, [{"series": series_name, "values": _flat(above)},
                                           {"series": "carinho_runs_finished_window",
                                            "values": _flat(t.min_samples - 1)}]))
        elif name.startswith("CarinhoQueueSla"):
            queue = re.search(r'queue="([^"]+)"', rule["expr"]).group(1)
            sla = QUEUES[queue].sla_seconds
            limit = sla * (thresholds.QUEUE_CRITICAL_FACTOR if labels["level"] == thresholds.CRITICAL else 1)
            p95 = f'carinho_queue_processing_seconds{{queue="{queue}",quantile="0.95"}}'
            samples = f'carinho_queue_processing_samples{{queue="{queue}"}}'
            enough = {"series": samples, "values": _flat(thresholds.QUEUE_MIN_SAMPLES)}
            cases.append(_quiet(rule, [{"series": p95, "values": _flat(limit)}, enough]))
            cases.append(_case(rule, [{"series": p95, "values": _flat(limit + 1)}, enough], ["1m"], "5m", limit + 1,
                               {"queue": queue, "quantile": "0.95"}))
            cases.append(_quiet(rule, [{"series": p95, "values": _flat(limit + 1)},
                                       {"series": samples, "values": _flat(thresholds.QUEUE_MIN_SAMPLES - 1)}]))
        elif name == "CarinhoBreakerOpen":  # open at 2m, half-open at 3m, closed at 4m
            series = [{"series": 'carinho_breaker_state{destination="crm"}', "values": "0 0 2 1 0x20"},
                      {"series": 'carinho_breaker_state{destination="financeiro"}', "values": "0x25"}]
            case = _case(rule, series, ["1m", "12m"], "2m", 2, {"destination": "crm"})
            # still reported while it flaps through half-open, within the window
            case["alert_rule_test"].append({**case["alert_rule_test"][-1], "eval_time": "6m"})
            cases.append(case)
        elif name == "CarinhoWhatsAppDisconnected":  # disconnected from t=0, the gauge counts seconds
            grace = int(thresholds.WHATSAPP_DISCONNECT_GRACE.total_seconds())
            series = [{"series": "carinho_whatsapp_disconnected_seconds", "values": "0+60x20"}]
            cases.append(_case(rule, series, ["5m", f"{grace // 60}m"], f"{grace // 60 + 1}m", grace + 60, {}))
        else:
            raise AssertionError(f"no unit test for {name}")
    return cases


def test_promtool_unit_tests_of_every_alert_pass(tmp_path):
    cases = unit_tests()
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert tested == {r["alert"] for r in _rules()}  # each alert fires in some test
    shutil.copy(RULES, tmp_path / RULES.name)
    test_file = tmp_path / "carinho-rules.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [RULES.name], "evaluation_interval": "1m", "tests": cases},
                                        sort_keys=False, allow_unicode=True))
    result = subprocess.run([_tool("promtool"), "test", "rules", str(test_file)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_wrong_threshold(tmp_path):
    """The unit tests can fail: a rules file with one number off is caught."""
    wrong = RULES.read_text().replace("carinho_dlq_open > 10\n", "carinho_dlq_open > 11\n", 1)
    assert wrong != RULES.read_text()
    (tmp_path / RULES.name).write_text(wrong)
    test_file = tmp_path / "t.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [RULES.name], "evaluation_interval": "1m",
                                         "tests": unit_tests()}, allow_unicode=True))
    result = subprocess.run([_tool("promtool"), "test", "rules", str(test_file)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode != 0 and "CarinhoDlqOpen" in result.stdout + result.stderr


# -- a real Prometheus scraping a running relay --------------------------------------------


@pytest.fixture
def relay_url(mon, monkeypatch, tmp_path) -> Iterator[str]:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setattr(runs, "_instance", mon.instance)
    store = EventStore(mon.url)
    server = ServerThread(create_app(store)).start()
    yield server.url
    server.stop()
    store.engine.dispose()


@pytest.fixture
def prometheus_url(relay_url, tmp_path) -> Iterator[str]:
    port = free_port()
    target = relay_url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "carinho-relay", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [target]}]}],
    }))
    data = tmp_path / "prometheus-data"
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([_tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "Prometheus ready", proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _until(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"Prometheus exited with {proc.returncode}")
        try:
            result = condition()
            if result:
                return result
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({last})")


def _query(url: str, expr: str) -> list[dict]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_a_real_prometheus_scrapes_the_relay_and_sees_every_series_the_rules_use(mon, relay_url, prometheus_url):
    # a finished run (error rate, p95) and a waiting event (oldest pending age): series
    # without a value (no run finished in the hour) are absent, as they should be
    event_id = mon.event(queue="integrations")
    run_id = mon.run_event(event_id, queue="integrations")
    mon.event(queue="integrations-high", received_ago=30)
    ledger.record_outcome(mon.store, event_id, "forward_crm", "succeeded", None, run_id)  # one action done
    used = {name for rule in _rules() for name in SERIES.findall(rule["expr"])}
    used |= {name for expr in _dashboard_exprs() for name in SERIES.findall(expr)}
    exposed = {f.name for f in text_string_to_metric_families(httpx.get(f"{relay_url}/metrics").text)}
    assert used <= exposed, used - exposed  # the relay exposes them (gauges keep their names)

    for name in sorted(used):
        _until(lambda: _query(prometheus_url, name), f"series {name} in Prometheus")
    queues = {r["metric"]["queue"] for r in _query(prometheus_url, "carinho_queue_sla_seconds")}
    assert queues == set(QUEUES)
    destinations = {r["metric"]["destination"] for r in _query(prometheus_url, "carinho_breaker_state")}
    assert {"crm", "financeiro", "email"} <= destinations

    # every dashboard query is valid PromQL with data behind it
    for expr in _dashboard_exprs():
        assert _query(prometheus_url, expr), expr
    [crm] = _query(prometheus_url, 'carinho_destination_actions_window{destination="crm",outcome="succeeded"}')
    assert crm["value"][1] == "1"
    ratio = _query(prometheus_url, [e for e in _dashboard_exprs() if "sum by (destination)" in e][0])
    assert [(r["metric"]["destination"], r["value"][1]) for r in ratio] == [("crm", "0")]  # only where actions ran

    groups = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    loaded = [rule for g in groups for rule in g["rules"]]
    assert len(loaded) == len(_rules())
    _until(lambda: all(r.get("health") == "ok" for g in httpx.get(f"{prometheus_url}/api/v1/rules").json()["data"]
                       ["groups"] for r in g["rules"]), "every rule evaluated without error")

    # a destination's breaker opens in the store: the relay shows it, Prometheus alerts
    for _ in range(breakers.FAILURE_THRESHOLD):
        breakers.record_failure(mon.store, "crm")

    def firing() -> list[dict]:
        alerts = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "CarinhoBreakerOpen" and a["state"] == "firing"]

    [alert] = _until(firing, "CarinhoBreakerOpen firing")
    assert alert["labels"]["destination"] == "crm"
    assert "crm" in alert["annotations"]["summary"]
