"""The one place that decides which day a run covers, and that day's bounds in UTC.

A run's *data day* is a calendar date in the site's time zone. Airflow hands us a data interval;
with tsad's daily timetable it is the previous day, so the data day is the site-local date of the
interval's start. A zero-length interval (a manual run, or ``@daily`` in Airflow 3) means "the day
before the logical date". Every path, SQL key and model choice derives from this one function.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


def data_day(
    interval_start: datetime,
    interval_end: datetime,
    site_timezone: str,
    override: str | date | None = None,
) -> date:
    """The site-local date a run covers.

    ``override`` (a ``partition_date`` param, ``YYYY-MM-DD``) wins when given. Otherwise a
    non-empty interval covers the local date of its start (shifted by a second so an interval that
    ends exactly at midnight counts as the day before it); an empty interval covers the day before
    the local date of its end.
    """
    if override:
        return override if isinstance(override, date) else parse_day(override)
    tz = ZoneInfo(site_timezone)
    start, end = _aware(interval_start).astimezone(tz), _aware(interval_end).astimezone(tz)
    if end > start:
        return start.date() if end - start >= timedelta(hours=23) else (end - timedelta(seconds=1)).date()
    return end.date() - timedelta(days=1)


def parse_day(text: str) -> date:
    """Parse ``YYYY-MM-DD`` with an error that names the bad value."""
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ValueError(f"partition date {text!r} is not a date in YYYY-MM-DD form") from None


def day_bounds(day: date, site_timezone: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of a site-local day: 23 or 25 hours long on DST change days."""
    tz = ZoneInfo(site_timezone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def training_days(day: date, n_days: int) -> list[date]:
    """The ``n_days`` days before ``day``, oldest first: a model never trains on the day it scores."""
    return [day - timedelta(days=n) for n in range(n_days, 0, -1)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
