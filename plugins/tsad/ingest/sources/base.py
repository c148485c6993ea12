"""The source kinds: one class each, chosen by the config's ``source.kind``.

A kind is a subclass of :class:`Source` with a ``kind`` name. Defining the class registers it
(``__init_subclass__``); the config checks a group's source through it (``check_source``, at load
time) and extract reads through it (``source_for``). Adding a kind is one new module in this
package (the package imports every module it holds) and its tests; nothing else is edited.

Modules of this package import nothing heavy at import time (pandas, pyarrow, SQLAlchemy and the
drivers load inside ``read``): the config imports them to check a source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from tsad.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pyarrow as pa

    from tsad.config.schema import GroupConfig, SourceConfig

MISSING_TEXT = ("", "nan", "na", "n/a", "null", "none")  # empty readings, not bad ones


#: what a CSV reader takes for an empty reading: pandas' ``read_csv`` defaults, kept so a day
#: reads the same whichever reader parses it
CSV_NULLS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


class ReadWholeDay(Exception):  # noqa: N818 - a signal, not an error a user sees
    """Raised while streaming when the day must be read again in one piece: naive local stamps
    in a DST fold (resolved from the order of all rows), or a file the streaming reader refuses
    (a CSV with ragged rows, read as before by pandas)."""


@dataclass(frozen=True)
class RawRows:
    """Rows as read from the source, before any cleaning: Arrow record batches, in the order the
    source sent them, read once. ``where`` names the table or file; ``columns`` are the batches'
    column names (spaces trimmed)."""

    batches: Iterable[pa.RecordBatch]
    where: str
    columns: list[str]
    found_channels: list[str] | None = None  # wide SQL: channel columns the table has
    decimal_comma: bool = False  # ';' csv exports often write 12,5
    typed: bool = True  # the source declares column types (SQL, Parquet), unlike csv text
    null_text: str = "None"  # what a null sensor name reads as (pandas: None, or 'nan' in csv)
    float32_as_text: bool = False  # float4 readings as their decimal text, as DB-API drivers do


_KINDS: dict[str, type[Source]] = {}


class Source:
    """One group's source: ``check`` validates its config, ``read`` returns one day's raw rows.

    Subclasses set ``kind`` (the config's name for them). Nothing is cleaned here (that is
    :mod:`tsad.ingest.extract`); a source only finds the day's rows and says plainly what is
    wrong with a source that is missing, unreadable or mis-shaped. A source that is down right
    now raises :class:`tsad.retry.TransientSourceError`, which the pipeline retries."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    def __init__(self, group: GroupConfig, source_url: str | None = None) -> None:
        self.group = group
        self.config = group.source
        self.source_url = source_url  # the Airflow layer's resolved connection, if any

    @classmethod
    def check(cls, src: SourceConfig) -> None:
        """Config-time checks of the keys this kind needs: a ValueError saying what is wrong."""

    def read(self, day: date, start: datetime, end: datetime, whole: bool = False) -> RawRows:
        """The rows of site-local ``day`` (``start`` to ``end``, UTC), streamed in record batches
        (``whole``: in one batch, see :class:`ReadWholeDay`); may hold rows of other days, which
        extract drops and counts (``rows_outside_day``)."""
        raise NotImplementedError


def source_kinds() -> list[str]:
    """The registered kind names, sorted."""
    return sorted(_KINDS)


def source_class(kind: str) -> type[Source]:
    """The class registered under ``kind``; a ValueError lists the known names."""
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"'kind' must be one of {source_kinds()}, got {kind!r}") from None


def check_source(src: SourceConfig) -> None:
    """The config's check of a source: its kind exists and has what that kind needs."""
    source_class(src.kind).check(src)


def source_for(group: GroupConfig, source_url: str | None = None) -> Source:
    """The reader of ``group``'s source (``source_url``: the URL behind an Airflow conn_id)."""
    return source_class(group.source.kind)(group, source_url)


def needed_columns(src: SourceConfig) -> list[str]:
    """The columns every row must have: the timestamp, plus sensor and value for long rows."""
    extra = (src.sensor_column, src.value_column) if src.layout == "long" else ()
    return [src.timestamp_column, *extra]


def require_unique_columns(names: list[str], where: str) -> None:
    """A column named twice (``a,a``, or ``a, a`` once spaces are trimmed) is refused by name:
    which of the two holds the channel cannot be told."""
    seen: dict[str, int] = {}
    for position, raw in enumerate(names, start=1):
        name = str(raw).strip()
        if name in seen:
            raise DataError(
                f"{where} has the column {name!r} twice (columns {seen[name]} and {position} of "
                "its header, spaces trimmed); rename or drop one of them in the export")
        seen[name] = position


def require_columns(present: list[str], needed: list[str], where: str, group: GroupConfig) -> None:
    for column in needed:
        if column not in present:
            raise DataError(
                f"column {column!r} not found in {where} (group {group.name!r}); it has "
                f"{present}; fix the source or the group's timestamp/sensor/value_column"
            )

