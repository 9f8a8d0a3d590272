"""Run by entrypoint.sh before every role: $DAGSTER_HOME/dagster.yaml from the
environment, /tmp/carinho-role for the healthcheck, and for ``migrate`` the two
PostgreSQL databases (the event store's and Dagster's) when they do not exist yet."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from carinho_pipelines.platform.instance import prepare_dagster_home

ROLE_FILE = Path("/tmp/carinho-role")


def ensure_database(url: str) -> None:
    """CREATE DATABASE for ``url``'s database unless it exists (needs CREATEDB)."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
                print(f"created database {target.database}")
    finally:
        admin.dispose()


def main(role: str, args: list[str]) -> None:
    prepare_dagster_home(Path(os.environ["DAGSTER_HOME"]))
    state = {"role": role, "args": args, "started": time.time()}
    if role == "worker":  # the healthcheck pings this node; it need not import the CLI for its name
        from carinho_pipelines.cli import worker_node_prefix

        state["node_prefix"] = f"{worker_node_prefix(args[0].split(','))}.{os.environ.get('CARINHO_WORKER_ID')}@"
    ROLE_FILE.write_text(json.dumps(state))
    if role == "migrate":
        for name in ("CARINHO_DATABASE_URL", "DAGSTER_PG_URL"):
            if os.environ.get(name):
                ensure_database(os.environ[name])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
