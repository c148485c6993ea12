"""Issue 16's web UI defects, each tried against the real plugin in a real ``airflow api-server``
(items 1, 3, 15) or against real SQLite and PostgreSQL sources (item 14).

The server and its records are the browser test's (``tests/system/test_ui_browser.py``), plus one event
whose severity is infinite (its threshold was 0). Each test failed before its fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from conftest import small_plant
from test_ui_browser import DAY, api_server, call, seed_records, token, verdicts

from tsad.airflow_layer.ui.queries import raw_data_sql
from tsad.config.loading import group_config_from_dict
from tsad.storage.engine import get_engine
from tsad.storage.records import EventRecord, RunRecord, write_partition
from tsad.storage.schema import anomaly_event

UTC = timezone.utc
FORM = "application/x-www-form-urlencoded"
INFINITE_DAY = DAY - timedelta(days=2)  # the seed's days are DAY - 1 .. DAY + 1


@pytest.fixture(scope="module")
def server(airflow_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("ui-hardening")
    config = seed_records(tmp)
    engine = get_engine(yaml.safe_load(config.read_text())["database"]["url"])
    start = datetime(INFINITE_DAY.year, INFINITE_DAY.month, INFINITE_DAY.day, 3, tzinfo=UTC)
    write_partition(engine, RunRecord(
        sensor_group="pumps", partition_date=INFINITE_DAY, site_timezone="UTC", status="ok",
        started_at=start + timedelta(days=1), dag_id="tsad_nightly", run_id="manual__inf",
        model_version_id="pumps/v0001", threshold=0.0, n_events=1), [EventRecord(
            sensor_group="pumps", partition_date=INFINITE_DAY, start_ts=start,
            end_ts=start + timedelta(minutes=10), peak_ts=start, peak_score=1.0, threshold=0.0,
            severity=float("inf"), n_points=3,
            top_channels_json=[{"channel": "flow", "contribution": 1.0}],
            model_version_id="pumps/v0001", plot_path=None)], [])
    with api_server(config, airflow_ready, tmp) as running:
        running["engine"] = engine
        yield running


def _bearer(server: dict, user: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(server, user)}"}


def _event_id(engine: sa.Engine, group: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.min(anomaly_event.c.id))
                                .where(anomaly_event.c.sensor_group == group)).scalar_one())


def test_item1_origin_is_checked_unless_a_bearer_token_authenticated(server: dict) -> None:
    url = f"{server['base']}/tsad/events/{_event_id(server['engine'], 'boiler')}/feedback"
    session = {"Cookie": f"_token={token(server, 'admin')}", "Origin": "https://evil.example",
               "Content-Type": FORM}
    # what a browser adds by itself behind a proxy, an empty header, a bearer without a token:
    # the session cookie still identifies the request, so the cross-site origin is refused
    for header in ("Basic eDp4", "Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6i",
                   "", "Bearer "):
        status, _, body = call(url, method="POST", headers={**session, "Authorization": header},
                               data=b"label=false_alarm")
        assert status == 403 and b"cross-site" in body, (header, status, body)
    assert verdicts(server["db"]) == []

    # an API client whose bearer token authenticated the request has no origin to check
    status, _, _ = call(url, method="POST", data=b"label=true_alarm",
                        headers={**_bearer(server), "Origin": "https://evil.example",
                                 "Content-Type": FORM})
    assert status == 303
    assert verdicts(server["db"]) == [("boiler", "true_alarm", "admin")]


def _strict_json(body: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(body, parse_constant=refuse)


def test_item3_events_api_is_json_with_infinite_severity_and_400_for_bad_filters(
        server: dict) -> None:
    base, admin = server["base"], _bearer(server)
    status, _, body = call(f"{base}/tsad/api/events", headers=admin)
    assert status == 200, body[-300:]
    events = _strict_json(body)["events"]
    (infinite,) = [e for e in events if e["partition_date"] == INFINITE_DAY.isoformat()]
    assert infinite["severity"] is None and infinite["peak_score"] == 1.0
    assert len(events) == 5
    assert call(f"{base}/tsad/", headers=admin)[0] == 200  # the HTML list shows it too

    for query, message in (("min_severity=-inf", "'min_severity' must be a finite number"),
                           ("min_severity=nan", "'min_severity' must be a finite number"),
                           ("min_severity=abc", "'min_severity' must be a number"),
                           ("verdict=maybe", "'verdict' must be one of unreviewed, true_alarm")):
        status, _, body = call(f"{base}/tsad/api/events?{query}", headers=admin)
        assert status == 400 and message in _strict_json(body)["detail"], (query, body)
    status, _, body = call(f"{base}/tsad/api/events?verdict=new_operating_point", headers=admin)
    assert status == 200 and _strict_json(body)["events"] == []


def test_item15_a_day_at_the_end_of_the_calendar_is_a_400(server: dict) -> None:
    base, admin = server["base"], _bearer(server)
    for query in ("end=9999-12-31", "start=9999-12-31", "start=2026-11-01&end=9999-12-31"):
        status, _, body = call(f"{base}/tsad/?{query}", headers=admin)
        assert status == 400, (query, status, body[-300:])
        assert b"must be a date before 9999-12-31" in body
    assert call(f"{base}/tsad/?end=9999-12-30", headers=admin)[0] == 200


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_item14_raw_data_sql_quotes_identifiers_as_the_source_dialect_does(
        db_url: str, tmp_path: Path, layout: str) -> None:
    """A table named ``order`` and a column named ``user``: the SQL shown on the event page runs
    on the source and returns the readings (on PostgreSQL, unquoted ``user`` is the session
    user)."""
    engine = get_engine(db_url)
    start = datetime(2026, 11, 10, 2, tzinfo=UTC)
    times = [start.replace(tzinfo=None) + timedelta(minutes=5 * i) for i in range(-24, 36)]
    columns = ([sa.Column("ts", sa.DateTime), sa.Column("user", sa.Float),
                sa.Column("level", sa.Float)] if layout == "wide" else
               [sa.Column("ts", sa.DateTime), sa.Column("user", sa.String(20)),
                sa.Column("value", sa.Float)])
    table = sa.Table("order", sa.MetaData(), *columns)
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        if layout == "wide":
            conn.execute(sa.insert(table), [{"ts": t, "user": float(i), "level": -float(i)}
                                            for i, t in enumerate(times)])
        else:
            conn.execute(sa.insert(table), [{"ts": t, "user": name, "value": float(i)}
                                            for i, t in enumerate(times)
                                            for name in ("user", "level", "other")])
    raw = small_plant(tmp_path)["groups"][1]
    raw.update(channels=["user", "level", "spare"], name="press")
    raw["source"] = {"kind": "sql", "url": db_url, "table": "order", "layout": layout,
                     "timestamp_column": "ts", "sensor_column": "user"}
    group = group_config_from_dict(raw)

    sql = raw_data_sql(group, start, start + timedelta(minutes=30), ["user", "level"])
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(sql))]
    # the event (02:00-02:30) and an hour either side: 01:00 .. 03:25, 30 five-minute steps
    first = 12
    if layout == "wide":
        assert rows[0][1:] == (float(first), -float(first))
        assert [r[1] for r in rows] == [float(i) for i in range(first, first + 30)]
    else:
        assert {r[1] for r in rows} == {"user", "level"}
        values = [r[2] for r in rows if r[1] == "user"]
        assert values == [float(i) for i in range(first, first + 30)]
