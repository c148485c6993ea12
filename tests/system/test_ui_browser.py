"""The Anomalies page in a real headless Chromium against a real Airflow API server.

The server is ``airflow api-server`` with the repository's plugins folder and the default
SimpleAuthManager (users ``admin`` and ``viewer``; their generated passwords are read back). The
browser logs in through Airflow's own login page, filters the list, opens an event and clicks
"False alarm", then "New operating point"; the verdicts must land in ``anomaly_feedback``. It also
reads the fleet overview and clicks through to a day. Screenshots of the overview, the list and
the event page go to ``tests/artifacts/`` (gitignored). Auth is also checked without a browser: no session,
a viewer's token, and a cross-site POST are all refused.

Chromium comes from Debian (``chromium``, ``chromium-driver``): installed here when missing and we
are root (a fresh CI machine), else the browser test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from procs import free_port
import sqlalchemy as sa
import yaml
from conftest import REPO, small_plant

from tsad.detection.plots import EventPicture, event_plot_path, render
from tsad.storage.engine import get_engine
from tsad.storage.records import (
    EventRecord,
    ModelVersionRecord,
    RunRecord,
    record_model_version,
    write_partition,
)
from tsad.storage.schema import create_schema
from tsad.storage.schema import FEEDBACK_LABELS, anomaly_event, anomaly_feedback
from tsad.storage.views import create_views

ARTIFACTS = REPO / "tests" / "artifacts"
UTC = timezone.utc
DAY = date(2026, 11, 10)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
USERS = "admin:admin,viewer:viewer"  # name:role for the SimpleAuthManager




# ---------------------------------------------------------------- records


def seed_records(tmp: Path) -> Path:
    """A config with both groups, and three events of two days (one plot each); a sustained,
ongoing event the day before and a drift day (``_seed_sustained_and_drift``)."""
    raw = small_plant(tmp)
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(raw))
    engine = get_engine(raw["database"]["url"])
    create_schema(engine)
    create_views(engine)
    for group in ("pumps", "boiler"):
        record_model_version(engine, ModelVersionRecord(
            id=f"{group}/v0001", sensor_group=group, version=1, detector_kind="conv1d",
            config_json={}, config_sha256="c" * 64, artifact_uri=f"/models/{group}/v0001",
            manifest_sha256="m" * 64, training_start=date(2026, 11, 1),
            training_end=date(2026, 11, 7), threshold_strategy="quantile", threshold=0.5,
            created_at=datetime(2026, 11, 8, tzinfo=UTC),
            metrics_json={"model_error": 0.1, "persistence_error": 0.3, "beats_persistence": True}))
    specs = [("pumps", DAY, 2, 6.5, [("flow", 0.7), ("temp", 0.2)]),
             ("pumps", DAY, 14, 1.8, [("current", 0.6), ("flow", 0.3)]),
             ("boiler", DAY + timedelta(days=1), 8, 2.2, [("steam", 0.9)])]
    by_partition: dict[tuple[str, date], list[EventRecord]] = {}
    for group, day, hour, severity, top in specs:
        start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        number = len(by_partition.get((group, day), [])) + 1
        plot = event_plot_path(raw["data_dir"], group, day, number)
        _picture(plot, start, [c for c, _ in top], severity)
        by_partition.setdefault((group, day), []).append(EventRecord(
            sensor_group=group, partition_date=day, start_ts=start,
            end_ts=start + timedelta(minutes=45), peak_ts=start + timedelta(minutes=20),
            peak_score=severity * 0.5, threshold=0.5, severity=severity, n_points=9,
            top_channels_json=[{"channel": c, "contribution": w} for c, w in top],
            model_version_id=f"{group}/v0001", plot_path=str(plot)))
    for (group, day), events in by_partition.items():
        write_partition(engine, RunRecord(
            sensor_group=group, partition_date=day, site_timezone="UTC", status="ok",
            started_at=datetime(2026, 11, 12, 1, 30, tzinfo=UTC), dag_id="tsad_nightly",
            run_id=f"scheduled__{day}T01:30:00+00:00", model_version_id=f"{group}/v0001",
            threshold=0.5, n_events=len(events)), events, [])
    _seed_sustained_and_drift(engine)
    return file


def _seed_sustained_and_drift(engine: sa.Engine) -> None:
    """The day before: a sustained pumps event lasting to the day's end (ongoing); the boiler's
    DAY run found drift and recorded no events."""
    day = DAY - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    write_partition(engine, RunRecord(
        sensor_group="pumps", partition_date=day, site_timezone="UTC", status="ok",
        data_start=start, data_end=start + timedelta(days=1),
        started_at=datetime(2026, 11, 10, 1, 30, tzinfo=UTC), dag_id="tsad_nightly",
        run_id=f"scheduled__{day}T01:30:00+00:00", model_version_id="pumps/v0001",
        threshold=0.5, n_events=1), [EventRecord(
            sensor_group="pumps", partition_date=day, start_ts=start,
            end_ts=start + timedelta(hours=23, minutes=55), peak_ts=start + timedelta(hours=9),
            peak_score=0.7, threshold=0.5, severity=1.4, n_points=288,
            top_channels_json=[{"channel": "pressure", "contribution": 0.8}],
            model_version_id="pumps/v0001", plot_path=None)], [])
    with engine.begin() as conn:  # kind and since_date are written by the sustained detector
        conn.execute(sa.update(anomaly_event).where(anomaly_event.c.partition_date == day)
                     .values(kind="sustained", since_date=day - timedelta(days=2)))
    write_partition(engine, RunRecord(
        sensor_group="boiler", partition_date=DAY, site_timezone="UTC", status="drift",
        drift=True, started_at=datetime(2026, 11, 11, 1, 30, tzinfo=UTC), dag_id="tsad_nightly",
        run_id=f"scheduled__{DAY}T01:30:00+00:00", model_version_id="boiler/v0001",
        threshold=0.5, n_events=0), [], [])


def _picture(path: Path, start: datetime, channels: list[str], severity: float) -> None:
    n = 120
    t = np.array([np.datetime64(start.replace(tzinfo=None)) + np.timedelta64(5 * (i - 50), "m")
                  for i in range(n)])
    rng = np.random.default_rng(0)
    readings = rng.normal(size=(n, len(channels))).cumsum(axis=0)
    score = np.abs(rng.normal(0.2, 0.05, n))
    score[50:59] = 0.5 * severity
    render(EventPicture(title=f"event at {start:%H:%M}", timestamps=t, channels=channels,
                        readings=readings, reconstruction=readings * 0.9, score=score,
                        threshold=0.5, event_start=t[50], event_end=t[58]), path)


# ---------------------------------------------------------------- the API server


@pytest.fixture(scope="module")
def server(airflow_ready: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("ui")
    with api_server(seed_records(tmp), airflow_ready, tmp) as running:
        yield running


@contextmanager
def api_server(config: Path, airflow_home: Path, tmp: Path) -> Iterator[dict]:
    """``airflow api-server`` on a free loopback port with tsad's ``config``: its base URL, the
    users' passwords and the records database URL."""
    port = free_port()
    env = {**os.environ, "TSAD_CONFIG": str(config),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    log = (tmp / "api-server.log").open("w")
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.Popen([str(airflow), "api-server", "--port", str(port), "--host",
                             "127.0.0.1", "--workers", "1", "--apps", "core"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, tmp / "api-server.log")
        passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated")
                               .read_text())
        yield {"base": base, "passwords": passwords, "db": yaml.safe_load(config.read_text())
               ["database"]["url"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _wait_until_up(base: str, proc: subprocess.Popen, log: Path, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the API server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the API server did not answer within {limit} s:\n{log.read_text()[-3000:]}")


def token(server: dict, user: str) -> str:
    body = json.dumps({"username": user, "password": server["passwords"][user]}).encode()
    request = urllib.request.Request(f"{server['base']}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def call(url: str, *, method: str = "GET", headers: dict | None = None,
         data: bytes | None = None) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def verdicts(db_url: str) -> list[tuple]:
    engine = get_engine(db_url)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            anomaly_feedback.c.sensor_group, anomaly_feedback.c.label,
            anomaly_feedback.c.created_by).order_by(anomaly_feedback.c.id))]


# ---------------------------------------------------------------- auth without a browser


def test_the_plugin_is_registered_and_enforces_airflow_auth(server: dict) -> None:
    base = server["base"]
    status, headers, _ = call(f"{base}/tsad/", headers={"Accept": "text/html"})
    assert status == 307 and headers["location"].startswith("/auth/login?next=")
    assert call(f"{base}/tsad/api/events")[0] == 401
    assert call(f"{base}/tsad/events/1/plot.png")[0] == 401
    assert call(f"{base}/tsad/api/events", headers={"Authorization": "Bearer forged"})[0] == 403

    admin = {"Authorization": f"Bearer {token(server, 'admin')}"}
    status, _, body = call(f"{base}/api/v2/plugins", headers=admin)
    (plugin,) = [p for p in json.loads(body)["plugins"] if p["name"] == "tsad"]
    assert plugin["external_views"][0]["name"] == "Anomalies"
    assert plugin["external_views"][0]["destination"] == "nav"
    status, _, body = call(f"{base}/api/v2/plugins/importErrors", headers=admin)
    assert json.loads(body)["import_errors"] == []  # .airflowignore keeps tsad/ out of the loader
    status, _, body = call(f"{base}/tsad/api/events?group=pumps", headers=admin)
    assert status == 200 and {e["sensor_group"] for e in json.loads(body)["events"]} == {"pumps"}

    viewer = {"Authorization": f"Bearer {token(server, 'viewer')}",
              "Content-Type": "application/x-www-form-urlencoded"}
    assert call(f"{base}/tsad/api/events", headers=viewer)[0] == 200  # viewers may read
    assert call(f"{base}/tsad/events/1/feedback", method="POST", headers=viewer,
                data=b"label=false_alarm")[0] == 403  # but not record verdicts
    cookie = {"Cookie": f"_token={token(server, 'admin')}", "Origin": "https://evil.example",
              "Content-Type": "application/x-www-form-urlencoded"}
    assert call(f"{base}/tsad/events/1/feedback", method="POST", headers=cookie,
                data=b"label=false_alarm")[0] == 403  # cross-site form post
    assert verdicts(server["db"]) == []


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _ensure_chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,1700",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _ensure_chromium() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")


def wait_for(driver: Any, css: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    located = ec.presence_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, timeout).until(located)


def click_and_wait(driver: Any, element: Any, then: str) -> Any:
    """Click something that loads a new page; wait until the old page is gone and ``then`` is."""
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def gone(_: Any) -> bool:
        # a page that replaced its document while Chromium was asked about the old node
        # answers "Node ... does not belong to the document": gone, like a stale element
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 20).until(gone)
    return wait_for(driver, then)


def rows(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.event")]


def test_login_filter_open_an_event_and_mark_it_a_false_alarm(server: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ARTIFACTS.mkdir(exist_ok=True)
    base, driver = server["base"], browser
    driver.get(f"{base}/tsad/")
    # no session: Airflow's own login page, then back to the Anomalies page
    wait_for(driver, "input[name=username]").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(
        server["passwords"]["admin"])
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"),
                   "table#events")
    assert driver.current_url.startswith(f"{base}/tsad/")
    assert len(rows(driver)) == 4
    assert "6.50" in rows(driver)[1] and "flow 70%" in rows(driver)[1]  # newest day first
    driver.save_screenshot(str(ARTIFACTS / "ui-events.png"))

    # filters: the pumps group, then the events with 'current' among their top channels
    Select(driver.find_element(By.NAME, "group")).select_by_value("pumps")
    click_and_wait(driver, driver.find_element(By.ID, "apply"), "#count")
    assert len(rows(driver)) == 3 and all("pumps" in r for r in rows(driver))
    Select(driver.find_element(By.NAME, "channel")).select_by_value("current")
    click_and_wait(driver, driver.find_element(By.ID, "apply"), "#count")
    assert len(rows(driver)) == 1 and "1.80" in rows(driver)[0]
    driver.get(f"{base}/tsad/?min_severity=2&start=2026-11-10&end=2026-11-10")
    assert len(rows(driver)) == 1 and "6.50" in rows(driver)[0]
    backfill = driver.find_element(By.ID, "backfill")
    assert backfill.get_attribute("href") == f"{base}/dags/tsad_nightly/backfills"
    assert "Backfill data day 2026-11-10 in Airflow" in backfill.text

    # the event page: plot, numbers, model, SQL
    plot = click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "tr.event a"), "img#plot")
    assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                 plot) == 720  # the PNG loaded, through the plugin's auth
    # the seeded model version has no files: the interactive chart says so, the PNG stays open
    chart = wait_for(driver, "#chart[data-error]")
    assert "Interactive chart unavailable: model version pumps/v0001 cannot be loaded" \
        in chart.text and "static picture below" in chart.text
    assert driver.find_element(By.ID, "png").get_attribute("open") == "true"
    assert "pumps/v0001" in driver.find_element(By.ID, "model").text
    sql = driver.find_element(By.ID, "sql").text
    assert "FROM pump_readings" in sql and "'flow', 'temp'" in sql
    driver.save_screenshot(str(ARTIFACTS / "ui-event.png"))

    # three verdicts with plain labels, styled alike (no red / green that reads either way)
    buttons = driver.find_elements(By.CSS_SELECTOR, "#feedback button")
    assert [b.text.splitlines()[0] for b in buttons] == [
        "Real fault", "False alarm", "New operating point"]
    assert [b.get_attribute("value") for b in buttons] == list(FEEDBACK_LABELS)
    style = "const s = getComputedStyle(arguments[0]); return [s.color, s.borderColor, " \
            "s.backgroundColor]"
    assert len({tuple(driver.execute_script(style, b)) for b in buttons}) == 1
    click_and_wait(driver, driver.find_element(By.ID, "false-alarm"),
                   "#verdict .verdict-false_alarm")
    assert verdicts(server["db"]) == [("pumps", "false_alarm", "admin")]
    assert "current" in driver.find_element(By.ID, "false-alarm").get_attribute("class")
    click_and_wait(driver, driver.find_element(By.ID, "new-operating-point"),
                   "#verdict .verdict-new_operating_point")
    assert driver.find_element(By.ID, "verdict").text == "Current verdict: new operating point"
    assert verdicts(server["db"]) == [("pumps", "false_alarm", "admin"),
                                      ("pumps", "new_operating_point", "admin")]
    driver.save_screenshot(str(ARTIFACTS / "ui-event-after-verdict.png"))
    driver.get(f"{base}/tsad/?verdict=new_operating_point")
    assert len(rows(driver)) == 1 and "new operating point" in rows(driver)[0]
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "tr.event a"), "#feedback")
    click_and_wait(driver, driver.find_element(By.ID, "false-alarm"),
                   "#verdict .verdict-false_alarm")
    driver.get(f"{base}/tsad/?verdict=false_alarm")
    assert len(rows(driver)) == 1 and "false alarm" in rows(driver)[0]
    assert len(verdicts(server["db"])) == 3


def open_page(driver: Any, server: dict, url: str, then: str) -> Any:
    """Open ``url``, logging in as admin first when the browser has no session yet."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    login = "input[name=username]"
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, then)
                                    or d.find_elements(By.CSS_SELECTOR, login))
    if driver.find_elements(By.CSS_SELECTOR, then):
        return driver.find_element(By.CSS_SELECTOR, then)
    driver.find_element(By.CSS_SELECTOR, login).send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(
        server["passwords"]["admin"])
    return click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "button[type=submit]"),
                          then)


def test_fleet_overview_colours_days_and_marks_sustained_events_and_run_status(
        server: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    base, driver = server["base"], browser
    open_page(driver, server, f"{base}/tsad/overview?start=2026-11-08&end=2026-11-12",
              "table#fleet")

    def cell(group: str, day: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR,
                                   f'td.cell[data-group="{group}"][data-day="{day}"]')

    def background(element: Any) -> str:
        return driver.execute_script("return getComputedStyle(arguments[0]).backgroundColor",
                                     element)

    groups = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#fleet tr th.group")]
    assert groups[1:] == ["pumps", "boiler"]  # configured order, under the header
    worst, second, sustained, drift, boiler_day = (
        cell("pumps", "2026-11-10"), cell("boiler", "2026-11-11"), cell("pumps", "2026-11-09"),
        cell("boiler", "2026-11-10"), cell("boiler", "2026-11-11"))
    assert worst.text.splitlines()[0] == "6.5" and "band-high" in worst.get_attribute("class")
    assert second.text.splitlines()[0] == "2.2" and "band-mid" in second.get_attribute("class")
    assert "band-low" in sustained.get_attribute("class")
    assert len({background(worst), background(second), background(sustained)}) == 3
    # a sustained event is a mark (and named on hover); a run that did not end ok shows its status
    assert sustained.find_element(By.CSS_SELECTOR, ".mark.sustained").text == "S"
    assert "sustained since 2026-11-07" in sustained.get_attribute("title")
    assert drift.find_element(By.CSS_SELECTOR, ".mark.status").text == "drift"
    assert "band-quiet" in drift.get_attribute("class") and drift.text.startswith("\u2013")
    assert not boiler_day.find_elements(By.CSS_SELECTOR, ".mark")
    for group, day in (("pumps", "2026-11-08"), ("pumps", "2026-11-11"), ("boiler", "2026-11-12")):
        assert "norun" in cell(group, day).get_attribute("class")
    driver.save_screenshot(str(ARTIFACTS / "ui-overview.png"))

    # click through to the day's events: end, peak, the ongoing mark and the run link
    click_and_wait(driver, sustained.find_element(By.TAG_NAME, "a"), "table#events")
    (row,) = driver.find_elements(By.CSS_SELECTOR, "tr.event")
    assert row.find_element(By.CSS_SELECTOR, "td.end").text == "23:55 ongoing"
    assert row.find_element(By.CSS_SELECTOR, "td.peak").text == "09:00"
    assert "sustained since 2026-11-07" in row.find_element(By.CSS_SELECTOR, "td.start").text
    run = row.find_element(By.CSS_SELECTOR, "td.run a")
    assert run.text == "scheduled"
    assert run.get_attribute("href") == (f"{base}/dags/tsad_nightly/runs/"
                                         "scheduled__2026-11-09T01%3A30%3A00%2B00%3A00")
    click_and_wait(driver, driver.find_element(By.ID, "overview"), "table#fleet")
    days = [th.get_attribute("title") for th in driver.find_elements(By.CSS_SELECTOR,
                                                                     "#fleet th[title]")]
    assert len(days) == 14 and days[-1] == "2026-11-11"  # the newest data day, by default
    quiet = driver.find_element(By.CSS_SELECTOR, '#fleet td.cell[data-day="2026-11-10"] a')
    click_and_wait(driver, quiet, "table#events")
    assert len(rows(driver)) == 2 and all("2026-11-10" in r for r in rows(driver))

    status, _, body = call(f"{base}/tsad/overview?start=2026-11-10&end=2026-11-01",
                           headers={"Authorization": f"Bearer {token(server, 'admin')}"})
    assert status == 400 and b"swap them" in body


def test_plugin_and_reporting_dag_import_no_torch_or_pandas() -> None:
    code = ("import runpy, sys; runpy.run_path('plugins/tsad_plugin.py'); "
            "runpy.run_path('dags/tsad_reporting.py'); "
            "heavy = [m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules]; "
            "sys.exit(f'imported at module level: {heavy}' if heavy else 0)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
