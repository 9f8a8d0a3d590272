#!/bin/sh
# The image's entrypoint: the first argument is the role.
#
#   relay                 carinho relay on $CARINHO_BIND:$CARINHO_RELAY_PORT
#   code-server           the standalone code server (dagster api grpc) on $CARINHO_CODE_SERVER_PORT
#   webserver             Dagster's webserver on $CARINHO_DAGSTER_PORT, code from the code server
#   daemon                Dagster's daemon (exactly one per instance), code from the code server
#   worker <queues>       a warm run worker (carinho worker --queues <queues>)
#   migrate               creates the two databases if missing, the event store's and Dagster's schema
#   anything else         run as is (e.g. `carinho apikey create ops --scopes '*'`)
#
# Every role first writes $DAGSTER_HOME/dagster.yaml from the environment (PostgreSQL
# storage when DAGSTER_PG_URL is set, the Celery launcher when CARINHO_CELERY_BROKER_URL
# is set) and /tmp/carinho-role, which the HEALTHCHECK (healthcheck.py) reads.
set -eu
: "${CARINHO_BIND:=127.0.0.1}"
: "${CARINHO_RELAY_PORT:=8000}"
: "${CARINHO_DAGSTER_PORT:=3000}"
: "${CARINHO_CODE_SERVER_PORT:=4266}"
: "${CARINHO_CODE_SERVER_HOST:=127.0.0.1}"
: "${CARINHO_RELAY_WORKERS:=1}"
export CARINHO_BIND CARINHO_RELAY_PORT CARINHO_DAGSTER_PORT CARINHO_CODE_SERVER_PORT CARINHO_CODE_SERVER_HOST
: "${CARINHO_DAGSTER_GRAPHQL_URL:=http://127.0.0.1:$CARINHO_DAGSTER_PORT/graphql}"
export CARINHO_DAGSTER_GRAPHQL_URL
workspace=/opt/dagster/app/workspace.code-server.yaml

role="${1:-relay}"
[ $# -gt 0 ] && shift
if [ "$role" = worker ]; then
  [ $# -ge 1 ] || { echo "usage: worker <queue>[,<queue>...]" >&2; exit 2; }
  # the worker's Celery node name: unique per container even with host networking
  # (the same hostname and often the same pid in every container)
  : "${CARINHO_WORKER_ID:=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
  export CARINHO_WORKER_ID
fi
python /opt/carinho/prepare.py "$role" "$@"

case "$role" in
  relay)
    exec carinho relay --host "$CARINHO_BIND" --port "$CARINHO_RELAY_PORT" --workers "$CARINHO_RELAY_WORKERS" ;;
  code-server)
    exec dagster api grpc -m carinho_pipelines.definitions --location-name carinho_pipelines \
      -h "$CARINHO_BIND" -p "$CARINHO_CODE_SERVER_PORT" ;;
  webserver)
    exec dagster-webserver -h "$CARINHO_BIND" -p "$CARINHO_DAGSTER_PORT" -w "$workspace" ;;
  daemon)
    exec dagster-daemon run -w "$workspace" ;;
  worker)
    exec carinho worker --queues "$1" ;;
  migrate)
    carinho db upgrade
    dagster instance migrate
    # each destination's concurrency as its Dagster pool limit (destinations/limits.py)
    exec carinho instance limits ;;
  *)
    exec "$role" "$@" ;;
esac
