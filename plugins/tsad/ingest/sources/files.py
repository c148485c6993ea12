"""``kind: files``: the day's dropped file, csv (',' or ';', sniffed from the header) or parquet.

``path`` is a pattern with ``{date}`` (YYYY-MM-DD) and optionally ``{group}``. Both formats are
streamed through pyarrow in record batches: Parquet by row group, CSV by block with every column
read as text (extract parses numbers and stamps under the quality policy, as for any source). A
CSV that pyarrow's reader refuses (rows with fewer fields than the header) is read whole by pandas,
as before. A missing, corrupt, truncated or oddly delimited file is a
:class:`tsad.errors.SourceError` naming it; a column written twice is a ``DataError``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsad.errors import SourceError
from tsad.ingest.sources.base import (CSV_NULLS, RawRows, ReadWholeDay, Source,
                                      require_unique_columns)

if TYPE_CHECKING:
    import pyarrow as pa

    from tsad.config.schema import SourceConfig

_DELIMITERS = (",", ";", "\t", "|")
BLOCK_BYTES = 16 << 20  # CSV text parsed per batch
PARQUET_ROWS = 1 << 20  # Parquet rows per batch


class FileSource(Source):
    """One file per day (and group) dropped by the source system."""

    kind = "files"

    @classmethod
    def check(cls, src: SourceConfig) -> None:
        if src.path is None or "{date}" not in src.path:
            raise ValueError("a 'files' source needs 'path' containing '{date}'")

    def path(self, day: date) -> Path:
        assert self.config.path is not None
        return Path(self.config.path.format(date=day.isoformat(), group=self.group.name))

    def read(self, day: date, start: datetime, end: datetime, whole: bool = False) -> RawRows:
        src, group = self.config, self.group
        path = self.path(day)
        if not path.is_file():
            raise SourceError(
                f"no source file for group {group.name!r} on {day.isoformat()}: {path} "
                "does not exist; check 'path' in the config or that the day's file was delivered"
            )
        where = f"file {path}"
        about = f"(group {group.name!r}, {day.isoformat()})"
        with self._errors(where, about):
            if src.format == "parquet":
                names, batches = _parquet(path, whole)
                return RawRows(self._guarded(batches, where, about), where, names)
            sep, header = check_csv(path, f"source file {path} {about}")
            raw_names = next(csv.reader([header], delimiter=sep), [])
            require_unique_columns(raw_names, where)  # pandas would rename a second 'a' to 'a.1'
            batches = _csv_pandas(path, sep) if whole else _csv_arrow(path, sep, raw_names)
            return RawRows(self._guarded(batches, where, about), where,
                           [n.strip() for n in raw_names], decimal_comma=sep == ";", typed=False,
                           null_text="nan")

    def _guarded(self, batches: Iterator[pa.RecordBatch], where: str,
                 about: str) -> Iterator[pa.RecordBatch]:
        """The batches, with reading errors met while streaming said as at opening."""
        with self._errors(where, about):
            yield from batches

    def _errors(self, where: str, about: str) -> Any:
        return _FileErrors(where, about, self.config.format)


class _FileErrors:
    """Reading errors -> SourceError naming the file (TransientSourceError when it may pass)."""

    def __init__(self, where: str, about: str, fmt: str) -> None:
        self.where, self.about, self.format = where, about, fmt

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        import pandas as pd
        import pyarrow as pa

        from tsad.retry import TransientSourceError, is_transient

        if exc is None or isinstance(exc, (SourceError, ReadWholeDay)):
            return False
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
            message = f"cannot read source {self.where} {self.about}: {exc}"
            if is_transient(exc):
                raise TransientSourceError(message) from None
            raise SourceError(f"{message}; check the file and its permissions") from None
        if isinstance(exc, (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError,
                            UnicodeDecodeError, ValueError)):
            raise SourceError(
                f"cannot read source {self.where} {self.about}: {type(exc).__name__}: {exc}; "
                f"the file is corrupt or not {self.format}") from None
        return False


def _parquet(path: Path, whole: bool) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """The file's columns (pandas' stored index columns left out, as pandas reads them) and its
    batches, row group by row group."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    schema = handle.schema_arrow
    index = [c for c in (schema.pandas_metadata or {}).get("index_columns", [])
             if isinstance(c, str)]
    columns = [n for n in schema.names if n not in index]
    require_unique_columns(columns, f"file {path}")
    names = [n.strip() for n in columns]

    def batches() -> Iterator[pa.RecordBatch]:
        if whole:
            table = handle.read(columns=columns).combine_chunks()
            yield from (b.rename_columns(names) for b in table.to_batches() or [])
            return
        for batch in handle.iter_batches(batch_size=PARQUET_ROWS, columns=columns):
            yield batch.rename_columns(names)

    return names, batches()


def _csv_arrow(path: Path, sep: str, raw_names: list[str]) -> Iterator[pa.RecordBatch]:
    """Block by block, every column as text with pandas' empty-reading markers as nulls."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [n.strip() for n in raw_names]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in raw_names}, null_values=list(CSV_NULLS),
                strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
        for batch in reader:
            yield batch.rename_columns(names)
    except pa.ArrowInvalid as exc:
        if "Expected" in str(exc) and "columns" in str(exc):
            raise ReadWholeDay() from None  # ragged rows: pandas pads them, as it always did
        raise


def _csv_pandas(path: Path, sep: str) -> Iterator[pa.RecordBatch]:
    """The whole file through pandas (text columns), as tsad read csv before pyarrow."""
    import pandas as pd
    import pyarrow as pa

    frame = pd.read_csv(path, sep=sep, dtype=str, encoding="utf-8-sig")
    names = [str(c).strip() for c in frame.columns]
    arrays = [pa.array(frame[c].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
              for c in frame.columns]
    yield pa.RecordBatch.from_arrays(arrays, names=names)


def check_csv(path: Path, where: str) -> tuple[str, str]:
    """The file's delimiter (',' or ';', from the header) and its header line, after checking that
    the data rows use the same delimiter and that the file was not cut off in its last line."""
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        tail = handle.read()
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if not lines:
        raise SourceError(f"{where} is empty (not even a header line); the file is corrupt or "
                          "not csv: re-deliver it")
    header = lines[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    sep = max(_DELIMITERS, key=lambda d: counts[d])
    if counts[sep] == 0:
        sep = ","
    elif sep not in (",", ";"):
        raise SourceError(
            f"{where} is delimited by {sep!r} (header {header[:80]!r}); tsad reads ',' or ';' "
            "csv: export with ',' or use format: parquet")
    if len(lines) > 1 and lines[1].strip():
        row = lines[1]
        if row.count(sep) == 0 and counts[sep] > 0:
            other = max(_DELIMITERS, key=lambda d: row.count(d))
            if row.count(other) > 0 and other != sep:
                raise SourceError(
                    f"{where}: the header is delimited by {sep!r} but line 2 by {other!r}; "
                    "the export mixes delimiters: re-export the file with one delimiter")
    if size and not tail.endswith(b"\n"):
        last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
        if last.count(sep) < counts[sep]:
            raise SourceError(
                f"{where} looks truncated: its last line {last[:60]!r} stops after "
                f"{last.count(sep) + 1} of {counts[sep] + 1} fields with no newline; re-deliver "
                "the complete file (the day is not extracted from a partial file)")
    return sep, header
