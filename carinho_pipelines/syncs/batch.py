"""pandas helpers for a sync's batch: frame, validate, dedupe, preview.

A feed is a list of JSON objects; the frame keeps each item's original object in the
``_item`` column so writes send exactly what the source said (no float/NaN drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from carinho_pipelines.kernel.privacy import mask_payload

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported where a batch is framed, not with this module: every process that
# loads the code location (the code server, each warm run worker) would otherwise carry
# ~60 MB of pandas + numpy that only sync runs use.

ITEM = "_item"
#: rows shown in a materialization's preview
PREVIEW_ROWS = 20


def to_frame(items: Iterable[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """One row per item with at least ``columns`` (missing fields are null)."""
    import pandas as pd

    rows = [item if isinstance(item, dict) else {"id": None} for item in items]
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    frame[ITEM] = pd.Series(rows, index=frame.index, dtype=object)
    return frame


def _blank(series: pd.Series) -> pd.Series:
    """Null, empty string, or an empty list/dict."""
    as_object = series.astype(object)
    empty = as_object.map(lambda v: (isinstance(v, str) and not v.strip()) or (isinstance(v, (list, dict)) and not v))
    return series.isna() | empty.astype(bool)


def validate(
    frame: pd.DataFrame, required: Sequence[str], numeric: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid, invalid)``; ``invalid`` has a ``reason`` naming the fields at fault."""
    import pandas as pd

    reasons = pd.Series("", index=frame.index, dtype=object)
    for column in required:
        missing = _blank(frame[column])
        reasons = reasons.where(~missing, reasons + f"{column} missing; ")
    for column in numeric:
        values = frame[column]
        present = ~values.isna()
        bad = present & pd.to_numeric(values.astype(object), errors="coerce").isna()
        reasons = reasons.where(~bad, reasons + f"{column} not a number; ")
    is_invalid = reasons != ""
    invalid = frame.loc[is_invalid].copy()
    invalid["reason"] = reasons[is_invalid].str.rstrip("; ")
    return frame.loc[~is_invalid].copy(), invalid


def dedupe(frame: pd.DataFrame, key: str = "id") -> tuple[pd.DataFrame, int]:
    """Drop repeated items (a page boundary shifting while we read); keeps the first."""
    ids = frame[key].astype(str)
    duplicated = ids.duplicated(keep="first")
    return frame.loc[~duplicated].copy(), int(duplicated.sum())


def preview(rows: Sequence[dict[str, Any]], columns: Sequence[str], limit: int = PREVIEW_ROWS) -> MetadataValue:
    """A table of what was written, personal data masked (LGPD)."""
    shown = []
    for row in list(rows)[:limit]:
        masked = mask_payload({c: row.get(c) for c in columns})
        shown.append(TableRecord({c: _cell(masked.get(c)) for c in columns}))
    schema = TableSchema(columns=[TableColumn(c, "string") for c in columns])
    return MetadataValue.table(shown, schema=schema)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
