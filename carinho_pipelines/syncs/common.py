"""One sync as a Dagster multi-asset: fetch → validate → dedupe → transform → write/confirm.

Each sync module describes itself with a :class:`SyncSpec`; :func:`run_sync` is the
body of its asset op. It yields one materialization per target asset (counts and a
masked preview), the in-run asset check results, and then fails the run (so it is in
the DLQ) when any item failed, listing those items. Re-executing the run from failure
re-runs the op, and the ledger makes it touch only the items that failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from carinho_pipelines.kernel import tags
from . import batch
from .engine import Caller, SyncConfig, sync_pages
from .ledger import SyncLedgerResource
from .spec import Batch, SyncSpec  # noqa: F401 - the sync modules' names
from .stream import FeedReader, source_pages

LEDGER_KEY = "sync_ledger"
run_tags = tags.sync_run_tags


def run_sync(
    spec: SyncSpec,
    context: AssetExecutionContext,
    config: SyncConfig,
    resources: Mapping[str, Any],
    sync_ledger: SyncLedgerResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    partition_key = context.partition_key if context.has_partition_key else None
    ledger = sync_ledger.ledger()
    caller = Caller(config)
    reader = FeedReader(spec, partition_key, ledger)
    write_to = _destination_of(spec.written_key)
    outcome = sync_pages(
        spec.name,
        reader.pages(source_pages(spec, resources, partition_key, caller)),
        ledger=ledger,
        write=lambda item: caller(write_to, lambda: spec.write(resources, item)),
        confirm=lambda item: caller(spec.source_system, lambda: spec.confirm(resources, item)),
        config=config,
        run_id=context.run_id,
        partition_key=partition_key,
        workers=max(caller.limit(write_to), caller.limit(spec.source_system)),
    )
    if reader.fetch_error is not None and reader.pages_read == 0:
        exc = reader.fetch_error
        raise Failure(
            description=f"{spec.name}: could not read from {spec.source_system}: {exc}",
            metadata={"error_class": exc.error_class, "stage": "fetch"},
        ) from exc
    reader.log_invalid(context.log.warning)
    done = Batch(spec.name, partition_key, reader.read, reader.duplicates, reader.invalid, reader.skipped_at_source,
                 reader.items, outcome, ledger, dt.datetime.now(dt.timezone.utc))

    yield from _materializations(spec, done)
    yield from spec.evaluate_checks(done)

    context.log.info(f"{spec.name}: {summary(done)}")
    if reader.fetch_error is not None:  # a later page could not be read: what was read is synced
        exc = reader.fetch_error
        raise Failure(
            description=f"{spec.name}: could not read from {spec.source_system} after {reader.pages_read} "
            f"page(s): {exc}" + (f"; {len(outcome.failures)} item(s) failed too" if outcome.failures else ""),
            metadata={"error_class": exc.error_class, "stage": "fetch", "pages_read": reader.pages_read,
                      "failed_ids": ", ".join(outcome.failed_ids()[:200])},
        ) from exc
    if outcome.failures:
        shown = [f.as_dict() for f in outcome.failures]
        raise Failure(
            description=f"{spec.name}: {len(outcome.failures)} item(s) failed: "
            + ", ".join(f"{f.source_id} ({f.stage}, {f.error_class})" for f in outcome.failures[:20]),
            metadata={
                "failed_items": MetadataValue.json(shown[:200]),
                "failed_count": len(outcome.failures),
                "failed_ids": ", ".join(outcome.failed_ids()[:200]),
                "error_classes": ", ".join(sorted({f.error_class for f in outcome.failures})),
            },
        )


def _destination_of(key: AssetKey) -> str:
    return key.path[0]


def counts(done: Batch) -> dict[str, int]:
    o = done.outcome
    return {
        "read": done.read,
        "duplicates": done.duplicates,
        "invalid": len(done.invalid),
        "skipped_already_synced": len(done.skipped_at_source) + len(o.skipped),
        "written": len(o.written),
        "confirmed": len(o.confirmed),
        "confirm_retried": len(o.confirm_retried),
        "failed": len(o.failures),
    }


def summary(done: Batch) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts(done).items())


def _materializations(spec: SyncSpec, done: Batch) -> Iterator[MaterializeResult]:
    o = done.outcome
    invalid_rows = done.invalid[["id", "reason"]].head(50).astype(str).to_dict("records")
    common: dict[str, Any] = {"partition": done.partition_key or ""}
    written_meta = {
        "read": done.read,
        "duplicates": done.duplicates,
        "invalid": len(done.invalid),
        "skipped_already_synced": len(done.skipped_at_source) + len(o.skipped),
        "written": len(o.written),
        "failed": len(o.failed_ids("write")) if spec.confirmed_key else len(o.failures),
        "invalid_items": MetadataValue.json(invalid_rows),
        "preview": batch.preview([spec.preview_row(i) for i in o.written[:batch.PREVIEW_ROWS]], spec.preview_columns),
        **common,
    }
    confirm_meta = {
        "confirmed": len(o.confirmed),
        "confirm_retried": len(o.confirm_retried),
        "confirm_failed": len(o.failed_ids("confirm")),
    }
    if spec.confirmed_key is None:
        yield MaterializeResult(asset_key=spec.written_key, metadata={**written_meta, **confirm_meta})
        return
    yield MaterializeResult(asset_key=spec.written_key, metadata=written_meta)
    yield MaterializeResult(
        asset_key=spec.confirmed_key,
        metadata={**confirm_meta, "failed": len(o.failed_ids("confirm")), **common},
    )


# -- checks every unpartitioned sync has ------------------------------------------------


def stale_pending_check(spec_key: AssetKey, noun: str, max_age: dt.timedelta) -> tuple[AssetCheckSpec, Callable[[Batch], AssetCheckResult]]:
    """"No pending <noun> older than <max_age>": what the source still lists after this run
    (invalid, failed, or confirmed but still listed), aged from when the hub first saw it."""
    hours = int(max_age.total_seconds() // 3600)
    name = f"no_pending_{noun}_older_than_{hours}h"
    check_spec = AssetCheckSpec(
        name,
        asset=spec_key,
        description=f"After the run, no {noun.replace('_', ' ')} the source still lists as pending "
        f"was first seen by the hub more than {hours} h ago.",
    )

    def evaluate(done: Batch) -> AssetCheckResult:
        o = done.outcome
        pending = set(done.invalid["id"].dropna().astype(str)) | set(o.failed_ids()) | {i.source_id for i in o.skipped}
        rows = done.ledger.lookup(done.sync, sorted(pending)) if pending else {}
        limit = done.now - max_age
        stale = sorted((k for k, r in rows.items() if r.first_seen_at <= limit), key=_natural)
        oldest = min((r.first_seen_at for r in rows.values()), default=None)
        return AssetCheckResult(
            asset_key=spec_key,
            check_name=name,
            passed=not stale,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "still_pending": len(pending),
                "stale": len(stale),
                "stale_ids": ", ".join(stale[:100]),
                "oldest_first_seen_at": oldest.isoformat() if oldest else "",
            },
        )

    return check_spec, evaluate


def _natural(value: str) -> tuple[int, str]:
    return (0, f"{int(value):020d}") if value.isdigit() else (1, value)


def system_group(key: AssetKey) -> str:
    """The asset group of a sync's asset: the system that owns the data (the first part
    of its key: ``crm``, ``operacao``, ``financeiro``, ``cuidadores``), so the global
    lineage reads as data flowing between systems; the sync itself is the asset tag
    ``carinho/sync`` and the job of the same name."""
    return key.path[0]
