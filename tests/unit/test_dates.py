"""The one function that decides a run's data day."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tsad.dates import data_day, day_bounds, training_days

UTC = timezone.utc


def test_nightly_interval_covers_the_previous_day() -> None:
    start = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert data_day(start, start + timedelta(days=1), "UTC") == date(2026, 11, 20)


def test_zero_length_interval_covers_the_day_before() -> None:
    moment = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    assert data_day(moment, moment, "UTC") == date(2026, 11, 20)


def test_site_time_zone_decides_the_date() -> None:
    # 23:30 UTC on the 19th is already the 20th in Berlin
    start = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    assert data_day(start, start + timedelta(days=1), "Europe/Berlin") == date(2026, 11, 20)


def test_partition_date_param_overrides() -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    assert data_day(start, start, "UTC", "2026-01-05") == date(2026, 1, 5)
    with pytest.raises(ValueError, match="2026-13-01"):
        data_day(start, start, "UTC", "2026-13-01")


def test_dst_days_are_23_and_25_hours_long() -> None:
    spring = day_bounds(date(2026, 3, 29), "Europe/Berlin")
    autumn = day_bounds(date(2026, 10, 25), "Europe/Berlin")
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert spring[0] == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


def test_training_days_precede_the_scored_day() -> None:
    assert training_days(date(2026, 11, 10), 3) == [date(2026, 11, 7), date(2026, 11, 8), date(2026, 11, 9)]
