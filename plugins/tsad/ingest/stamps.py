"""Source time stamps -> UTC microseconds (int64, ``NAT`` for none), batch by batch.

Typed stamps (timestamptz, timestamp, Parquet timestamps) convert in Arrow; ISO 8601 text is
parsed by Arrow's parser, and by pandas where Arrow's stricter parser declines a batch (the
error for text that is no date-time comes from there). Naive stamps are local to
``source.timestamps_timezone``. Across a DST fold a naive local time is ambiguous and only the
order of all rows tells which pass it belongs to, so streaming stops (:class:`ReadWholeDay`)
and the day is read again in one piece, resolved as one series (per sensor for long rows).
Stamps with an offset and without one in one column are refused: the naive ones would be read
as UTC next to the zoned ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tsad.errors import DataError
from tsad.ingest.sources.base import ReadWholeDay

NAT = np.iinfo(np.int64).min  # numpy's NaT as int64
#: an ISO 8601 date-time that carries its offset ('Z', '+01:00', '-0500', '+01')
ZONED = r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_NAIVE_US, _UTC_US = pa.timestamp("us"), pa.timestamp("us", tz="UTC")


class Stamps:
    """One timestamp column's parser; remembers the first stamp of each kind (zoned, naive)."""

    def __init__(self, tz: str, column: str, where: str) -> None:
        self.tz, self.column, self.where = tz, column, where
        self.examples: dict[bool, str] = {}  # zoned? -> the first such text stamp seen

    def to_utc(self, values: pa.Array, keys: np.ndarray | None = None,
               whole: bool = False) -> tuple[np.ndarray, int]:
        """UTC microseconds (``NAT`` for no stamp) and how many stamps were dropped as ambiguous
        or nonexistent local times. ``whole``: ``values`` is the whole day, and a DST fold is
        resolved from row order (per ``keys``, the sensors of long rows, where that fails)."""
        naive, zoned = self._parse(values)
        if zoned:
            return naive, 0
        if self.tz == "UTC":
            return naive, 0
        local = pd.Series(naive.view("M8[us]"))
        if whole:
            utc = _localize(local, self.tz, keys)
        else:
            try:
                utc = local.dt.tz_localize(self.tz, ambiguous="raise", nonexistent="NaT")
            except ValueError:  # a local time in the DST fold: row order decides
                raise ReadWholeDay() from None
        ambiguous = int((utc.isna() & local.notna()).sum())
        out = utc.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us")
        return out.to_numpy().view(np.int64), ambiguous

    def _parse(self, values: pa.Array) -> tuple[np.ndarray, bool]:
        """Microseconds (UTC when zoned, else naive local) and whether they were zoned."""
        kind = values.type
        if isinstance(kind, pa.ExtensionType):  # e.g. PostgreSQL numeric: text underneath
            values, kind = values.storage, kind.storage_type
        if pa.types.is_dictionary(kind):
            values, kind = values.dictionary_decode(), kind.value_type
        if pa.types.is_timestamp(kind):
            zoned = kind.tz is not None
            return _micros(pc.cast(values, _UTC_US if zoned else _NAIVE_US, safe=False)), zoned
        if pa.types.is_date(kind):
            return _micros(pc.cast(values, _NAIVE_US)), False
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            for target, zoned in ((_NAIVE_US, False), (_UTC_US, True)):
                try:
                    parsed = pc.cast(values, target)
                except pa.ArrowInvalid:
                    continue
                self._seen(values, zoned)
                return _micros(parsed), zoned
        return self._pandas(values)

    def _seen(self, values: pa.Array, zoned: bool) -> None:
        if zoned not in self.examples:
            valid = values.drop_null()
            if len(valid):
                self.examples[zoned] = str(valid[0].as_py()).strip()
        if len(self.examples) == 2:
            raise self._mixed(self.examples[True], self.examples[False])

    def _mixed(self, zoned: str, naive: str) -> DataError:
        return DataError(
            f"timestamp column {self.column!r} in {self.where} mixes time stamps with a UTC "
            f"offset ({zoned!r}) and without one ({naive!r}); export them all with an offset, "
            "or all without one (read in source.timestamps_timezone)")

    def _pandas(self, values: pa.Array) -> tuple[np.ndarray, bool]:
        """What Arrow's parser declines: pandas' ISO 8601 parser, as tsad always read text."""
        series = pd.Series(values.to_pylist(), dtype=object)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            text = series[series.notna()].astype(str).str.strip()
            zoned = text.str.contains(ZONED, regex=True).to_numpy()
            if zoned.any() and not zoned.all():
                raise self._mixed(text[zoned].iloc[0], text[~zoned].iloc[0])
            self._seen(values, bool(zoned.any()))
        try:
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):  # mixed UTC offsets (e.g. across a DST change)
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        bad = parsed.isna() & series.notna()
        if bad.any():
            raise DataError(
                f"timestamp column {self.column!r} in {self.where} has a value that is not an "
                f"ISO 8601 date-time: {series[bad].iloc[0]!r}; fix the source export"
            )
        zoned = parsed.dt.tz is not None
        if zoned:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.dt.as_unit("us").to_numpy().view(np.int64), zoned


def _micros(values: pa.Array) -> np.ndarray:
    """Arrow timestamps[us] -> int64, nulls as ``NAT``."""
    return values.cast(pa.int64()).fill_null(NAT).to_numpy(zero_copy_only=False)


def _localize(naive: pd.Series, tz: str, keys: np.ndarray | None) -> pd.Series:
    """Attach ``tz``; a DST fold is resolved from row order (per sensor for long rows)."""
    try:
        return naive.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except ValueError:
        pass
    if keys is not None:
        try:
            return naive.groupby(keys, sort=False).transform(
                lambda s: s.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
            )
        except ValueError:
            pass
    return naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
