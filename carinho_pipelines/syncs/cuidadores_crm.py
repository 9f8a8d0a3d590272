"""``cuidadores_crm`` (Cuidadores → CRM), every 4 h: caregiver updates reach the CRM.

Reads Cuidadores' pending updates, forwards each to the CRM's event inbox as a
canonical ``caregiver.updated`` event, then confirms it to Cuidadores
(``POST /api/v1/sync/confirm/{id}``).
"""


import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec, multi_asset

from carinho_pipelines.kernel import tags
from ..resources import CrmResource, CuidadoresResource
from ..resources.http import Pager
from carinho_pipelines.kernel.sync_registry import SYNCS as SYNC_REGISTRY
from .common import SyncSpec, run_sync, stale_pending_check, system_group
from .engine import Item, SyncConfig
from .ledger import SyncLedgerResource

NAME = "cuidadores_crm"
REGISTERED = SYNC_REGISTRY[NAME]
SOURCE_KEY = AssetKey([REGISTERED.source, "pending_updates"])
TARGET_KEY = AssetKey([REGISTERED.writes[0], "caregiver_updates"])

source = AssetSpec(
    SOURCE_KEY,
    group_name=system_group(SOURCE_KEY),
    tags={tags.SYNC: NAME},
    description="Caregiver changes in Cuidadores not yet synced (Cuidadores `GET /api/v1/sync/pending-updates`: "
    "id, caregiver_id, changes, updated_at). Owned by Cuidadores; the hub only reads it.",
    metadata={"owner_system": "cuidadores", "endpoint": "GET /api/v1/sync/pending-updates"},
    owners=["team:cuidadores"],
    kinds={"api"},
)


def event_id(update_id: str) -> str:
    return f"sync:{NAME}:update:{update_id}"


def _fetch(resources: Mapping[str, Any], _partition: str | None) -> Pager:
    cuidadores: CuidadoresResource = resources["cuidadores"]
    return cuidadores.pending_updates_pages()


def _body(row: dict[str, Any], _partition: str | None) -> dict[str, Any]:
    return {
        "id": event_id(str(row["id"])),
        "type": "caregiver.updated",
        "timestamp": row.get("updated_at"),
        "source": "cuidadores",
        "data": {"caregiver_id": row["caregiver_id"], "changes": row["changes"], "timestamp": row.get("updated_at")},
    }


def _write(resources: Mapping[str, Any], item: Item) -> str:
    crm: CrmResource = resources["crm"]
    answer = crm.forward_event(item.body, idempotency_key=f"sync:{NAME}:forward:{item.source_id}")
    return str(answer.get("id") or item.body["id"])


def _confirm(resources: Mapping[str, Any], item: Item) -> None:
    cuidadores: CuidadoresResource = resources["cuidadores"]
    cuidadores.confirm_update(item.source_id, idempotency_key=f"sync:{NAME}:confirm:{item.source_id}")


stale_spec, stale_evaluate = stale_pending_check(TARGET_KEY, "update", dt.timedelta(hours=8))

SPEC = SyncSpec(
    name=NAME,
    source_system=REGISTERED.source,
    columns=("id", "caregiver_id", "changes", "updated_at"),
    required=("id", "caregiver_id", "changes"),
    numeric=(),
    fetch=_fetch,
    body=_body,
    write=_write,
    confirm=_confirm,
    written_key=TARGET_KEY,
    preview_columns=("update_id", "crm_event_id", "caregiver_id", "changed_fields", "updated_at"),
    # changes may hold a phone or a name: only which fields changed is shown
    preview_row=lambda item: {
        "update_id": item.source_id,
        "crm_event_id": item.downstream_id,
        "caregiver_id": item.body["data"]["caregiver_id"],
        "changed_fields": ", ".join(sorted(item.body["data"]["changes"] or {})),
        "updated_at": item.body["timestamp"],
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
            description="Caregiver updates the hub delivered to the CRM as `caregiver.updated` events "
            "(CRM event inbox), each confirmed back to Cuidadores. Owned by the CRM; written every 4 h by the hub.",
            metadata={"owner_system": "crm", "endpoint": "POST /api/v1/webhooks/events"},
            owners=["team:crm"],
            kinds={"pandas"},
        )
    ],
    check_specs=list(SPEC.check_specs),
    op_tags={tags.SYNC: NAME},
)
def cuidadores_crm(
    context: AssetExecutionContext,
    config: SyncConfig,
    crm: CrmResource,
    cuidadores: CuidadoresResource,
    sync_ledger: SyncLedgerResource,
) -> Iterator[Any]:
    yield from run_sync(SPEC, context, config, {"crm": crm, "cuidadores": cuidadores}, sync_ledger)
