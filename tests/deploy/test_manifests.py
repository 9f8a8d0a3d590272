"""The Kubernetes side, offline: every manifest validates against Kubernetes' own
OpenAPI schemas (kubernetes-validate, strict: unknown fields fail), the Helm values say
what the repo's instance configuration says, and use only keys of the pinned chart.

No cluster and no chart templates here: deploy/README.md says what could not be run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from carinho_pipelines.platform.instance import celery_worker_commands, instance_config
from carinho_pipelines.kernel.queues import QUEUES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.33.0"
CHART_VERSION = "1.13.27"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))

#: Key paths of dagster/dagster 1.13.27's values.yaml that deploy/helm/values.yaml may
#: set (read from the chart's values.yaml of that version; a leaf must sit under one).
CHART_KEYS = {
    "global.postgresqlSecretName", "generatePostgresqlPasswordSecret",
    "postgresql.enabled", "postgresql.postgresqlHost", "postgresql.postgresqlUsername",
    "postgresql.postgresqlPassword", "postgresql.postgresqlDatabase", "postgresql.postgresqlParams",
    "postgresql.postgresqlScheme", "postgresql.service.port",
    "dagsterWebserver.replicaCount", "dagsterWebserver.image", "dagsterWebserver.envSecrets",
    "dagster-user-deployments.enabled", "dagster-user-deployments.enableSubchart",
    "dagster-user-deployments.deployments",
    "runLauncher.type", "runLauncher.config.customRunLauncher",
    "dagsterDaemon.enabled", "dagsterDaemon.image", "dagsterDaemon.envSecrets",
    "dagsterDaemon.runCoordinator.enabled", "dagsterDaemon.runCoordinator.type",
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator",
    # helm/dagster/templates/helpers/instance/_run-coordinator.tpl: module, class, config as written
    "dagsterDaemon.runCoordinator.config.customRunCoordinator",
    "dagsterDaemon.runMonitoring", "dagsterDaemon.runRetries", "dagsterDaemon.sensors", "dagsterDaemon.schedules",
    "computeLogManager.type", "retention", "telemetry.enabled",
}
#: the chart's run launcher types and the keys of one user deployment
RUN_LAUNCHER_TYPES = {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"}
USER_DEPLOYMENT_KEYS = {"name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "port", "env", "envConfigMaps",
                        "envSecrets", "includeConfigInLaunchedRuns", "annotations", "nodeSelector", "affinity",
                        "tolerations", "podSecurityContext", "securityContext", "resources", "replicaCount",
                        "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumes", "volumeMounts",
                        "service", "initContainers", "sidecarContainers", "deploymentStrategy"}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path):
    docs = _docs(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_manifest_with_a_wrong_field_is_refused():
    """The validator does fail (a typo'd field, a probe of the wrong type)."""
    [deployment] = [d for d in _docs(DEPLOY / "k8s" / "relay.yaml") if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"bad": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_relay_is_ready_when_its_store_is_with_a_plain_http_get():
    [deployment] = [d for d in _docs(DEPLOY / "k8s" / "relay.yaml") if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["args"] == ["relay"] and "command" not in container  # the image's entrypoint runs


def test_one_worker_deployment_with_an_hpa_per_queue_group():
    docs = _docs(DEPLOY / "k8s" / "workers.yaml")
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    groups = [d["spec"]["template"]["spec"]["containers"][0]["args"] for d in deployments.values()]
    assert sorted(g[1] for g in groups) == sorted(cmd[cmd.index("--queues") + 1] for cmd in celery_worker_commands())
    assert all(g[0] == "worker" for g in groups)
    assert hpas == set(deployments)


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += _leaves(value, f"{path}.") if isinstance(value, dict) and value else [path]
    return out


def test_helm_values_use_only_keys_of_the_pinned_chart():
    values = _values()
    header = (DEPLOY / "helm" / "values.yaml").read_text().split("\n\n", 1)[0]
    assert f"--version {CHART_VERSION}" in header
    for leaf in _leaves(values):
        assert any(leaf == k or leaf.startswith(k + ".") for k in CHART_KEYS), f"{leaf}: not a key of chart {CHART_VERSION}"
    assert values["runLauncher"]["type"] in RUN_LAUNCHER_TYPES
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert set(deployment) <= USER_DEPLOYMENT_KEYS, set(deployment) - USER_DEPLOYMENT_KEYS


def test_helm_values_run_what_compose_runs(monkeypatch):
    """The launcher, the run queue (limits from queues.py, as instance.py derives them for
    warm workers) and run monitoring are the repo's instance configuration's."""
    monkeypatch.setenv("CARINHO_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("CARINHO_CELERY_BACKEND_URL", raising=False)
    monkeypatch.delenv("CARINHO_CELERY_QUEUE_FACTOR", raising=False)
    repo = instance_config(postgres=True, celery=True)
    values = _values()
    launcher = values["runLauncher"]["config"]["customRunLauncher"]
    assert {k: launcher[k] for k in ("module", "class", "config")} == repo["run_launcher"]

    custom = values["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "CustomRunCoordinator"
    assert {k: custom[k] for k in ("module", "class", "config")} == repo["run_coordinator"]
    coordinator = repo["run_coordinator"]["config"]
    queued = {"tagConcurrencyLimits": custom["config"]["tag_concurrency_limits"]}
    factor = coordinator["max_concurrent_runs"] // yaml.safe_load(
        (DEPLOY.parent / "dagster.yaml").read_text())["run_coordinator"]["config"]["max_concurrent_runs"]
    per_queue = {lim["value"]: lim["limit"] for lim in queued["tagConcurrencyLimits"] if lim["key"] == "carinho/queue"}
    assert per_queue == {name: q.concurrency * factor for name, q in QUEUES.items()}

    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert {"enabled": monitoring["enabled"], "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"]} == repo["run_monitoring"]
    image = values["dagster-user-deployments"]["deployments"][0]["image"]
    assert values["dagsterDaemon"]["image"] == values["dagsterWebserver"]["image"] == image  # they import the launcher


def test_compose_file_is_valid_for_docker_compose_v1():
    """`docker-compose config` (Debian's 1.29) accepts it, sandbox profile included."""
    import shutil

    # required, never skipped: .ci/run installs Debian's docker-compose
    assert shutil.which("docker-compose"), "docker-compose is required (apt-get install docker-compose)"
    done = subprocess.run(["docker-compose", "--env-file", "sandbox.env", "--profile", "sandbox", "config", "--services"],
                          cwd=DEPLOY, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["postgres", "redis", "migrate", "code-server", "relay", "webserver", "daemon",
                                   "worker-high", "worker-default", "worker-low", "sandbox"]
