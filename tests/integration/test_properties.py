"""Property: extract + windowing + scoring on random, messy day files never crash with anything but
tsad's documented errors, and never produce a record outside the partition's day.

Hypothesis draws the site time zone (DST days included), the layout and format, timestamps (in
and around the day, shuffled, duplicated, naive local or UTC, missing), channels present or not,
and readings (NaN, inf, huge, text). Whatever extract accepts goes through a real (tiny) detector,
events and the record types the pipeline writes.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tsad.detection import day_records
from tsad.config import GroupConfig, from_dict
from tsad.dates import day_bounds
from tsad.model.detector import Detector
from tsad.errors import DataError, SourceError
from tsad.detection.events import find_events, flagged_points
from tsad.ingest.extract import extract_day
from tsad.ingest.partitions import read_partition

STEP = 600
CHANNELS = ["a", "b"]
DAYS = [date(2024, 1, 2), date(2024, 3, 10), date(2024, 3, 31), date(2024, 10, 27),
        date(2024, 11, 3)]  # plain, New York and Berlin spring-forward and fall-back days
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
DOCUMENTED = (DataError, SourceError)  # everything else is a bug


def group_config(source: dict, quality: dict | None = None) -> GroupConfig:
    return from_dict(GroupConfig, {
        "name": "g", "channels": CHANNELS, "sampling_seconds": STEP,
        "window": {"length": 6, "stride": 3},
        "model": {"kind": "dense", "hidden": 8, "latent": 2, "epochs": 2},
        "events": {"min_points": 1, "merge_gap": 1, "top_channels": 2},
        "quality": quality or {},
        "source": source}, "group")


@pytest.fixture(scope="module")
def detector() -> Detector:
    """A tiny detector fitted on three smooth days (2 epochs: its quality does not matter)."""
    index = pd.date_range("2023-12-01", periods=3 * 144, freq=f"{STEP}s", tz="UTC")
    t = np.arange(len(index))
    frame = pd.DataFrame({"a": np.sin(t / 20.0), "b": np.cos(t / 30.0)}, index=index)
    return Detector.fit(group_config({"kind": "files", "path": "{date}.csv"}), frame)


readings = st.one_of(
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from(["", "nan", "inf", "-inf", "NULL"]),
    st.sampled_from(["x", "1,5", "12.5 bar"]),
)


@st.composite
def day_files(draw: st.DrawFn) -> dict:
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.sampled_from(DAYS))
    layout = draw(st.sampled_from(["wide", "long"]))
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    n = draw(st.integers(0, 200))
    offsets = draw(st.lists(st.integers(-3 * 3600, 27 * 3600), min_size=n, max_size=n))
    regular = draw(st.booleans())
    if regular:  # mostly on the grid, as real exports are, with a few stray rows
        offsets = [o - o % STEP for o in offsets]
    naive = draw(st.booleans())
    present = draw(st.sampled_from([CHANNELS, CHANNELS, CHANNELS + ["z"], ["b", "a"], ["a"]]))
    quality = {"duplicates": draw(st.sampled_from(["mean", "first", "last", "error"])),
               "non_numeric": draw(st.sampled_from(["missing"] * 3 + ["error"])),
               "non_finite": draw(st.sampled_from(["missing"] * 3 + ["error"])),
               "max_fill_steps": draw(st.integers(0, 8))}
    values = {c: draw(st.lists(readings, min_size=n, max_size=n)) for c in present}
    missing_ts = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)) if n else []
    return {"zone": zone, "day": day, "layout": layout, "format": fmt, "offsets": offsets,
            "naive": naive, "values": values, "missing_ts": missing_ts, "quality": quality}


def write_source(spec: dict, folder: Path) -> GroupConfig:
    start = pd.Timestamp(day_bounds(spec["day"], spec["zone"])[0])
    stamps = pd.DatetimeIndex([start + pd.Timedelta(seconds=o) for o in spec["offsets"]],
                              dtype="datetime64[ns, UTC]")
    if spec["naive"]:  # local wall-clock time without an offset, as many historians export
        text = stamps.tz_convert(spec["zone"]).tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
    ts = pd.Series(list(text), dtype=object)
    ts.iloc[[i for i in spec["missing_ts"] if i < len(ts)]] = None
    columns = {c: pd.Series(v, dtype=object) for c, v in spec["values"].items()}
    if spec["layout"] == "wide":
        frame = pd.DataFrame({"timestamp": ts, **columns})
    else:
        frame = pd.DataFrame({"timestamp": pd.concat([ts] * len(columns), ignore_index=True),
                              "sensor": np.repeat(list(columns), len(ts)),
                              "value": pd.concat(list(columns.values()), ignore_index=True)})
    path = folder / f"{spec['day'].isoformat()}.{spec['format']}"
    if spec["format"] == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.astype(str).where(frame.notna(), None).to_parquet(path)
    return group_config({"kind": "files", "layout": spec["layout"], "format": spec["format"],
                         "path": str(folder / ("{date}." + spec["format"])),
                         "timestamps_timezone": spec["zone"] if spec["naive"] else "UTC"},
                        spec["quality"])


# A reading near 1e308 overflows once scaled (float32): its windows are then skipped like gaps.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(spec=day_files())
def test_random_days_give_documented_errors_or_records_inside_the_day(
        detector: Detector, spec: dict) -> None:
    day, zone = spec["day"], spec["zone"]
    lo, hi = (pd.Timestamp(b) for b in day_bounds(day, zone))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        group = write_source(spec, folder)
        try:
            result = extract_day(group, day, zone, folder / "data")
        except DOCUMENTED as exc:
            assert str(exc), "an error must say what is wrong"
            return
        frame = read_partition(folder / "data", "g", day, CHANNELS)

    expected = int((hi - lo) / pd.Timedelta(seconds=STEP))
    assert len(frame) == result.rows == expected == result.quality["grid_points"]
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index[0] == lo and frame.index[-1] < hi
    assert not np.isinf(frame.to_numpy()).any()  # inf never reaches a partition

    scores = detector.score(frame)
    assert scores.point_scores.shape == (expected, len(CHANNELS))
    assert (scores.window_starts + group.window.length <= expected).all()
    finite = scores.aggregate[np.isfinite(scores.aggregate)]
    if finite.size == 0:
        return
    threshold = float(np.quantile(finite, 0.5)) or 1e-9  # flag half: plenty of events to check
    events = find_events(scores.timestamps, scores.aggregate, scores.point_scores, CHANNELS,
                         threshold, group.events)
    points = day_records._point_records(scores, flagged_points(scores.aggregate, threshold,
                                                            group.events),
                                     CHANNELS, threshold, group, day, "g/v0001")
    records = [day_records._event_record(e, "g", day, "g/v0001") for e in events]
    for record in records:
        assert record.partition_date == day
        for moment in (record.start_ts, record.end_ts, record.peak_ts):
            assert lo <= pd.Timestamp(moment) < hi
    for point in points:
        assert point.partition_date == day and lo <= pd.Timestamp(point.ts) < hi
        assert np.isfinite(point.score) and point.channel in CHANNELS
