"""``operacao_financeiro`` (Operação → Financeiro), daily at 23:00: a completed service is invoiced.

Daily partitions (America/Sao_Paulo), so a day can be backfilled from the UI. For the
partition's day: read Operação's completed services, skip those already ``billed``,
create one invoice per service in Financeiro (``due_date`` = day + 3) and mark the
service billed in Operação with the invoice id. Unlike the PHP module there is no
7-day lookback re-reading other days and no second invoicing path: the invoice's
``Idempotency-Key`` is per service, and the ledger remembers every invoice written.
"""


import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    DailyPartitionsDefinition,
    multi_asset,
)

from carinho_pipelines.kernel import settings, tags
from ..resources import FinanceiroResource, OperacaoResource
from ..resources.http import Pager
from .crm_operacao import TARGET_KEY as SCHEDULES_KEY
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY
from .common import Batch, SyncSpec, run_sync, system_group
from .engine import Item, SyncConfig, wire_id
from .ledger import SyncLedgerResource

NAME = "operacao_financeiro"
REGISTERED = SYNC_REGISTRY[NAME]
SOURCE_KEY = AssetKey([REGISTERED.source, "completed_services"])
INVOICES_KEY = AssetKey([REGISTERED.writes[0], "invoices"])
BILLED_KEY = AssetKey([REGISTERED.writes[1], "services_billed"])
DUE_IN_DAYS = 3
TIMEZONE = "America/Sao_Paulo"

#: one partition per day from the go-live date (``CARINHO_GO_LIVE_DATE``); ``end_offset=1``
#: makes today a partition, so the 23:00 run invoices the services completed today
partitions = DailyPartitionsDefinition(start_date=settings.go_live_date().isoformat(), timezone=TIMEZONE, end_offset=1)

source = AssetSpec(
    SOURCE_KEY,
    # the services Operação completes are the schedules it runs (written by crm_operacao)
    deps=[SCHEDULES_KEY],
    group_name=system_group(SOURCE_KEY),
    tags={tags.SYNC: NAME},
    partitions_def=partitions,
    description="Services Operação completed on a day (`GET /api/v1/services/completed?date=YYYY-MM-DD`: id, "
    "client_id, service_type, hours, hourly_rate, total, extras, completed_at, billed). Owned by Operação; "
    "the hub only reads it.",
    metadata={"owner_system": "operacao", "endpoint": "GET /api/v1/services/completed?date="},
    owners=["team:operacao"],
    kinds={"api"},
)


def invoice_items(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The main item plus one per extra (original module §5.2)."""
    items = [{
        "description": f"Serviço de cuidador - {row.get('service_type') or ''}".rstrip(" -"),
        "hours": row.get("hours") or 0,
        "unit_price": row.get("hourly_rate") or 0,
        "total": row.get("total") or 0,
    }]
    for extra in row.get("extras") or []:
        value = (extra or {}).get("value") or 0
        items.append({"description": (extra or {}).get("description") or "Extra", "hours": 0,
                      "unit_price": value, "total": value})
    return items


def _fetch(resources: Mapping[str, Any], partition: str | None) -> Pager:
    operacao: OperacaoResource = resources["operacao"]
    return operacao.completed_services_pages(partition or "")


def _body(row: dict[str, Any], partition: str | None) -> dict[str, Any]:
    day = dt.date.fromisoformat(partition or "")
    return {
        "client_id": row["client_id"],
        "operacao_service_id": row["id"],
        "items": invoice_items(row),
        "due_date": (day + dt.timedelta(days=DUE_IN_DAYS)).isoformat(),
    }


def invoice_key(service_id: str) -> str:
    return f"sync:{NAME}:invoice:{service_id}"


def _write(resources: Mapping[str, Any], item: Item) -> str:
    financeiro: FinanceiroResource = resources["financeiro"]
    created = financeiro.create_invoice(item.body, idempotency_key=invoice_key(item.source_id))
    if created.get("id") is None:
        raise ValueError("Financeiro created the invoice but answered without its id")
    return str(created["id"])


def _confirm(resources: Mapping[str, Any], item: Item) -> None:
    operacao: OperacaoResource = resources["operacao"]
    operacao.mark_billed(item.source_id, wire_id(item.downstream_id), idempotency_key=f"sync:{NAME}:billed:{item.source_id}")


CHECK_NAME = "every_completed_service_invoiced_once"
invoice_check = AssetCheckSpec(
    CHECK_NAME,
    asset=INVOICES_KEY,
    description="Every service Operação completed on the day has exactly one invoice: billed at the source "
    "or invoiced by this sync (the ledger holds at most one invoice per service); none left without one.",
)


def _evaluate(done: Batch) -> list[AssetCheckResult]:
    invoiced = set(done.skipped_at_source) | {i.source_id for i in done.items if i.downstream_id is not None}
    every = set(done.invalid["id"].dropna().astype(str)) | {i.source_id for i in done.items} \
        | set(done.skipped_at_source)
    missing = sorted(every - invoiced, key=lambda v: (len(v), v))
    return [AssetCheckResult(
        asset_key=INVOICES_KEY,
        check_name=CHECK_NAME,
        passed=not missing,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "services": len(every),
            "invoiced": len(every & invoiced),
            "without_invoice": len(missing),
            "without_invoice_ids": ", ".join(missing[:100]),
        },
    )]


SPEC = SyncSpec(
    name=NAME,
    source_system=REGISTERED.source,
    columns=("id", "client_id", "service_type", "hours", "hourly_rate", "total", "extras", "completed_at", "billed"),
    required=("id", "client_id", "total"),
    numeric=("hours", "hourly_rate", "total"),
    fetch=_fetch,
    body=_body,
    write=_write,
    confirm=_confirm,
    written_key=INVOICES_KEY,
    confirmed_key=BILLED_KEY,
    synced_at_source=lambda row: bool(row.get("billed")),
    preview_columns=("operacao_service_id", "invoice_id", "client_id", "total", "items", "due_date"),
    preview_row=lambda item: {
        "operacao_service_id": item.source_id, "invoice_id": item.downstream_id,
        "client_id": item.body["client_id"], "total": round(sum(float(i["total"] or 0) for i in item.body["items"]), 2),
        "items": len(item.body["items"]), "due_date": item.body["due_date"],
    },
    check_specs=(invoice_check,),
    evaluate_checks=_evaluate,
)


@multi_asset(
    name=f"sync_{NAME}",
    partitions_def=partitions,
    specs=[
        AssetSpec(
            INVOICES_KEY,
            deps=[SOURCE_KEY],
            group_name=system_group(INVOICES_KEY),
            tags={tags.SYNC: NAME},
            description="Invoices the hub created in Financeiro for the day's completed services "
            "(`POST /api/invoices`: client_id, operacao_service_id, items, due_date = day + 3). "
            "Owned by Financeiro; written daily at 23:00 by the hub, one partition per day.",
            metadata={"owner_system": "financeiro", "endpoint": "POST /api/invoices"},
            owners=["team:financeiro"],
            kinds={"pandas"},
        ),
        AssetSpec(
            BILLED_KEY,
            deps=[INVOICES_KEY],
            group_name=system_group(BILLED_KEY),
            tags={tags.SYNC: NAME},
            description="The billed marks the hub set in Operação with each service's invoice id "
            "(`PUT /api/v1/services/{id}/billed`). A mark that failed is retried on the next run "
            "without invoicing again. Owned by Operação.",
            metadata={"owner_system": "operacao", "endpoint": "PUT /api/v1/services/{id}/billed"},
            owners=["team:operacao"],
            kinds={"pandas"},
        ),
    ],
    check_specs=[invoice_check],
    op_tags={tags.SYNC: NAME},
)
def operacao_financeiro(
    context: AssetExecutionContext,
    config: SyncConfig,
    operacao: OperacaoResource,
    financeiro: FinanceiroResource,
    sync_ledger: SyncLedgerResource,
) -> Iterator[Any]:
    yield from run_sync(SPEC, context, config, {"operacao": operacao, "financeiro": financeiro}, sync_ledger)
