"""Source kinds: one class each, chosen by ``source.kind``; a new kind is one class and nothing else.

The path docs/architecture.md gives for "add a source kind" is followed here for real: a
throwaway kind is defined in the test, a config names it, and a day is extracted through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tsad.config import GroupConfig, from_dict
from tsad.errors import ConfigError, SourceError
from tsad.ingest import extract_day, read_partition, source_for
from tsad.ingest.sources import RawRows, Source, base, source_kinds

DAY = date(2024, 1, 2)


@pytest.fixture
def registry() -> Iterator[None]:
    """The kinds registered by a test are forgotten after it."""
    before = dict(base._KINDS)
    yield
    base._KINDS.clear()
    base._KINDS.update(before)


def group(source: dict[str, Any], channels: tuple[str, ...] = ("a", "b")) -> GroupConfig:
    return from_dict(GroupConfig, {"name": "g", "channels": list(channels), "source": source},
                     "group")


def test_the_built_in_kinds_are_registered_by_name() -> None:
    assert source_kinds() == ["files", "sql"]
    sql = group({"kind": "sql", "url": "sqlite:///x.db", "table": "t"})
    files = group({"kind": "files", "path": "/drop/{date}.csv"})
    assert type(source_for(sql)).__name__ == "SqlSource"
    assert type(source_for(files)).__name__ == "FileSource"


def test_each_kind_checks_its_own_keys() -> None:
    with pytest.raises(ConfigError, match=r"group.source: 'kind' must be one of \['files', 'sql'\]"
                                          r", got 'sqll'"):
        group({"kind": "sqll", "url": "sqlite:///x.db", "table": "t"})
    with pytest.raises(ConfigError, match="a 'sql' source needs exactly one of 'url' or 'conn_id'"):
        group({"kind": "sql", "table": "t"})
    with pytest.raises(ConfigError, match="a 'sql' source needs 'table'"):
        group({"kind": "sql", "url": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match="a 'files' source needs 'path' containing '{date}'"):
        group({"kind": "files", "path": "/drop/day.csv"})


def test_a_new_kind_is_one_class(registry: None, tmp_path: Path) -> None:
    """A throwaway kind reading JSON lines: defined here, named by a config, extracted through."""

    class JsonLinesSource(Source):
        kind = "jsonl"

        @classmethod
        def check(cls, src: Any) -> None:
            if src.path is None or "{date}" not in src.path:
                raise ValueError("a 'jsonl' source needs 'path' containing '{date}'")

        def read(self, day: date, start: datetime, end: datetime,
                 whole: bool = False) -> RawRows:
            import pyarrow.json

            assert self.config.path is not None
            path = Path(self.config.path.format(date=day.isoformat()))
            if not path.is_file():
                raise SourceError(f"no file {path}")
            table = pyarrow.json.read_json(path)
            return RawRows(table.to_batches(), f"file {path}", table.column_names)

    assert "jsonl" in source_kinds()
    with pytest.raises(ConfigError, match="a 'jsonl' source needs 'path'"):
        group({"kind": "jsonl", "path": str(tmp_path / "day.jsonl")})
    lines = [json.dumps({"timestamp": f"2024-01-02T00:{m:02d}:00Z", "sensor": s, "value": m + k})
             for m in range(60) for k, s in enumerate(("a", "b"))]
    (tmp_path / "2024-01-02.jsonl").write_text("\n".join(lines) + "\n")
    g = group({"kind": "jsonl", "path": str(tmp_path / "{date}.jsonl")})
    result = extract_day(g, DAY, "UTC", tmp_path / "data")
    assert result.quality["rows_read"] == 120 and result.rows == 1440
    frame = read_partition(tmp_path / "data", "g", DAY, ["a", "b"])
    np.testing.assert_array_equal(frame["b"].to_numpy()[:60], np.arange(60) + 1.0)
    assert frame["a"].iloc[60:].isna().all()  # the rest of the day is a gap, as for any kind
