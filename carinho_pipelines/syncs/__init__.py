"""The four scheduled syncs (CONTRACTS §5) as Dagster assets, jobs, schedules and checks.

Lineage in the UI: what the hub reads from a system is an external asset, what it
writes is a materialized asset; each asset is in the group of the system that owns
the data, so the global lineage reads CRM → Operação → Financeiro and Cuidadores → CRM::

    crm/pending_schedules        → operacao/schedules                  (crm_operacao, hourly)
    operacao/schedules ⇢ operacao/completed_services (Operação runs the schedules)
    operacao/completed_services  → financeiro/invoices → operacao/services_billed
                                                                       (operacao_financeiro, daily 23:00, partitioned)
    crm/pending_billing_setups   → financeiro/billing_setups           (crm_financeiro, 06:00 and 18:00)
    cuidadores/pending_updates   → crm/caregiver_updates               (cuidadores_crm, every 4 h)

A sync is found by name as its job, and as the asset tag ``carinho/sync=<name>`` on
every asset it reads or writes.

``defs`` has no resources: the code location adds ``build_resources()`` and
``sync_ledger`` (:class:`SyncLedgerResource`).
"""

from __future__ import annotations

import dagster

from . import crm_financeiro, crm_operacao, cuidadores_crm, operacao_financeiro
from .checks import freshness_checks
from .common import LEDGER_KEY, run_tags
from .engine import SyncConfig
from .ledger import SyncLedger, SyncLedgerResource
from .schedules import SYNCS, TIMEZONE, freshness_job, jobs, schedules

MODULES = (crm_operacao, operacao_financeiro, crm_financeiro, cuidadores_crm)
SYNC_NAMES: tuple[str, ...] = tuple(SYNCS)

defs = dagster.Definitions(
    assets=[m.source for m in MODULES] + [getattr(m, m.NAME) for m in MODULES],
    asset_checks=freshness_checks,
    jobs=[*jobs.values(), freshness_job],
    schedules=schedules,
)

__all__ = [
    "LEDGER_KEY",
    "SYNC_NAMES",
    "SYNCS",
    "TIMEZONE",
    "SyncConfig",
    "SyncLedger",
    "SyncLedgerResource",
    "defs",
    "run_tags",
]
