"""The event page on a real plant: its interactive chart, and snoozes that hold back alerts.

A simulated pump group (site time Europe/Berlin) with a real fault runs through the pipeline
(real torch, real SQLite records, a real model version); ``airflow api-server`` serves the plugin
(``api_server`` of ``test_ui_browser``). The chart's JSON is checked against the records and the
partition; in headless Chromium the chart draws one panel per top channel and the score, labels
its time axis in site time, and zooms by drag-select and the mouse wheel and back. Snoozes set
and removed on the page (in ``alert_snooze``) decide what ``pipeline.alert`` sends for the day.
Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from conftest import small_plant
from test_ui_browser import ARTIFACTS, api_server, call, click_and_wait, open_page, token
from test_ui_browser import browser  # noqa: F401 - a fixture

from tsad import pipeline
from tsad.config import load_config
from tsad.evaluation.simulator import simulate
from tsad.ingest.partitions import read_partition
from tsad.pipeline import GroupDay
from tsad.storage.engine import get_engine
from tsad.storage.records import read_events
from tsad.storage.schema import alert_snooze

START, DAY = date(2026, 3, 1), date(2026, 3, 4)
SITE = "Europe/Berlin"
FAULT = ("2026-03-04 18:00:00", "2026-03-04 19:00:00")  # historian time: UTC, 19:00 in Berlin


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pumps group with a model and the fault day's records: its config and events."""
    tmp = tmp_path_factory.mktemp("event-page")
    raw = small_plant(tmp)
    raw["groups"], raw["site_timezone"] = raw["groups"][:1], SITE
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(raw))
    config = load_config(file)
    simulate(config, START, 4, seed=3)
    historian = sa.create_engine(f"sqlite:///{tmp / 'historian.db'}")
    with historian.begin() as conn:
        assert conn.execute(sa.text("UPDATE pump_readings SET value = value + 50 WHERE sensor = "
                                    "'flow' AND ts >= :a AND ts < :b"),
                            {"a": FAULT[0], "b": FAULT[1]}).rowcount == 12
    historian.dispose()
    pipeline.run_day(config, DAY, ["pumps"])
    events = read_events(get_engine(config.database.url), "pumps", DAY)
    fault = max(events, key=lambda e: e["severity"])
    assert fault["severity"] > 10 and "flow" in [c["channel"] for c in fault["top_channels_json"]]
    return {"file": file, "config": config, "tmp": tmp, "events": events, "fault": fault}


@pytest.fixture(scope="module")
def server(plant: dict[str, Any], airflow_ready: Path) -> Iterator[dict]:
    with api_server(plant["file"], airflow_ready, plant["tmp"]) as running:
        yield running


def admin(server: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(server, 'admin')}"}


# ---------------------------------------------------------------- the chart's data


def test_series_endpoint_recomputes_the_events_readings_reconstruction_and_score(
        server: dict, plant: dict[str, Any]) -> None:
    base, fault = server["base"], plant["fault"]
    url = f"{base}/tsad/api/events/{fault['id']}/series"
    assert call(url)[0] == 401  # behind Airflow's auth like every page
    status, headers, body = call(url, headers=admin(server))
    assert status == 200 and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["site_timezone"] == SITE and data["model_version_id"] == "pumps/v0001"
    assert [c["name"] for c in data["channels"]] == \
        [c["channel"] for c in fault["top_channels_json"]]
    assert all(c["unit"] is None for c in data["channels"])  # the config has no unit setting
    times = np.array(data["times"], dtype="datetime64[ms]")
    assert (np.diff(times.astype(np.int64)) > 0).all() and data["step"] == 1
    # the same readings as the partition, and the score of the run: severity at the peak
    frame = read_partition(plant["config"].data_dir, "pumps", DAY, ["flow"])
    stamps = frame.index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ms]")
    rows = np.searchsorted(stamps, times)
    flow = next(c for c in data["channels"] if c["name"] == "flow")
    np.testing.assert_array_equal(np.array(flow["reading"]), frame["flow"].to_numpy()[rows])
    peak = data["times"].index(int(fault["peak_ts"].timestamp() * 1000))
    assert data["score"][peak] / data["threshold"] == pytest.approx(fault["severity"], rel=1e-6)
    assert data["threshold"] == pytest.approx(fault["threshold"])
    # the event is inside the neighbourhood, and the model does not reproduce the +50 fault
    assert data["times"][0] < data["event"]["start"] <= data["event"]["end"] < data["times"][-1]
    inside = [i for i, t in enumerate(data["times"])
              if data["event"]["start"] <= t <= data["event"]["end"]]
    gaps = [abs(flow["reading"][i] - flow["reconstruction"][i]) for i in inside
            if flow["reconstruction"][i] is not None]
    assert gaps and np.median(gaps) > 10
    assert call(f"{base}/tsad/api/events/999999/series", headers=admin(server))[0] == 404


def test_series_names_what_is_missing_when_the_readings_are_gone(plant: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    from tsad.airflow_layer.ui import queries, series

    config = plant["config"]
    engine = queries.records_engine(config)
    event = queries.get_event(engine, plant["fault"]["id"])
    elsewhere = dataclasses.replace(config, data_dir=str(tmp_path / "data"))
    with pytest.raises(series.SeriesUnavailable, match="readings of pumps on 2026-03-04 are gone"):
        series.event_series(elsewhere, engine, event)


def test_series_of_a_sharded_group_reconstructs_each_channel_with_its_shards_model(
        tmp_path: Path) -> None:
    """The event's model is its lead shard's; a top channel of the other shard is
    reconstructed by that shard's model of the day, as the PNG does."""
    from tsad.airflow_layer.ui import queries, series
    from tsad.model.registry import load_detector, select_version

    raw = small_plant(tmp_path)
    raw["groups"] = raw["groups"][:1]
    raw["groups"][0]["shards"] = {"channels": [["flow", "pressure"], ["current", "temp"]]}
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump(raw))
    config = load_config(file)
    simulate(config, START, 4, seed=3)
    historian = sa.create_engine(f"sqlite:///{tmp_path / 'historian.db'}")
    with historian.begin() as conn:
        conn.execute(sa.text("UPDATE pump_readings SET value = value + 50 WHERE sensor IN "
                             "('flow', 'temp') AND ts >= :a AND ts < :b"),
                     {"a": FAULT[0], "b": FAULT[1]})
    historian.dispose()
    pipeline.run_day(config, DAY, ["pumps"])
    engine = queries.records_engine(config)
    rows, _ = queries.list_events(engine, queries.EventFilter())
    worst = queries.get_event(engine, rows[0]["event_id"])
    assert worst["model_version_id"] == "pumps/s01/v0001"
    assert [t["channel"] for t in worst["top_channels_json"]] == ["flow", "temp"]
    data = series.event_series(config, engine, worst)
    assert [c["name"] for c in data["channels"]] == ["flow", "temp"]
    peak = data["times"].index(data["event"]["peak"])
    assert data["score"][peak] / data["threshold"] == pytest.approx(worst["severity"], rel=1e-6)
    second = load_detector(select_version(config.models_dir, "pumps", DAY, 2))
    frame = read_partition(config.data_dir, "pumps", DAY, second.channels)
    stamps = frame.index.as_unit("ms").asi8
    lo, hi = (int(np.searchsorted(stamps, t)) for t in (data["times"][0], data["times"][-1]))
    expected = second.reconstruct(frame.to_numpy()[lo:hi + 1])[:, second.channels.index("temp")]
    temp = np.array([np.nan if v is None else v for v in data["channels"][1]["reconstruction"]])
    np.testing.assert_allclose(temp, expected, rtol=1e-6)


def test_a_long_neighbourhood_is_thinned_keeping_each_buckets_highest_score() -> None:
    from tsad.airflow_layer.ui import series

    score = np.zeros(86_400)  # a sustained event: a whole day at 1 s
    score[51_234] = 9.0
    score[:10] = np.nan
    rows = series._thin(score)
    assert len(rows) <= series.MAX_POINTS and 51_234 in rows
    assert (np.diff(rows) > 0).all() and series._step(len(score)) == 29
    assert (series._thin(np.ones(100)) == np.arange(100)).all()


def test_the_chart_script_is_served_from_the_package_with_no_outside_address(
        server: dict) -> None:
    url = f"{server['base']}/tsad/static/event_chart.js"
    assert call(url)[0] == 401
    status, headers, body = call(url, headers=admin(server))
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    text = body.decode()
    assert "https://" not in text and text.count("http://") == 1  # the SVG namespace only
    assert "http://www.w3.org/2000/svg" in text
    assert call(f"{server['base']}/tsad/static/..%2Fapp.py", headers=admin(server))[0] == 404


# ---------------------------------------------------------------- the chart in a browser


def view(driver: Any) -> tuple[int, int]:
    start, end = driver.find_element("id", "chart").get_attribute("data-view").split(",")
    return int(start), int(end)


def test_event_chart_draws_in_site_time_and_zooms(
        server: dict, plant: dict[str, Any], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    driver, fault = browser, plant["fault"]
    open_page(driver, server, f"{server['base']}/tsad/events/{fault['id']}",
              "#chart[data-ready]")
    panels = driver.find_elements(By.CSS_SELECTOR, "#chart g.panel")
    labels = [p.find_element(By.CSS_SELECTOR, ".panel-label").text for p in panels]
    assert labels == [c["channel"] for c in fault["top_channels_json"]] + ["score"]
    for panel in panels[:-1]:
        series = {p.get_attribute("data-series") for p in
                  panel.find_elements(By.CSS_SELECTOR, "path")}
        assert series == {"reading", "reconstruction"}
    score = panels[-1]
    assert score.find_elements(By.CSS_SELECTOR, "line.line-threshold")
    assert score.find_elements(By.CSS_SELECTOR, "rect.event-span")
    keys = driver.find_elements(By.CSS_SELECTOR, ".chart-legend .key")
    colours = [driver.execute_script("return getComputedStyle(arguments[0]).borderTopColor", k)
               for k in keys[:4]]  # reading, reconstruction, score, threshold
    assert len(set(colours)) == 4
    axis = driver.find_element(By.CSS_SELECTOR, "#chart .axis-title").text
    assert axis == f"time ({SITE})"
    # the axis is in site time: the event's start (UTC) is labelled an hour later (CET)
    full = view(driver)
    ticks = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#chart text.tick-x")]
    assert "2026-03-04" in ticks and "20:00" in ticks  # 19:00 UTC is 20:00 in Berlin
    png = driver.find_element(By.ID, "png")
    assert png.get_attribute("open") is None  # the PNG fallback, folded once the chart drew
    assert driver.execute_script("return arguments[0].naturalWidth",
                                 driver.find_element(By.ID, "plot")) > 0

    # hovering reads the values, in site time and UTC
    hit = driver.find_element(By.CSS_SELECTOR, "#chart rect.hit")
    ActionChains(driver).move_to_element(hit).perform()
    readout = driver.find_element(By.ID, "chart-readout").text
    assert "CET (" in readout and "UTC)" in readout and "flow " in readout and "score " in readout
    driver.save_screenshot(str(ARTIFACTS / "ui-event-chart.png"))

    # drag-select the middle fifth: the view narrows to it, on every panel
    width = hit.size["width"]
    reset = driver.find_element(By.ID, "chart-reset")
    assert not reset.is_enabled()
    ActionChains(driver).move_to_element_with_offset(hit, -width // 10, 0).click_and_hold() \
        .move_by_offset(width // 5, 0).release().perform()
    zoomed = view(driver)
    assert full[0] < zoomed[0] < zoomed[1] < full[1]
    assert (zoomed[1] - zoomed[0]) == pytest.approx((full[1] - full[0]) / 5, rel=0.05)
    assert reset.is_enabled()
    driver.save_screenshot(str(ARTIFACTS / "ui-event-chart-zoomed.png"))
    # the wheel zooms in further around the pointer
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(hit), 0, -120).perform()
    wheeled = view(driver)
    assert zoomed[0] <= wheeled[0] < wheeled[1] <= zoomed[1]
    assert wheeled[1] - wheeled[0] < zoomed[1] - zoomed[0]
    reset.click()
    assert view(driver) == full and not reset.is_enabled()


# ---------------------------------------------------------------- snoozes


def snooze_rows(db_url: str) -> list[dict[str, Any]]:
    with get_engine(db_url).connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(alert_snooze)
                                              .order_by(alert_snooze.c.id)).mappings()]


def form(**fields: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def test_snooze_posts_are_guarded_and_checked(server: dict, plant: dict[str, Any]) -> None:
    base, fault = server["base"], plant["fault"]
    url = f"{base}/tsad/events/{fault['id']}/snooze"
    formed = {"Content-Type": "application/x-www-form-urlencoded"}
    viewer = {**formed, "Authorization": f"Bearer {token(server, 'viewer')}"}
    assert call(url, method="POST", headers=viewer, data=form(until="2099-01-01"))[0] == 403
    cookie = {**formed, "Cookie": f"_token={token(server, 'admin')}",
              "Origin": "https://evil.example"}
    assert call(url, method="POST", headers=cookie, data=form(until="2099-01-01"))[0] == 403
    editor = {**formed, **admin(server)}
    status, _, body = call(url, method="POST", headers=editor,
                           data=form(until="2099-01-01", channel="vibration"))
    assert status == 400 and b"'channel' must be one of group pumps's channels" in body
    status, _, body = call(url, method="POST", headers=editor, data=form(until="2026-03-05"))
    assert status == 400 and b"'until' must be today" in body
    status, _, body = call(url, method="POST", headers=editor, data=form(until="next week"))
    assert status == 400 and b"'until' must be a date YYYY-MM-DD" in body
    assert call(f"{base}/tsad/snoozes/999/remove", method="POST", headers=editor,
                data=b"")[0] == 404
    assert snooze_rows(server["db"]) == []


def test_a_snooze_set_on_the_page_holds_back_the_next_alert(
        server: dict, plant: dict[str, Any], browser: Any,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    config, fault, db = plant["config"], plant["fault"], server["db"]
    others = [e for e in plant["events"] if e["id"] != fault["id"]]
    assert len(others) == 1 and others[0]["top_channels_json"][0]["channel"] == "temp"

    def alert() -> dict[str, Any]:
        return pipeline.alert(GroupDay.of(config, "pumps", DAY))

    assert (alert()["n_new"], alert()["n_snoozed"]) == (2, 0)
    driver = browser
    open_page(driver, server, f"{server['base']}/tsad/events/{fault['id']}", "form#snooze")
    assert driver.find_element(By.ID, "snoozes").text == "No snoozes in force."
    channel = Select(driver.find_element(By.CSS_SELECTOR, "#snooze select[name=channel]"))
    assert channel.first_selected_option.get_attribute("value") == "flow"  # its top channel
    until = driver.find_element(By.CSS_SELECTOR, "#snooze input[name=until]").get_attribute(
        "value")
    assert date.fromisoformat(until) > date.today()

    # the temperature sensor's events: the one temp leads is held back, the fault still alerts
    channel.select_by_value("temp")
    driver.find_element(By.CSS_SELECTOR, "#snooze input[name=reason]").send_keys("temp sensor swap")
    click_and_wait(driver, driver.find_element(By.ID, "snooze-button"), "#snoozes li")
    (listed,) = driver.find_elements(By.CSS_SELECTOR, "#snoozes li")
    assert listed.text.startswith(f"pumps: events led by temp, data days before {until}: "
                                  "temp sensor swap (by admin)")
    (row,) = snooze_rows(db)
    assert (row["sensor_group"], row["channel"], row["until_date"].isoformat(),
            row["created_by"], row["removed_at"]) == ("pumps", "temp", until, "admin", None)
    with caplog.at_level(logging.INFO, logger="tsad.pipeline"):
        result = alert()
    assert (result["n_new"], result["n_snoozed"]) == (1, 1)
    assert f"snoozed until {until} (temp sensor swap; set by admin in the UI)" in caplog.text

    # the whole group: nothing is alerted
    Select(driver.find_element(By.CSS_SELECTOR, "#snooze select[name=channel]")) \
        .select_by_value("")
    driver.find_element(By.CSS_SELECTOR, "#snooze input[name=reason]").send_keys("overhaul")
    click_and_wait(driver, driver.find_element(By.ID, "snooze-button"), "#snoozes li")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#snoozes li")) == 2
    assert (alert()["n_new"], alert()["n_snoozed"]) == (0, 2)
    driver.save_screenshot(str(ARTIFACTS / "ui-event-snoozes.png"))
    status, _, body = call(f"{server['base']}/tsad/api/snoozes?group=pumps",
                           headers=admin(server))
    assert status == 200 and [(s["channels"], s["source"], s["created_by"])
                              for s in json.loads(body)["snoozes"]] == \
        [(["temp"], "ui", "admin"), ([], "ui", "admin")]

    # removed on the page: the group alerts again, the row stays as history
    group_snooze = snooze_rows(db)[1]["id"]
    click_and_wait(driver, driver.find_element(By.ID, f"remove-snooze-{group_snooze}"),
                   "#snoozes li")
    assert driver.current_url.endswith(f"/tsad/events/{fault['id']}")
    assert [li.get_attribute("data-snooze-id")
            for li in driver.find_elements(By.CSS_SELECTOR, "#snoozes li")] == \
        [str(snooze_rows(db)[0]["id"])]
    removed = snooze_rows(db)[1]
    assert removed["removed_by"] == "admin" and removed["removed_at"] is not None
    assert (alert()["n_new"], alert()["n_snoozed"]) == (1, 1)

    # the list shows what is snoozed, removable there too
    driver.get(f"{server['base']}/tsad/")
    (listed,) = driver.find_elements(By.CSS_SELECTOR, "#snoozes li")
    assert "events led by temp" in listed.text
    click_and_wait(driver, listed.find_element(By.TAG_NAME, "button"), "#snoozes")
    assert driver.current_url.rstrip("/").endswith("/tsad")
    assert driver.find_element(By.ID, "snoozes").text == "No snoozes in force."
    assert (alert()["n_new"], alert()["n_snoozed"]) == (2, 0)
