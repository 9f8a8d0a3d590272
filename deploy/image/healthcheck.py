"""The image's HEALTHCHECK: is this container's role answering on its own port?

  relay        GET /health/ready (the event store answers)
  code-server  the gRPC health check
  webserver    the code location is loaded from the code server
  daemon       every required daemon has sent a heartbeat since this container started
  worker       this worker's Celery node answers a ping over the broker
  migrate      (a one-shot: always healthy)

Exit status 0 healthy, 1 not. The checks are carinho_pipelines.supervisor's, the ones
``carinho run`` uses; none imports Dagster. Docker runs this every 30 s in every hub
container, so it imports only what its role's check needs (importing the CLI and
probing every 5 s cost ~45 % of the 2 cores of an idle compose stack).
"""

from __future__ import annotations

import json
import os
import sys

import httpx

from carinho_pipelines import supervisor as sv


def relay_ready(port: str) -> bool:
    base = f"http://127.0.0.1:{port}"
    try:
        resp = httpx.get(f"{base}/health/ready", timeout=3)
        if resp.status_code == 404:  # a relay older than /health/ready
            resp = httpx.get(f"{base}/health", timeout=3)
        return resp.status_code == 200
    except httpx.HTTPError:
        return False


def healthy(state: dict) -> bool:
    role, env = state["role"], os.environ
    if role == "relay":
        return relay_ready(env["CARINHO_RELAY_PORT"])
    if role == "code-server":
        return sv.grpc_serving("127.0.0.1", int(env["CARINHO_CODE_SERVER_PORT"]))()
    if role == "webserver":
        return sv.code_location_loaded(f"http://127.0.0.1:{env['CARINHO_DAGSTER_PORT']}/graphql", "carinho_pipelines")()
    if role == "daemon":
        return sv.daemons_healthy(env["CARINHO_DAGSTER_GRAPHQL_URL"], state["started"])()
    if role == "worker":
        return sv.celery_worker_answers(env["CARINHO_CELERY_BROKER_URL"], state["node_prefix"])()
    return True


if __name__ == "__main__":
    try:
        with open("/tmp/carinho-role") as f:
            state = json.load(f)
    except (OSError, ValueError):
        sys.exit(1)
    sys.exit(0 if healthy(state) else 1)
