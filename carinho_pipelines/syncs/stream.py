"""A sync's feed read page by page: each page framed, validated and deduped on its own.

:class:`FeedReader` turns the pages a source answers into pages of :class:`~.engine.Item`
for :func:`~.engine.sync_pages`, and keeps what the run reports and checks need: the
counts, the invalid items (id and reason), the ids already synced at the source, and
a slim record of every item (ids only). Memory depends on the page size, not on the
feed's length, apart from those ids.

A page that cannot be read (after the retries) ends the feed: what was read is still
written and confirmed, and :attr:`FeedReader.fetch_error` makes the run fail afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from carinho_pipelines.kernel.errors import ActionError
from . import batch
from .engine import Caller, Item
from .ledger import SyncLedger

if TYPE_CHECKING:
    import pandas as pd

    from .spec import SyncSpec

#: invalid items named in the run's log line
LOGGED_INVALID = 20


def source_pages(spec: SyncSpec, resources: Mapping[str, Any], partition_key: str | None,
                 caller: Caller) -> Iterator[list[dict[str, Any]]]:
    """The feed's pages, each read with the retry policy (a ``fetch`` may give a list or a pager)."""
    feed = caller(spec.source_system, lambda: spec.fetch(resources, partition_key))
    if isinstance(feed, list):
        yield feed
        return
    while (page := caller(spec.source_system, feed.next_page)) is not None:
        yield page


class FeedReader:
    def __init__(self, spec: SyncSpec, partition_key: str | None, ledger: SyncLedger) -> None:
        self.spec = spec
        self.partition_key = partition_key
        self.ledger = ledger
        self.read = 0
        self.pages_read = 0
        self.duplicates = 0
        self.skipped_at_source: list[str] = []
        #: every valid item not synced at the source (released once done: ids only)
        self.items: list[Item] = []
        self.fetch_error: ActionError | None = None
        self._invalid: list[pd.DataFrame] = []
        self._seen_ids: set[str] = set()

    def pages(self, source: Iterator[list[dict[str, Any]]]) -> Iterator[list[Item]]:
        try:
            for raw in source:
                self.pages_read += 1
                yield self._page(raw)
        except ActionError as exc:
            self.fetch_error = exc

    def _page(self, raw: list[dict[str, Any]]) -> list[Item]:
        spec = self.spec
        frame = batch.to_frame(raw, spec.columns)
        self.read += len(frame)
        if not len(frame):
            return []
        valid, invalid = batch.validate(frame, spec.required, spec.numeric)
        valid, duplicates = batch.dedupe(valid)
        # the same item on two pages (a page boundary shifting while we read)
        ids = valid["id"].astype(str)
        again = ids.isin(self._seen_ids)
        self.duplicates += duplicates + int(again.sum())
        valid = valid.loc[~again]
        self._seen_ids.update(ids[~again])
        if spec.synced_at_source is not None and len(valid):
            at_source = valid[batch.ITEM].map(spec.synced_at_source).astype(bool)
            self.skipped_at_source.extend(valid.loc[at_source, "id"].astype(str).tolist())
            valid = valid.loc[~at_source]
        if len(invalid):
            import pandas as pd

            invalid = invalid[["id", "reason"]]
            self._invalid.append(invalid)
            invalid_ids = [str(i) for i in invalid["id"].tolist() if i is not None and not pd.isna(i)]
            self.ledger.seen(spec.name, invalid_ids, self.partition_key)
        work = [
            Item(source_id=str(row["id"]), key=str(row["id"]), body=spec.body(row, self.partition_key), row=row)
            for row in valid[batch.ITEM].tolist()
        ]
        self.items.extend(work)
        return work

    @property
    def invalid(self) -> pd.DataFrame:
        """Every invalid item read (``id``, ``reason``)."""
        import pandas as pd

        if not self._invalid:
            return pd.DataFrame({"id": pd.Series(dtype=object), "reason": pd.Series(dtype=object)})
        return pd.concat(self._invalid, ignore_index=True)

    def log_invalid(self, log: Callable[[str], None]) -> None:
        invalid = self.invalid
        if len(invalid):
            log(f"{self.spec.name}: {len(invalid)} invalid item(s) not sent: " + "; ".join(
                f"{row['id']}: {row['reason']}" for row in invalid.head(LOGGED_INVALID).to_dict("records")))
