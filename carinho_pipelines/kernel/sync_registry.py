"""The four scheduled syncs (CONTRACTS §5): name, schedule, partitioning and the systems
each one calls. The one source: the Dagster jobs and schedules, the relay's
``/api/sync`` and the DLQ re-drive read it. Pure Python (the relay imports it)."""

from __future__ import annotations

from dataclasses import dataclass

#: every sync's schedule is in this time zone
TIMEZONE = "America/Sao_Paulo"


@dataclass(frozen=True)
class Sync:
    name: str
    #: cron, in :data:`TIMEZONE`
    cron: str
    #: one run per day partition (a backfill re-runs past days)
    partitioned: bool
    #: the system whose feed is read
    source: str
    #: the systems written to, in the order of the sync's target assets
    writes: tuple[str, ...]

    @property
    def systems(self) -> list[str]:
        """Every system the sync calls: a DLQ re-drive waits until all are healthy."""
        return sorted({self.source, *self.writes})


SYNCS: dict[str, Sync] = {s.name: s for s in (
    Sync("crm_operacao", "0 * * * *", False, source="crm", writes=("operacao",)),
    # invoices to Financeiro, then each service confirmed as billed back in Operação
    Sync("operacao_financeiro", "0 23 * * *", True, source="operacao", writes=("financeiro", "operacao")),
    Sync("crm_financeiro", "0 6,18 * * *", False, source="crm", writes=("financeiro",)),
    Sync("cuidadores_crm", "0 */4 * * *", False, source="cuidadores", writes=("crm",)),
)}
