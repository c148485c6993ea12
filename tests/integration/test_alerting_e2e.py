"""End to end through Airflow: the anomalous day alerts by email (plots inline, a link to each
event's page, site time beside UTC) and Slack (links, plots); the next day does not re-alert the
event still going on at midnight; a failed task is reported through the same provider hooks; an
SMTP connection behaves the same through ``SmtpHook`` as through tsad's own path outside Airflow.

The real nightly DAG runs with ``dag.test()``; the SMTP server (aiosmtpd) and the Slack stand-in
(an HTTP server that also publishes the plots folder, as ``plot_base_url`` expects) are local.
The email and the Slack post received are kept under the test's ``received/`` folder.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen
from zoneinfo import ZoneInfo

import pytest
from procs import free_port
import sqlalchemy as sa
import yaml
from conftest import REPO, small_plant
from test_alert_delivery import smtp_conn, smtp_servers  # noqa: F401 - smtp_servers is a fixture

from tsad.storage.engine import get_engine
from tsad.storage.records import read_events

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

DAY = date(2026, 3, 5)
NEXT = DAY + timedelta(days=1)
FAULT = (datetime(2026, 3, 5, 21, tzinfo=timezone.utc),
         datetime(2026, 3, 6, 3, tzinfo=timezone.utc))
SITE = "Europe/Berlin"  # UTC+1 in March: data day 2026-03-05 ends at 23:00 UTC
UI = "http://airflow.plant.example:8080"




class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


class Slack(BaseHTTPRequestHandler):
    """POST: a Slack webhook that keeps the payloads. GET /plots/...: the published plots."""

    posts: list[tuple[str, dict]] = []
    plots_root: Path = Path("/nonexistent")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((self.path, json.loads(body)))
        self._answer(200, b"ok", "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        relative = self.path.removeprefix("/plots/").replace("%3D", "=")
        file = (self.plots_root / relative).resolve()
        if self.path.startswith("/plots/") and file.is_file() and self.plots_root in file.parents:
            self._answer(200, file.read_bytes(), "image/png")
        else:
            self._answer(404, b"not found", "text/plain")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[Inbox, int, str]]:
    inbox, smtp_port = Inbox(), free_port()
    smtp = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    Slack.posts, Slack.plots_root = [], (tmp_path / "data" / "plots").resolve()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Slack)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield inbox, smtp_port, f"http://127.0.0.1:{http.server_address[1]}"
    finally:
        http.shutdown()
        http.server_close()
        smtp.stop()


@pytest.fixture
def plant(tmp_path: Path, receivers: tuple[Inbox, int, str],
          monkeypatch: pytest.MonkeyPatch) -> dict:
    """The pumps group, its alert routes going to the local receivers."""
    from tsad.config import load_config

    _, smtp_port, http = receivers
    raw = small_plant(tmp_path)
    raw["site_timezone"] = SITE
    raw["groups"] = raw["groups"][:1]
    raw["groups"][0]["alerts"] = {
        "email_conn_id": "tsad_smtp", "email_to": ["ops@plant.example"],
        "slack_conn_id": "tsad_slack", "plot_base_url": f"{http}/plots", "ui_base_url": UI,
        "routes": [{"name": "warning", "min_severity": 1.0},
                   {"name": "critical", "min_severity": 3.0, "email_to": ["oncall@plant.example"],
                    "slack_mention": "<!channel>"}],
    }
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("TSAD_CONFIG", str(file))
    monkeypatch.setenv("AIRFLOW_CONN_TSAD_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
        "extra": {"from_email": "tsad@plant.example", "disable_tls": True, "disable_ssl": True,
                  "retry_limit": 0, "timeout": 10}}))
    monkeypatch.setenv("AIRFLOW_CONN_TSAD_SLACK", json.dumps({
        "conn_type": "slackwebhook", "host": http, "password": "/services/T000/B000/XXXX"}))
    return {"config": load_config(file), "http": http}


def _fault_across_midnight(historian: str) -> None:
    """Flow and pressure stuck high from 21:00 to 03:00: one fault that spans two data days."""
    engine = sa.create_engine(historian)
    table = sa.Table("pump_readings", sa.MetaData(), autoload_with=engine)
    start, end = (t.replace(tzinfo=None) for t in FAULT)
    with engine.begin() as conn:
        for sensor in ("flow", "pressure"):
            spread = conn.execute(sa.select(sa.func.max(table.c.value) - sa.func.min(table.c.value))
                                  .where(table.c.sensor == sensor)).scalar_one()
            conn.execute(sa.update(table).where(table.c.sensor == sensor, table.c.ts >= start,
                                                table.c.ts < end).values(value=table.c.value + spread))
    engine.dispose()


def _keep(folder: Path, mail: EmailMessage, post: dict) -> None:
    """The email's text part and the Slack post as received, for people to read."""
    out = folder / "received"
    out.mkdir(exist_ok=True)
    (out / "email.eml").write_bytes(bytes(mail))
    (out / "email.txt").write_text(f"Subject: {mail['Subject']}\nFrom: {mail['From']}\n"
                                   f"To: {mail['To']}\n\n"
                                   + mail.get_body(preferencelist=("plain",)).get_content())
    (out / "slack.json").write_text(json.dumps(post, indent=2))


def test_anomalous_day_emails_and_posts_plots_and_the_next_day_does_not_repeat(
        airflow_ready: Path, plant: dict, receivers: tuple[Inbox, int, str],
        tmp_path: Path) -> None:
    from tsad.airflow_layer.demo import run_dag_for_day
    from tsad.evaluation.simulator import simulate

    inbox, _, http = receivers
    config = plant["config"]
    simulate(config, DAY - timedelta(days=3), 5, [DAY], seed=3)
    _fault_across_midnight(config.groups[0].source.url)
    assert run_dag_for_day(DAY, {"force_retrain": True}) == "success"

    engine = get_engine(config.database.url)
    events = read_events(engine, "pumps", DAY)
    assert events, "the anomalous day produced no events"
    assert all(e["plot_path"] and Path(e["plot_path"]).is_file() for e in events)
    midnight = datetime(2026, 3, 6, tzinfo=ZoneInfo(SITE))  # the data days' boundary
    near = timedelta(minutes=5) * (config.groups[0].events.merge_gap + 1)  # 5-minute sampling
    ongoing = [e for e in events if midnight - e["end_ts"] <= near]
    spans = [(e["start_ts"], e["end_ts"]) for e in events]
    assert ongoing, f"the fault running into midnight is not an event of the day: {spans}"

    # email: every event to ops with its plot inline, a link to its page, site time and UTC
    ops = [msg for rcpts, msg in inbox.messages if "ops@plant.example" in rcpts]
    assert len(ops) == 1
    assert "pumps 2026-03-05" in ops[0]["Subject"]
    assert f"{len(events)} anomaly event" in ops[0]["Subject"]
    text = ops[0].get_body(preferencelist=("plain",)).get_content()
    html = ops[0].get_body(preferencelist=("html",)).get_content()
    images = [p for p in ops[0].walk() if p.get_content_type() == "image/png"]
    assert sorted(p.get_content() for p in images) == sorted(
        Path(e["plot_path"]).read_bytes() for e in events)
    for image in images:
        assert image.get_content_disposition() == "inline"
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert list(ops[0].iter_attachments()) == []
    site = ZoneInfo(SITE)
    for e in events:
        url = f"{UI}/tsad/events/{e['id']}"
        assert url in text and f'href="{url}"' in html
        local = e["start_ts"].astimezone(site).strftime("%Y-%m-%d %H:%M:%S %Z")
        utc = e["start_ts"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        assert local in text and utc in text and local in html and utc in html
    assert "Attached" not in text + html
    critical = [e for e in events if e["severity"] >= 3.0]
    oncall = [msg for rcpts, msg in inbox.messages if "oncall@plant.example" in rcpts]
    assert len(oncall) == (1 if critical else 0)
    if critical:
        assert oncall[0]["Subject"].startswith("[tsad] CRITICAL")  # not folded to a blank
        assert f": {len(critical)} anomaly event" in oncall[0]["Subject"]

    # Slack: one post with the table, a link per event and the plots as images Slack can fetch
    ((path, payload),) = Slack.posts
    assert path == "/services/T000/B000/XXXX" and "pumps 2026-03-05" in payload["text"]
    posted = json.dumps(payload)
    assert all(f"<{UI}/tsad/events/{e['id']}|" in posted for e in events)
    assert "Attached" not in posted
    images = [b["image_url"] for b in payload["blocks"] if b["type"] == "image"]
    assert images and all(url.startswith(f"{http}/plots/group%3Dpumps/") for url in images)
    with urlopen(images[0], timeout=10) as response:
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"
    _keep(tmp_path, ops[0], payload)

    # tsad run's path (no hooks: the core reads the same AIRFLOW_CONN_* itself) sends the same
    from tsad import pipeline
    from tsad.pipeline.context import GroupDay

    n_mail, n_posts = len(inbox.messages), len(Slack.posts)
    assert pipeline.alert(GroupDay.of(config, "pumps", DAY))["sent"] == ["email", "webhook"]
    resent = inbox.messages[n_mail:]
    assert [(r, m["Subject"], m["From"]) for r, m in resent] == \
        [(r, m["Subject"], m["From"]) for r, m in inbox.messages[:n_mail]]
    ops_again = next(m for r, m in resent if "ops@plant.example" in r)
    assert ops_again.get_body(preferencelist=("plain",)).get_content() == text
    assert Slack.posts[n_posts:] == Slack.posts[:n_posts]

    # the next day: the fault still runs at midnight, but that event was already alerted
    sent_before = (len(inbox.messages), len(Slack.posts))
    assert run_dag_for_day(NEXT) == "success"
    following = read_events(engine, "pumps", NEXT)
    assert any(e["start_ts"] - midnight <= near for e in following), \
        f"the fault's second half is no event: {[(e['start_ts'], e['end_ts']) for e in following]}"
    new_mail = inbox.messages[sent_before[0]:]
    new_posts = Slack.posts[sent_before[1]:]
    others = [e for e in following if e["start_ts"] - midnight > near]
    assert len(new_posts) == (1 if others else 0) and len(new_mail) <= (2 if others else 0)
    continued = ("2026-03-06 00:00:00 CET", "2026-03-05 23:00:00")  # site time, UTC
    for _, msg in new_mail:
        body = msg.get_body(preferencelist=("plain",)).get_content()
        assert not any(stamp in body for stamp in continued)
    for _, post in new_posts:
        assert not any(stamp in json.dumps(post) for stamp in continued)

    # each detect announced its partition on the records Asset; the reporting DAG reads the views
    assert {("pumps", "2026-03-05"), ("pumps", "2026-03-06")} <= _asset_partitions()
    assert _run_reporting_dag() == "success"
    report = Path(config.data_dir) / "reports" / "daily-2026-03-06.csv"
    header, row = report.read_text().splitlines()[:2]
    assert header.startswith("partition_date,sensor_group,") and row.startswith("2026-03-06,pumps,")


def _asset_partitions() -> set[tuple[str, str]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (session.query(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                  .filter(AssetModel.name == "tsad_records").all())
        return {(e.extra.get("sensor_group"), e.extra.get("partition_date")) for e in events}


def _run_reporting_dag() -> str:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    return str(bag.dags["tsad_reporting"].test().state)


def test_a_failed_task_is_reported_by_email_and_slack(
        airflow_ready: Path, plant: dict, receivers: tuple[Inbox, int, str]) -> None:
    from tsad.airflow_layer.demo import run_dag_for_day

    inbox, _, _ = receivers
    missing_day = DAY + timedelta(days=30)  # nothing in the historian: extract fails
    assert run_dag_for_day(missing_day) == "failed"
    ((rcpts, msg),) = inbox.messages
    assert rcpts == ["ops@plant.example"]
    assert msg["Subject"] == "[tsad] FAILED tsad_nightly sensor_group.extract (pumps)"
    body = msg.get_body(preferencelist=("html",)).get_content()
    assert "Error: SourceError: source database" in body  # the exception, in the task's words
    assert "Data interval: 2026-04-04T01:30:00+00:00 .. 2026-04-05T01:30:00+00:00" in body
    ((_, payload),) = Slack.posts
    assert payload["text"].startswith("[tsad] FAILED tsad_nightly sensor_group.extract (pumps)")


def test_the_event_link_is_the_ui_event_route() -> None:
    from tsad.airflow_layer.ui.app import URL_PREFIX, app
    from tsad.alerts import EVENT_PAGE

    routes = {URL_PREFIX + route.path for route in app.routes
              if "GET" in getattr(route, "methods", ())}
    assert EVENT_PAGE in routes


EXTRAS = [{"disable_ssl": True, "disable_tls": True}, {"disable_ssl": True}, {"disable_tls": True},
          {}, {"disable_tls": True, "ssl_context": "default"}]


@pytest.mark.parametrize("kind", ["plain", "starttls", "ssl"])
def test_one_smtp_connection_behaves_one_way(kind: str, smtp_servers: dict,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """For each server kind and each combination of the TLS extras, tsad's path outside Airflow
    (``SmtpMailer``) and the provider's ``SmtpHook`` (``HookMailer``) deliver, or fail, alike."""
    from tsad.airflow_layer.connections import HookMailer
    from tsad.alerts import AlertError, SmtpMailer, SmtpSettings, email_message

    inbox, port = smtp_servers[kind]
    outcomes = []
    for extra in EXTRAS:
        conn = smtp_conn(port, **extra)
        if kind == "starttls":
            conn.update(login="tsad", password="s3cret")
        monkeypatch.setenv("AIRFLOW_CONN_TSAD_PARITY", json.dumps(conn))
        for mailer in (SmtpMailer(SmtpSettings.from_connection(conn)), HookMailer("tsad_parity")):
            before = len(inbox.envelopes)
            try:
                mailer.send(email_message("s", "t", "<p>t</p>", ["ops@plant.example"]),
                            ["ops@plant.example"])
            except AlertError:
                pass
            outcomes.append((str(extra), type(mailer).__name__, len(inbox.envelopes) > before))
    core = [(extra, sent) for extra, name, sent in outcomes if name == "SmtpMailer"]
    hook = [(extra, sent) for extra, name, sent in outcomes if name == "HookMailer"]
    assert core == hook
    assert sum(sent for _, sent in core) == 1  # each server kind takes exactly one combination


@pytest.mark.parametrize("uri", [
    "smtp://tsad:p%40ss@mail.plant:587/?from_email=tsad%40plant&disable_ssl=true&timeout=9",
    "smtp://mail.plant?__extra__=%7B%22disable_tls%22%3A+true%7D",
    "slackwebhook://:%2FT0%2FB0%2FX@http%3A%2F%2F127.0.0.1%3A9",
    "slackwebhook://https://:T0@hooks.example:8443/services",
    "postgres://u:p@db/tsad",
])
def test_environment_connections_parse_as_airflow_parses_them(uri: str) -> None:
    from airflow.models.connection import Connection

    from tsad.alerts.delivery import _from_uri

    ours, theirs = _from_uri(uri), Connection(conn_id="x", uri=uri)
    assert (ours["conn_type"], ours["host"], ours["login"], ours["password"], ours["port"],
            ours["schema"] or None, ours["extra"]) == \
        (theirs.conn_type, theirs.host, theirs.login, theirs.password, theirs.port,
         theirs.schema or None, theirs.extra_dejson)
