"""The plant simulator: deterministic, day-independent, idempotent, labelled and fast."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tsad.config import TsadConfig, from_dict
from tsad.evaluation.simulator import ANOMALY_TABLE, KINDS, InjectedAnomaly, simulate

PUMPS = [
    "flow",
    "suction_pressure",
    "discharge_pressure",
    "motor_current",
    "motor_temp",
    "vibration",
]
BOILER = ["steam_flow", "feedwater_flow", "drum_level", "steam_pressure", "flue_temp"]
D0 = date(2024, 1, 1)


def make_config(db: Path, site_timezone: str = "UTC", files: Path | None = None) -> TsadConfig:
    url = f"sqlite:///{db}"
    groups = [
        {
            "name": "pumps",
            "channels": PUMPS,
            "source": {
                "kind": "sql",
                "url": url,
                "table": "pump_readings",
                "layout": "long",
                "timestamp_column": "ts",
            },
        },
        {
            "name": "boiler",
            "channels": BOILER,
            "source": {
                "kind": "sql",
                "url": url,
                "table": "boiler_readings",
                "layout": "wide",
                "timestamp_column": "ts",
            },
        },
    ]
    if files is not None:
        groups += [
            {
                "name": "csv-long",
                "channels": ["a", "b"],
                "source": {"kind": "files", "path": str(files / "{group}" / "{date}.csv")},
            },
            {
                "name": "pq-wide",
                "channels": ["a", "b", "c"],
                "source": {
                    "kind": "files",
                    "layout": "wide",
                    "format": "parquet",
                    "path": str(files / "{group}-{date}.parquet"),
                },
            },
        ]
    return from_dict(TsadConfig, {"groups": groups, "site_timezone": site_timezone})


def read_long(db: Path) -> pd.DataFrame:
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = pd.read_sql("SELECT ts, sensor, value FROM pump_readings", conn)
    rows["ts"] = pd.to_datetime(rows["ts"])
    return rows.pivot(index="ts", columns="sensor", values="value")[PUMPS]


def read_wide(db: Path) -> pd.DataFrame:
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = pd.read_sql("SELECT * FROM boiler_readings", conn)
    rows["ts"] = pd.to_datetime(rows["ts"])
    return rows.set_index("ts").sort_index()


def read_labels(db: Path) -> pd.DataFrame:
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        return pd.read_sql(f"SELECT * FROM {ANOMALY_TABLE} ORDER BY sensor_group, start_ts", conn)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.db" for n in "abc")
    la = simulate(make_config(a), D0, 2, [D0], seed=7)
    lb = simulate(make_config(b), D0, 2, [D0], seed=7)
    lc = simulate(make_config(c), D0, 2, [D0], seed=8)
    assert la == lb and la != lc
    pd.testing.assert_frame_equal(read_long(a), read_long(b))
    pd.testing.assert_frame_equal(read_wide(a), read_wide(b))
    assert not np.allclose(read_wide(a).to_numpy(), read_wide(c).to_numpy())


def test_a_day_alone_equals_the_same_day_in_a_range(tmp_path: Path) -> None:
    alone, ranged = tmp_path / "alone.db", tmp_path / "range.db"
    day = D0 + timedelta(days=2)
    labels_alone = simulate(make_config(alone), day, 1, [day])
    labels_range = simulate(make_config(ranged), D0, 5, [day, D0 + timedelta(days=4)])
    assert labels_alone == [a for a in labels_range if a.start.date() == day]
    for read in (read_long, read_wide):
        whole = read(ranged)
        pd.testing.assert_frame_equal(read(alone), whole.loc[str(day)])


def test_resimulating_replaces_rows_and_labels(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    config = make_config(db)
    simulate(config, D0, 3, [D0 + timedelta(days=1)])
    first = read_labels(db)
    simulate(config, D0, 3, [D0 + timedelta(days=1)])
    assert len(read_long(db)) == 3 * 1440 and len(read_wide(db)) == 3 * 1440
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM pump_readings").scalar() == 3 * 1440 * 6
    pd.testing.assert_frame_equal(read_labels(db).drop(columns="id"), first.drop(columns="id"))
    # Re-simulating a sub-range without anomalies drops that day's labels, keeps the others.
    simulate(config, D0 + timedelta(days=1), 1)
    assert read_labels(db).empty
    assert len(read_wide(db)) == 3 * 1440


def test_anomalies_are_returned_stored_and_visible(tmp_path: Path) -> None:
    clean_db, db = tmp_path / "clean.db", tmp_path / "h.db"
    day = D0 + timedelta(days=1)
    simulate(make_config(clean_db), D0, 3)
    labels = simulate(make_config(db), D0, 3, [day])

    for group, channels in (("pumps", PUMPS), ("boiler", BOILER)):
        mine = [a for a in labels if a.group == group]
        assert 2 <= len(mine) <= 3
        for a in mine:
            assert isinstance(a, InjectedAnomaly) and a.kind in KINDS
            assert set(a.channels) <= set(channels) and a.channels
            assert a.start.tzinfo is not None and a.start < a.end
            assert datetime(2024, 1, 2, tzinfo=timezone.utc) <= a.start
            assert a.end <= datetime(2024, 1, 3, tzinfo=timezone.utc)

    stored = read_labels(db)
    assert len(stored) == len(labels)
    expected = sorted(
        (a.group, a.start.replace(tzinfo=None), a.kind, ",".join(a.channels)) for a in labels
    )
    got = sorted(
        zip(
            stored.sensor_group,
            pd.to_datetime(stored.start_ts).dt.to_pydatetime(),
            stored.kind,
            stored.channels,
            strict=True,
        )
    )
    assert got == expected

    for read, group in ((read_long, "pumps"), (read_wide, "boiler")):
        clean, dirty = read(clean_db), read(db)
        diff = (dirty - clean).abs()
        inside = pd.DataFrame(False, index=diff.index, columns=diff.columns)
        for a in (a for a in labels if a.group == group):
            span = (diff.index >= a.start.replace(tzinfo=None)) & (
                diff.index < a.end.replace(tzinfo=None)
            )
            inside.loc[span, list(a.channels)] = True
            sigma = clean.loc[str(day), list(a.channels)].std()
            if a.kind in ("spike", "level_shift", "correlation_break"):
                assert (diff.loc[span, list(a.channels)].max() > 2.5 * sigma).all(), a
            else:  # stuck, noise: the channel's behaviour changes over the whole window
                assert (diff.loc[span, list(a.channels)] > 0).to_numpy().mean() > 0.9, a
        assert (diff.to_numpy()[~inside.to_numpy()] == 0).all()  # nothing changes elsewhere


def test_signals_are_realistic_correlated_and_smooth_at_midnight(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    simulate(make_config(db), D0, 4)
    for frame in (read_long(db), read_wide(db)):
        assert len(frame) == 4 * 1440 and not frame.isna().any().any()
        assert frame.index.to_series().diff().dropna().eq(pd.Timedelta(minutes=1)).all()
        assert frame.min().min() > 5 and frame.max().max() < 500
        corr = frame.corr().abs().to_numpy()
        assert (corr[~np.eye(len(corr), dtype=bool)] > 0.5).any()
        step = frame.diff().abs()
        midnight = step[(step.index.hour == 0) & (step.index.minute == 0)].dropna()
        assert (midnight.max() <= step.quantile(0.9995)).all()


def test_files_sources_one_file_per_day(tmp_path: Path) -> None:
    files = tmp_path / "drop"
    config = make_config(tmp_path / "h.db", files=files)
    simulate(config, D0, 2, [D0])
    for day in (D0, D0 + timedelta(days=1)):
        csv = pd.read_csv(files / "csv-long" / f"{day}.csv")
        assert list(csv.columns) == ["timestamp", "sensor", "value"] and len(csv) == 2 * 1440
        assert csv["timestamp"].iloc[0] == f"{day} 00:00:00"
        pq = pd.read_parquet(files / f"pq-wide-{day}.parquet")
        assert list(pq.columns) == ["timestamp", "a", "b", "c"] and len(pq) == 1440
        assert str(pq["timestamp"].dt.tz) == "UTC"


def test_non_utc_site_days_are_local_days(tmp_path: Path) -> None:
    files = tmp_path / "drop"
    simulate(make_config(tmp_path / "h.db", "Europe/Berlin", files), date(2024, 3, 31), 1)
    pq = pd.read_parquet(files / "pq-wide-2024-03-31.parquet")
    assert len(pq) == 23 * 60  # the spring-forward day has 23 hours
    assert pq["timestamp"].iloc[0] == pd.Timestamp("2024-03-30 23:00", tz="UTC")
    assert len(read_wide(tmp_path / "h.db")) == 23 * 60


def test_anomaly_day_outside_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2024-02-01"):
        simulate(make_config(tmp_path / "h.db"), D0, 2, [date(2024, 2, 1)])


def test_fourteen_days_long_format_is_fast(tmp_path: Path) -> None:
    config = from_dict(
        TsadConfig,
        {
            "groups": [
                {
                    "name": "pumps",
                    "channels": PUMPS,
                    "source": {
                        "kind": "sql",
                        "url": f"sqlite:///{tmp_path / 'h.db'}",
                        "table": "pump_readings",
                        "timestamp_column": "ts",
                    },
                }
            ]
        },
    )
    began = time.perf_counter()
    simulate(config, D0, 14, [D0 + timedelta(days=10)])
    assert time.perf_counter() - began < 5.0
    with sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}").connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM pump_readings").scalar() == 14 * 1440 * 6
        indexes = sa.inspect(conn).get_indexes("pump_readings")
    assert any(ix["column_names"] == ["ts"] for ix in indexes)
