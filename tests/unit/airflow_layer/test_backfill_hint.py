"""The backfill hint names the data days, their runs and a window that selects exactly them.

The window is checked against Airflow itself: the nightly DAG's own timetable, serialized as the
scheduler sees it, asked for the runs between From and To the way ``POST /api/v2/backfills``
asks (``SerializedDAG.iter_dagrun_infos_between``), each run's data day read with
``tsad.dates.data_day``. ``test_backfill.py`` runs such a backfill under a real scheduler.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from tsad.airflow_layer.ui.backfill import backfill_command, backfill_hint, backfill_window
from tsad.airflow_layer.ui.pages import event_page
from tsad.dates import data_day

from conftest import REPO  # noqa: E402


def _serialized_nightly(monkeypatch: pytest.MonkeyPatch, schedule_timezone: str):
    """The nightly DAG parsed with ``TSAD_SCHEDULE_TIMEZONE``, as the scheduler holds it."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.setenv("TSAD_SCHEDULE_TIMEZONE", schedule_timezone)
    bag = DagBag(dag_folder=str(REPO / "dags" / "tsad_nightly.py"))
    assert bag.import_errors == {}
    return DagSerialization.from_dict(DagSerialization.to_dict(bag.dags["tsad_nightly"]))


def _days(n: int, first: date) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


# (site zone, schedule zone, data days): DST changes in both directions, zones east and west of
# UTC, and a schedule in the site's zone as well as the default UTC one
CASES = [
    ("UTC", "UTC", _days(7, date(2026, 11, 4))),
    ("Europe/Berlin", "UTC", _days(3, date(2026, 3, 28))),
    ("Europe/Berlin", "Europe/Berlin", _days(3, date(2026, 10, 24))),
    ("America/New_York", "UTC", _days(3, date(2026, 3, 7))),
    ("America/New_York", "America/New_York", _days(3, date(2026, 10, 31))),
    ("Asia/Tokyo", "UTC", _days(2, date(2026, 1, 1))),
]


@pytest.mark.parametrize(("site", "schedule", "days"), CASES)
def test_window_selects_exactly_the_runs_of_the_data_days(
        monkeypatch: pytest.MonkeyPatch, site: str, schedule: str, days: list[date]) -> None:
    dag = _serialized_nightly(monkeypatch, schedule)
    since, until = backfill_window(days[0], days[-1], site)
    runs = list(dag.iter_dagrun_infos_between(since, until))
    covered = [data_day(r.data_interval.start, r.data_interval.end, site) for r in runs]
    assert covered == days
    # and the runs are dated on their data day (the logical date is the interval's start)
    assert [data_day(r.logical_date, r.logical_date + timedelta(days=1), site)
            for r in runs] == days


def test_hint_names_the_data_days_the_logical_dates_and_the_form_window() -> None:
    hint = backfill_hint(date(2026, 11, 10), date(2026, 11, 12), "/af", "tsad_nightly")
    assert 'href="/af/dags/tsad_nightly/backfills"' in hint
    assert "Backfill data days 2026-11-10 .. 2026-11-12 in Airflow" in hint
    assert "logical dates 2026-11-10 .. 2026-11-12" in hint
    assert "From 2026-11-11 00:00, To 2026-11-13 23:59 (UTC)" in hint
    assert ("airflow backfill create --dag-id tsad_nightly --from-date 2026-11-11T00:00:00Z "
            "--to-date 2026-11-13T23:59:59Z --reprocess-behavior completed "
            "--max-active-runs 1") in hint

    one = backfill_hint(date(2026, 11, 10), date(2026, 11, 10), "", "tsad_nightly")
    assert "Backfill data day 2026-11-10 in Airflow" in one


def test_hint_in_site_time_gives_the_window_in_utc() -> None:
    hint = backfill_hint(date(2026, 7, 1), date(2026, 7, 1), "", "tsad_nightly",
                         "America/New_York")
    assert "From 2026-07-02 04:00, To 2026-07-03 03:59 (UTC; site time America/New_York)" in hint
    assert backfill_command(date(2026, 7, 1), date(2026, 7, 1), "d", "America/New_York") == (
        "airflow backfill create --dag-id d --from-date 2026-07-02T04:00:00Z "
        "--to-date 2026-07-03T03:59:59Z --reprocess-behavior completed --max-active-runs 1")


def test_no_hint_where_the_run_would_start_after_the_calendar_ends() -> None:
    assert backfill_hint(date(9999, 12, 30), date(9999, 12, 30), "", "tsad_nightly") == ""
    with pytest.raises(ValueError, match="2026-11-12 .. 2026-11-10"):
        backfill_window(date(2026, 11, 12), date(2026, 11, 10))


def test_event_page_offers_to_backfill_its_data_day() -> None:
    from datetime import datetime, timezone

    start = datetime(2026, 11, 10, 14, 5, tzinfo=timezone.utc)
    event = {"event_id": 7, "sensor_group": "pumps", "partition_date": date(2026, 11, 10),
             "start_ts": start, "end_ts": start + timedelta(minutes=40), "peak_ts": start,
             "duration_seconds": 2400, "n_points": 9, "peak_score": 13.0, "threshold": 2.0,
             "severity": 6.5, "top_channels_json": [{"channel": "flow", "contribution": 0.7}],
             "model_version_id": "pumps/v0001", "dag_id": "tsad_nightly",
             "run_id": "scheduled__2026-11-11T01:30:00+00:00", "plot_path": None,
             "feedback_label": None}
    html = event_page(event, None, [], "SELECT 1", "/af", None, "tsad_nightly", "UTC")
    assert "Backfill data day 2026-11-10 in Airflow" in html
    assert "--from-date 2026-11-11T00:00:00Z --to-date 2026-11-11T23:59:59Z" in html
