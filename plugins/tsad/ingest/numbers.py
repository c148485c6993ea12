"""Readings -> float64, under the group's quality policy for text, NaN and inf, batch by batch.

Number columns convert in Arrow. Text (csv, or a typed column that now holds text) is trimmed;
empty-reading words (``MISSING_TEXT``) are missing, not bad; the rest parses in Arrow, and a
batch Arrow's parser declines goes through pandas' ``to_numeric`` as before, which also tells the
bad values apart. What was made missing is counted; under an ``error`` policy the first offending
value of each column (in row order) is kept and raised once the whole day has been read, in the
order the checks always ran (a column's text before its NaN and inf; columns in config order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsad.errors import DataError
from tsad.ingest.sources.base import MISSING_TEXT

_MISSING = pa.array(list(MISSING_TEXT), pa.string())


@dataclass
class Column:
    """What one reading column has shown so far."""

    text: bool = False  # a typed source sent text (or booleans) in it, with a value in the day
    first_bad: tuple[Any, int] | None = None  # (value, stamp in us) of the first text reading
    first_non_finite: tuple[float, int] | None = None  # of the first NaN or inf reading


@dataclass
class Readings:
    """The conversion of a source's reading columns, with its counts and first offenders."""

    typed: bool
    decimal_comma: bool
    float32_as_text: bool
    non_numeric: str
    non_finite: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("nan_values", "inf_values", "non_numeric_values"), 0))
    columns: dict[str, Column] = field(default_factory=dict)

    def floats(self, values: pa.Array, column: str, stamps: np.ndarray) -> np.ndarray:
        """``values`` (one batch of the day's rows, ``stamps`` aligned) as float64, NaN missing."""
        seen = self.columns.setdefault(column, Column())
        kind = values.type
        if isinstance(kind, pa.ExtensionType):  # e.g. PostgreSQL numeric: text underneath
            values, kind = values.storage, kind.storage_type
        if pa.types.is_dictionary(kind):
            values, kind = values.dictionary_decode(), kind.value_type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            if self.float32_as_text and pa.types.is_float32(kind):
                values = pc.cast(values, pa.string())  # float4 as the driver's decimal text
            number = pc.cast(values, pa.float64()).fill_null(np.nan).to_numpy(
                zero_copy_only=False, writable=True)
            return self._non_finite(number, seen, stamps, None)
        if self.typed and values.null_count < len(values):
            seen.text = True
        number, bad = self._parse(values)
        if bad is not None and bad.any():
            first = int(np.flatnonzero(bad)[0])
            if seen.first_bad is None:
                seen.first_bad = (values[first].as_py(), int(stamps[first]))
            self.counts["non_numeric_values"] += int(bad.sum())
            number[bad] = np.nan
        return self._non_finite(number, seen, stamps, bad)

    def _parse(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
        """Floats and which values were bad text (None: none were)."""
        text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
        text = pc.utf8_trim_whitespace(text)
        empty = pc.is_in(pc.utf8_lower(text), value_set=_MISSING).fill_null(False)
        candidate = pc.if_else(empty, pa.scalar(None, pa.string()), text)
        if self.decimal_comma:
            candidate = pc.replace_substring(candidate, ",", ".")
        try:
            parsed = pc.cast(candidate, pa.float64())
        except pa.ArrowInvalid:
            return self._pandas(text)
        return parsed.fill_null(np.nan).to_numpy(zero_copy_only=False, writable=True), None

    def _pandas(self, text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        series = pd.Series(text.to_pylist(), dtype="string")
        parsed = pd.to_numeric(series, errors="coerce")
        if self.decimal_comma:
            parsed = parsed.fillna(
                pd.to_numeric(series.str.replace(",", ".", regex=False), errors="coerce"))
        bad = (parsed.isna() & series.notna() & ~series.str.lower().isin(MISSING_TEXT))
        bad_mask = bad.to_numpy(dtype=bool, na_value=False)
        return parsed.to_numpy(dtype="float64", na_value=np.nan, copy=True), bad_mask

    def _non_finite(self, number: np.ndarray, seen: Column, stamps: np.ndarray,
                    exempt: np.ndarray | None) -> np.ndarray:
        """NaN and inf readings (not ``exempt``: text already counted) -> missing, counted."""
        nan, inf = np.isnan(number), np.isinf(number)
        if exempt is not None:
            nan &= ~exempt
        either = nan | inf
        if seen.first_non_finite is None and either.any():
            first = int(np.flatnonzero(either)[0])
            seen.first_non_finite = (float(number[first]), int(stamps[first]))
        self.counts["nan_values"] += int(nan.sum())
        self.counts["inf_values"] += int(inf.sum())
        number[inf] = np.nan
        return number

    def raise_first(self, columns: list[str], where: str, group: str) -> None:
        """The error the policy asks for, for the first column (in ``columns`` order) that has
        one: its text first, then its NaN or inf readings."""
        for column in columns:
            seen = self.columns.get(column)
            if seen is None:
                continue
            if seen.first_bad is not None and self.non_numeric == "error":
                value, stamp = seen.first_bad
                raise DataError(
                    f"column {column!r} in {where} has a non-numeric value {value!r} at "
                    f"{show(stamp)} (group {group!r}); fix the source, drop the channel, or set "
                    "quality.non_numeric: missing")
            if seen.first_non_finite is not None and self.non_finite == "error":
                number, stamp = seen.first_non_finite
                raise DataError(
                    f"column {column!r} in {where} has a missing or infinite reading ({number}) "
                    f"at {show(stamp)} (group {group!r}); fix the source or set "
                    "quality.non_finite: missing")

    def retyped(self) -> int:
        """How many typed columns held text (``retyped_columns``)."""
        return sum(c.text for c in self.columns.values())


def show(stamp_us: int) -> str:
    return pd.Timestamp(stamp_us, unit="us", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
