"""``crm_operacao`` (CRM → Operação), hourly: a converted contract becomes a schedule.

Reads CRM's pending schedules, creates each in Operação (``POST /api/v1/schedules``),
then confirms it back to the CRM with the Operação schedule id. A failed confirm is
retried on the next run without creating the schedule again (the ledger has its id).
"""


import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from carinho_pipelines.kernel import tags
from ..resources import CrmResource, OperacaoResource
from ..resources.http import Pager
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY
from .common import SyncSpec, run_sync, stale_pending_check, system_group
from .engine import Item, SyncConfig, wire_id
from .ledger import SyncLedgerResource

NAME = "crm_operacao"
REGISTERED = SYNC_REGISTRY[NAME]
SOURCE_KEY = AssetKey([REGISTERED.source, "pending_schedules"])
TARGET_KEY = AssetKey([REGISTERED.writes[0], "schedules"])

source = AssetSpec(
    SOURCE_KEY,
    group_name=system_group(SOURCE_KEY),
    tags={tags.SYNC: NAME},
    description="Contracts converted in the CRM waiting for a schedule in Operação "
    "(CRM `GET /api/v1/sync/pending-schedules`: id, client_id, contract_id, service_type, "
    "start_date, end_date, preferences). Owned by the CRM; the hub only reads it.",
    metadata={"owner_system": "crm", "endpoint": "GET /api/v1/sync/pending-schedules"},
    owners=["team:crm"],
    kinds={"api"},
)


def _fetch(resources: Mapping[str, Any], _partition: str | None) -> Pager:
    crm: CrmResource = resources["crm"]
    return crm.pending_schedules_pages()


def _body(row: dict[str, Any], _partition: str | None) -> dict[str, Any]:
    return {
        "client_id": row["client_id"],
        "crm_contract_id": row["contract_id"],
        "service_type": row["service_type"],
        "start_date": row["start_date"],
        "end_date": row.get("end_date"),
        "preferences": row.get("preferences") or {},
    }


def _write(resources: Mapping[str, Any], item: Item) -> str:
    operacao: OperacaoResource = resources["operacao"]
    created = operacao.create_schedule(item.body, idempotency_key=f"sync:{NAME}:schedule:{item.source_id}")
    if created.get("id") is None:
        raise ValueError("Operação created the schedule but answered without its id")
    return str(created["id"])


def _confirm(resources: Mapping[str, Any], item: Item) -> None:
    crm: CrmResource = resources["crm"]
    crm.confirm_schedule(item.source_id, wire_id(item.downstream_id), idempotency_key=f"sync:{NAME}:confirm:{item.source_id}")


stale_spec, stale_evaluate = stale_pending_check(TARGET_KEY, "schedule", dt.timedelta(hours=2))

SPEC = SyncSpec(
    name=NAME,
    source_system=REGISTERED.source,
    columns=("id", "client_id", "contract_id", "service_type", "start_date", "end_date", "preferences"),
    required=("id", "client_id", "contract_id", "service_type", "start_date"),
    numeric=(),
    fetch=_fetch,
    body=_body,
    write=_write,
    confirm=_confirm,
    written_key=TARGET_KEY,
    preview_columns=("crm_schedule_id", "operacao_schedule_id", "client_id", "crm_contract_id", "service_type",
                     "start_date", "end_date", "preferences"),
    # preferences may hold health notes: only their keys are shown
    preview_row=lambda item: {
        "crm_schedule_id": item.source_id, "operacao_schedule_id": item.downstream_id,
        **{k: v for k, v in item.body.items() if k != "preferences"},
        "preferences": ", ".join(sorted(item.body.get("preferences") or {})),
    },
    check_specs=(stale_spec,),
    evaluate_checks=lambda done: [stale_evaluate(done)],
)


@multi_asset(
    name=f"sync_{NAME}",
    specs=[
        AssetSpec(
            TARGET_KEY,
            deps=[SOURCE_KEY],
            group_name=system_group(TARGET_KEY),
            tags={tags.SYNC: NAME},
            description="Schedules the hub created in Operação from the CRM's converted contracts "
            "(`POST /api/v1/schedules`), each confirmed back to the CRM (`POST /api/v1/sync/confirm/{id}`). "
            "Owned by Operação; written hourly by the hub.",
            metadata={"owner_system": "operacao", "endpoint": "POST /api/v1/schedules"},
            owners=["team:operacao"],
            kinds={"pandas"},
        )
    ],
    check_specs=list(SPEC.check_specs),
    op_tags={tags.SYNC: NAME},
)
def crm_operacao(
    context: AssetExecutionContext,
    config: SyncConfig,
    crm: CrmResource,
    operacao: OperacaoResource,
    sync_ledger: SyncLedgerResource,
) -> Iterator[Any]:
    yield from run_sync(SPEC, context, config, {"crm": crm, "operacao": operacao}, sync_ledger)
