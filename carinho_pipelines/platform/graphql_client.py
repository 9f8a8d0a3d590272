"""A small client of Dagster's GraphQL API (``CARINHO_DAGSTER_GRAPHQL_URL``), for launching runs.

Plain httpx: the relay never imports dagster to start a run. Reading runs goes through
the instance in ``DAGSTER_HOME`` instead (the same storage the UI and daemon use).
"""

from __future__ import annotations

from typing import Any

import threading
import time

import httpx

from carinho_pipelines.kernel import tags as run_tag
from carinho_pipelines.kernel.settings import current

TIMEOUT = httpx.Timeout(15.0, connect=3.0)


class DagsterUnavailable(Exception):
    """The webserver cannot be reached, or answered with an error it may not have tomorrow."""


class LaunchFailed(Exception):
    """Dagster refused the launch (unknown job, invalid config, …); ``kind`` is its GraphQL type."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def graphql_url() -> str:
    return current().dagster_graphql_url


def ui_url() -> str:
    """The Dagster UI's base URL (the GraphQL URL without ``/graphql``)."""
    url = graphql_url().rstrip("/")
    return url[: -len("/graphql")] if url.endswith("/graphql") else url


def run_url(run_id: str) -> str:
    return f"{ui_url()}/runs/{run_id}"


_REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""

_LAUNCH = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """One keep-alive client per process: a submission per event must not pay a TCP
    handshake each time."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(timeout=TIMEOUT, limits=httpx.Limits(max_keepalive_connections=8))
        return _client


def query(
    document: str, variables: dict[str, Any] | None = None, *, url: str | None = None, timeout: httpx.Timeout | None = None
) -> dict[str, Any]:
    """The ``data`` of one GraphQL call; ``DagsterUnavailable`` when it cannot be had."""
    try:
        response = _http().post(url or graphql_url(), json={"query": document, "variables": variables or {}},
                                timeout=timeout or TIMEOUT)
    except httpx.HTTPError as exc:
        raise DagsterUnavailable(f"Dagster GraphQL unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 500:
        raise DagsterUnavailable(f"Dagster GraphQL answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise DagsterUnavailable(f"Dagster GraphQL answered {response.status_code} without JSON") from exc
    if body.get("errors"):
        raise DagsterUnavailable("Dagster GraphQL error: " + "; ".join(str(e.get("message")) for e in body["errors"]))
    return body.get("data") or {}


_located: dict[tuple[str, str], tuple[float, tuple[str, str]]] = {}
LOCATION_CACHE_SECONDS = 60


def find_job(job_name: str, *, url: str | None = None) -> tuple[str, str]:
    """``(location name, repository name)`` of the code location that has ``job_name``
    (remembered for a minute: one lookup per job, not per submission)."""
    key = (url or graphql_url(), job_name)
    cached = _located.get(key)
    if cached and time.monotonic() - cached[0] < LOCATION_CACHE_SECONDS:
        return cached[1]
    found = _find_job(job_name, url=url)
    _located[key] = (time.monotonic(), found)
    return found


def _find_job(job_name: str, *, url: str | None = None) -> tuple[str, str]:
    result = query(_REPOSITORIES, url=url)["repositoriesOrError"]
    if result["__typename"] != "RepositoryConnection":
        raise DagsterUnavailable(f"Dagster could not list its code locations: {result.get('message')}")
    for repo in result["nodes"]:
        if any(job["name"] == job_name for job in repo["jobs"]):
            return repo["location"]["name"], repo["name"]
    raise LaunchFailed("JobNotFound", f"no loaded code location has a job named {job_name!r}")


def launch_job(
    job_name: str,
    tags: dict[str, str],
    run_config: dict[str, Any] | None = None,
    partition_key: str | None = None,
    *,
    url: str | None = None,
    timeout: httpx.Timeout | None = None,
) -> str:
    """Submit a run of ``job_name`` (to the run queue) and return its run id."""
    location, repository = find_job(job_name, url=url)
    all_tags = dict(tags)
    if partition_key is not None:
        all_tags[run_tag.PARTITION] = partition_key
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job_name},
        "runConfigData": run_config or {},
        "executionMetadata": {"tags": [{"key": k, "value": str(v)} for k, v in all_tags.items()]},
    }
    result = query(_LAUNCH, {"executionParams": params}, url=url, timeout=timeout)["launchRun"]
    kind = result["__typename"]
    if kind == "LaunchRunSuccess":
        return result["run"]["runId"]
    if kind == "RunConfigValidationInvalid":
        raise LaunchFailed(kind, "; ".join(e["message"] for e in result.get("errors", [])))
    if kind == "PythonError":
        raise DagsterUnavailable(f"Dagster failed to launch {job_name}: {result.get('message')}")
    raise LaunchFailed(kind, result.get("message") or kind)


_REEXECUTE = """
mutation Reexecute($params: ReexecutionParams!) {
  launchRunReexecution(reexecutionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


def launch_reexecution(parent_run_id: str, extra_tags: dict[str, str], *, url: str | None = None,
                       use_parent_run_tags: bool = True, strategy: str = "FROM_FAILURE") -> str:
    """Re-execute ``parent_run_id`` from failure (only failed and not-run ops run again;
    ``strategy="ALL_STEPS"``: every op), with the job's tags, the parent's (unless
    ``use_parent_run_tags`` is false) and ``extra_tags``; the run id of the re-execution."""
    params = {
        "parentRunId": parent_run_id,
        "strategy": strategy,
        "useParentRunTags": use_parent_run_tags,
        "extraTags": [{"key": k, "value": str(v)} for k, v in extra_tags.items()],
    }
    result = query(_REEXECUTE, {"params": params}, url=url)["launchRunReexecution"]
    kind = result["__typename"]
    if kind == "LaunchRunSuccess":
        return result["run"]["runId"]
    if kind == "PythonError":
        raise DagsterUnavailable(f"Dagster failed to re-execute {parent_run_id}: {result.get('message')}")
    raise LaunchFailed(kind, result.get("message") or kind)
