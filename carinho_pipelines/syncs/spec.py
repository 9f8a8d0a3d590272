"""What a sync is (:class:`SyncSpec`, one per sync module) and what one run of it read
and decided (:class:`Batch`, handed to its checks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagster import AssetCheckResult, AssetCheckSpec, AssetKey

from .engine import Item, Outcome
from .ledger import SyncLedger

if TYPE_CHECKING:
    import pandas as pd  # imported by .batch when a sync runs, not at code-location load


@dataclass
class Batch:
    """What a run read and decided, passed to the checks."""

    sync: str
    partition_key: str | None
    read: int
    duplicates: int
    #: the invalid items (``id``, ``reason``)
    invalid: pd.DataFrame
    skipped_at_source: list[str]
    #: the valid items not synced at the source, with their downstream id when written
    #: (ids only: their payloads are released once synced)
    items: list[Item]
    outcome: Outcome
    ledger: SyncLedger
    now: dt.datetime


@dataclass(frozen=True)
class SyncSpec:
    name: str
    source_system: str
    #: fields of a feed item (CONTRACTS §10), the required ones, the numeric ones
    columns: tuple[str, ...]
    required: tuple[str, ...]
    numeric: tuple[str, ...]
    #: the feed: a list, or a pager read page by page (``resource.<feed>_pages()``)
    fetch: Callable[[Mapping[str, Any], str | None], Any]
    #: the body written downstream for one valid source item
    body: Callable[[dict[str, Any], str | None], dict[str, Any]]
    write: Callable[[Mapping[str, Any], Item], str]
    confirm: Callable[[Mapping[str, Any], Item], None]
    written_key: AssetKey
    #: a separate asset for the confirms (``operacao/services_billed``); None = same asset
    confirmed_key: AssetKey | None = None
    preview_columns: tuple[str, ...] = ()
    preview_row: Callable[[Item], dict[str, Any]] = lambda item: item.body
    #: items already synced according to the source (e.g. ``billed: true``)
    synced_at_source: Callable[[dict[str, Any]], bool] | None = None
    #: checks evaluated in the run, with their evaluation
    check_specs: tuple[AssetCheckSpec, ...] = ()
    evaluate_checks: Callable[[Batch], list[AssetCheckResult]] = lambda b: []
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
