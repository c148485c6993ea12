"""The backfill hint of the Anomalies pages: which runs re-score data days, and how to ask for them.

The nightly timetable (``CronTriggerTimetable(..., interval=1 day)``) gives the run of data day D
a data interval that starts on D (site time, ``tsad.dates.data_day``) and lasts one day; Airflow
dates the run at that start (its *logical date* is on D) and starts it when the interval ends,
on D+1. A backfill over a trigger timetable selects runs by that start time (``run_after``):
Airflow's form and ``airflow backfill create`` pick the runs whose start lies in
``[from_date, to_date]``. So data days D1..D2 are the runs dated D1..D2, and the window that
selects exactly them runs from D1+1 00:00 to D2+1 23:59:59, site time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from html import escape
from urllib.parse import quote

from tsad.dates import day_bounds

RUN_INTERVAL = timedelta(days=1)  # the nightly DAG's data interval (nightly.py's timetable)


def backfill_window(first_day: date, last_day: date, site_timezone: str = "UTC"
                    ) -> tuple[datetime, datetime]:
    """UTC ``(from_date, to_date)`` of the backfill that runs exactly data days
    ``first_day .. last_day``: the run of day D starts one interval after a moment of D."""
    if last_day < first_day:
        raise ValueError(f"backfill data days run backwards: {first_day} .. {last_day}")
    start, _ = day_bounds(first_day, site_timezone)
    _, end = day_bounds(last_day, site_timezone)
    return start + RUN_INTERVAL, end + RUN_INTERVAL - timedelta(seconds=1)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backfill_command(first_day: date, last_day: date, dag_id: str,
                     site_timezone: str = "UTC") -> str:
    """``airflow backfill create`` for data days ``first_day .. last_day``, re-running done ones,
    one day at a time as the form's default does: a day that needs a new model then trains it
    before the next day looks for one, as on consecutive nights."""
    since, until = backfill_window(first_day, last_day, site_timezone)
    return (f"airflow backfill create --dag-id {dag_id} --from-date {_stamp(since)} "
            f"--to-date {_stamp(until)} --reprocess-behavior completed --max-active-runs 1")


def backfill_hint(first_day: date, last_day: date, airflow_root: str, dag_id: str,
                  site_timezone: str = "UTC") -> str:
    """A link to the DAG's backfills, naming the data days, the runs' logical dates and the
    form's From/To. Airflow 3.3's backfill form cannot be pre-filled through its URL: the
    dates are shown to copy, and as a CLI command. Empty for days at the edge of the calendar
    (the run of 9999-12-30 would start in year 10000)."""
    try:
        since, until = backfill_window(first_day, last_day, site_timezone)
    except OverflowError:
        return ""
    days = (first_day.isoformat() if first_day == last_day
            else f"{first_day.isoformat()} .. {last_day.isoformat()}")
    href = f"{airflow_root}/dags/{quote(dag_id)}/backfills"
    zone = "UTC" if site_timezone == "UTC" else f"UTC; site time {site_timezone}"
    return (f'<p><a id="backfill" href="{escape(href)}" target="_top">Backfill data '
            f'day{"s" if first_day != last_day else ""} {days} in Airflow</a> '
            f'<span class="note" id="backfill-how">(the '
            f'{"run with logical date" if first_day == last_day else "runs with logical dates"} '
            f"{days}, site time: a run covers its data day and starts once the day is over. "
            "Trigger &rarr; "
            f"Backfill: From {since.astimezone(timezone.utc):%Y-%m-%d %H:%M}, "
            f"To {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} ({escape(zone)}), "
            "Reprocess: All Runs, Max Active Runs 1; or <code>"
            f"{escape(backfill_command(first_day, last_day, dag_id, site_timezone))}</code>)"
            "</span></p>")
