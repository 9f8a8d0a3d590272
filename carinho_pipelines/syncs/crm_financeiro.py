"""``crm_financeiro`` (CRM → Financeiro), 06:00 and 18:00: a signed contract gets billing.

Reads CRM's contracts pending billing setup, sets each up in Financeiro
(``POST /api/billing/setup``) and tells the CRM the Financeiro id
(``POST /api/v1/contracts/{id}/billing-setup``).
"""


import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from carinho_pipelines.kernel import tags
from ..resources import CrmResource, FinanceiroResource
from ..resources.http import Pager
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY
from .common import SyncSpec, run_sync, stale_pending_check, system_group
from .engine import Item, SyncConfig, wire_id
from .ledger import SyncLedgerResource

NAME = "crm_financeiro"
REGISTERED = SYNC_REGISTRY[NAME]
SOURCE_KEY = AssetKey([REGISTERED.source, "pending_billing_setups"])
TARGET_KEY = AssetKey([REGISTERED.writes[0], "billing_setups"])

source = AssetSpec(
    SOURCE_KEY,
    group_name=system_group(SOURCE_KEY),
    tags={tags.SYNC: NAME},
    description="Signed contracts in the CRM without billing yet (CRM `GET /api/v1/sync/pending-billing-setup`: "
    "id (contract), client_id, billing_type, value, payment_method). Owned by the CRM; the hub only reads it.",
    metadata={"owner_system": "crm", "endpoint": "GET /api/v1/sync/pending-billing-setup"},
    owners=["team:crm"],
    kinds={"api"},
)


def _fetch(resources: Mapping[str, Any], _partition: str | None) -> Pager:
    crm: CrmResource = resources["crm"]
    return crm.pending_billing_setups_pages()


def _body(row: dict[str, Any], _partition: str | None) -> dict[str, Any]:
    return {
        "crm_client_id": row["client_id"],
        "crm_contract_id": row["id"],
        "billing_type": row["billing_type"],
        "amount": row["value"],
        "payment_method": row["payment_method"],
    }


def _write(resources: Mapping[str, Any], item: Item) -> str:
    financeiro: FinanceiroResource = resources["financeiro"]
    created = financeiro.billing_setup(item.body, idempotency_key=f"sync:{NAME}:billing_setup:{item.source_id}")
    if created.get("id") is None:
        raise ValueError("Financeiro set up billing but answered without its id")
    return str(created["id"])


def _confirm(resources: Mapping[str, Any], item: Item) -> None:
    crm: CrmResource = resources["crm"]
    crm.confirm_billing_setup(item.source_id, wire_id(item.downstream_id),
                              idempotency_key=f"sync:{NAME}:confirm:{item.source_id}")


stale_spec, stale_evaluate = stale_pending_check(TARGET_KEY, "billing_setup", dt.timedelta(hours=24))

SPEC = SyncSpec(
    name=NAME,
    source_system=REGISTERED.source,
    columns=("id", "client_id", "billing_type", "value", "payment_method"),
    required=("id", "client_id", "billing_type", "value", "payment_method"),
    numeric=("value",),
    fetch=_fetch,
    body=_body,
    write=_write,
    confirm=_confirm,
    written_key=TARGET_KEY,
    preview_columns=("crm_contract_id", "financeiro_id", "crm_client_id", "billing_type", "amount", "payment_method"),
    preview_row=lambda item: {**item.body, "financeiro_id": item.downstream_id},
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
            description="Billing setups the hub created in Financeiro for signed CRM contracts "
            "(`POST /api/billing/setup`), each confirmed back to the CRM with the Financeiro id. "
            "Owned by Financeiro; written at 06:00 and 18:00 by the hub.",
            metadata={"owner_system": "financeiro", "endpoint": "POST /api/billing/setup"},
            owners=["team:financeiro"],
            kinds={"pandas"},
        )
    ],
    check_specs=list(SPEC.check_specs),
    op_tags={tags.SYNC: NAME},
)
def crm_financeiro(
    context: AssetExecutionContext,
    config: SyncConfig,
    crm: CrmResource,
    financeiro: FinanceiroResource,
    sync_ledger: SyncLedgerResource,
) -> Iterator[Any]:
    yield from run_sync(SPEC, context, config, {"crm": crm, "financeiro": financeiro}, sync_ledger)
