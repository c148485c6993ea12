"""``kind: files``: the day's dropped file, csv (',' or ';', sniffed from the header) or parquet.

``path`` is a pattern with ``{date}`` (YYYY-MM-DD) and optionally ``{group}``. A missing,
corrupt, truncated or oddly delimited file is a :class:`tsad.errors.SourceError` naming it.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tsad.errors import SourceError
from tsad.ingest.sources.base import RawRows, Source, require_unique_columns

if TYPE_CHECKING:
    from tsad.config.schema import SourceConfig

_DELIMITERS = (",", ";", "\t", "|")


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

    def read(self, day: date, start: datetime, end: datetime) -> RawRows:
        import pandas as pd

        from tsad.retry import TransientSourceError, is_transient

        src, group = self.config, self.group
        path = self.path(day)
        if not path.is_file():
            raise SourceError(
                f"no source file for group {group.name!r} on {day.isoformat()}: {path} "
                "does not exist; check 'path' in the config or that the day's file was delivered"
            )
        where = f"file {path}"
        sep = ","
        try:
            if src.format == "parquet":
                frame = pd.read_parquet(path)
            else:
                sep, header = check_csv(path, f"source file {path} (group {group.name!r}, "
                                              f"{day.isoformat()})")
                # pandas would rename a second 'a' to 'a.1': the header is checked as written
                require_unique_columns(next(csv.reader([header], delimiter=sep), []), where)
                frame = pd.read_csv(path, sep=sep, dtype=str, encoding="utf-8-sig")
        except OSError as exc:
            message = f"cannot read source {where} (group {group.name!r}, {day.isoformat()}): {exc}"
            if is_transient(exc):
                raise TransientSourceError(message) from None
            raise SourceError(f"{message}; check the file and its permissions") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                ValueError) as exc:
            raise SourceError(
                f"cannot read source {where} (group {group.name!r}, {day.isoformat()}): "
                f"{type(exc).__name__}: {exc}; the file is corrupt or not {src.format}"
            ) from None
        require_unique_columns(list(frame.columns), where)
        frame.columns = [str(c).strip() for c in frame.columns]
        return RawRows(frame, where, decimal_comma=src.format == "csv" and sep == ";",
                       typed=src.format != "csv")


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
        return ",", ""
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
