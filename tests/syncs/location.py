"""A code location for the sync tests: the syncs' ``defs`` with the hub's resources from the
environment (the sandbox's URLs and tokens, ``CARINHO_DATABASE_URL``).

Module-level job functions make the jobs reconstructable (re-execution from failure needs
that), and ``defs`` is what the test webserver loads.
"""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, JobDefinition

from carinho_pipelines import syncs
from carinho_pipelines.resources import build_resources


def definitions() -> Definitions:
    url = EnvVar("CARINHO_DATABASE_URL") if os.environ.get("CARINHO_DATABASE_URL") else ""
    resources = {**build_resources(), syncs.LEDGER_KEY: syncs.SyncLedgerResource(database_url=url)}
    return Definitions.merge(syncs.defs, Definitions(resources=resources))


def job(name: str) -> JobDefinition:
    return definitions().resolve_job_def(name)


def crm_operacao_job() -> JobDefinition:
    return job("crm_operacao")


def operacao_financeiro_job() -> JobDefinition:
    return job("operacao_financeiro")


defs = definitions()
