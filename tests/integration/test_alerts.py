"""Digests (links, site time, inline plots), routing (levels, snoozes, recipients), and delivery
to real local SMTP servers (plain, STARTTLS, SSL) and a real local HTTP server, outside Airflow."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from procs import free_port

from tsad.alerts import (
    EVENT_PAGE,
    AlertError,
    SmtpMailer,
    SmtpSettings,
    WebhookPoster,
    build_digest,
    digest_email,
    email_message,
    env_connection,
    env_transports,
    event_page_url,
    log_digest,
    new_events,
    plan_emails,
    plot_files,
    published_plot_url,
    severity_level,
    slack_payload,
    slack_webhook_url,
    split_snoozed,
)
from tsad.config import SeverityRoute, Snooze

UTC = timezone.utc
DAY = date(2026, 11, 20)
MIDNIGHT = datetime(2026, 11, 20, tzinfo=UTC)
STEP = 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def event(start: datetime, minutes: int = 10, severity: float = 2.0, **kw: Any) -> dict[str, Any]:
    base = {"start_ts": start, "end_ts": start + timedelta(minutes=minutes), "severity": severity,
            "top_channels_json": [{"channel": "flow", "contribution": 0.71},
                                  {"channel": "temp", "contribution": 0.2}],
            "model_version_id": "pumps/v0003"}
    base.update(kw)
    return base


# ---------------------------------------------------------------- new_events


def test_event_continuing_across_midnight_is_dropped() -> None:
    yesterday = [event(MIDNIGHT - timedelta(minutes=30), minutes=29)]  # ends 23:59
    today = [event(MIDNIGHT), event(MIDNIGHT + timedelta(hours=5))]
    assert new_events(today, yesterday, MIDNIGHT, STEP) == today[1:]


@pytest.mark.parametrize(
    ("yesterday_end", "today_start"),
    [
        (MIDNIGHT - timedelta(minutes=5), MIDNIGHT),  # yesterday's event ended well before midnight
        (MIDNIGHT - timedelta(minutes=1), MIDNIGHT + timedelta(minutes=2)),  # today's starts later
    ],
)
def test_events_not_touching_midnight_are_new(yesterday_end: datetime,
                                              today_start: datetime) -> None:
    yesterday = [event(yesterday_end - timedelta(minutes=10), minutes=10)]
    today = [event(today_start)]
    assert new_events(today, yesterday, MIDNIGHT, STEP) == today


def test_no_yesterday_keeps_everything_and_naive_day_start_is_refused() -> None:
    today = [event(MIDNIGHT)]
    assert new_events(today, [], MIDNIGHT, STEP) == today
    with pytest.raises(ValueError, match="time zone"):
        new_events(today, [], MIDNIGHT.replace(tzinfo=None), STEP)


# ---------------------------------------------------------------- digest


def test_digest_text_and_subject() -> None:
    events = [event(MIDNIGHT + timedelta(hours=14, minutes=5), minutes=75, severity=3.42),
              event(MIDNIGHT + timedelta(hours=3), minutes=12, severity=1.25)]
    digest = build_digest("pumps", DAY, events)
    assert digest is not None
    assert digest.subject == "[tsad] pumps 2026-11-20: 2 anomaly events (max severity 3.4)"
    lines = digest.text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("start (UTC)"))
    assert lines[header + 1].startswith("2026-11-20 03:00:00  2026-11-20 03:12:00  12m 00s")
    assert "1h 15m" in lines[header + 2] and "3.4" in lines[header + 2]
    assert "flow 71%, temp 20%" in lines[header + 1] and "pumps/v0003" in lines[header + 1]
    assert "<table" in digest.html and "flow 71%" in digest.html
    assert build_digest("pumps", DAY, []) is None
    single = build_digest("pumps", DAY, events[:1])
    assert single is not None and ": 1 anomaly event (max" in single.subject


def test_digest_shows_site_time_beside_utc() -> None:
    # 2026-11-20 is winter time in Berlin (CET, UTC+1); 2026-07-01 summer time (CEST, UTC+2)
    winter = event(MIDNIGHT + timedelta(hours=23, minutes=30), minutes=45)
    digest = build_digest("pumps", DAY, [winter], site_timezone="Europe/Berlin")
    assert digest is not None
    lines = digest.text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("start (Europe/Berlin)"))
    assert lines[header].split()[:8] == ["start", "(Europe/Berlin)", "end", "(Europe/Berlin)",
                                         "start", "(UTC)", "end", "(UTC)"]
    row = lines[header + 1]
    # the local day is the next one: the table says so instead of leaving it to the reader
    assert row.startswith("2026-11-21 00:30:00 CET  2026-11-21 01:15:00 CET  "
                          "2026-11-20 23:30:00  2026-11-21 00:15:00  45m 00s")
    assert "2026-11-21 00:30:00 CET" in digest.html and "2026-11-20 23:30:00" in digest.html
    summer = build_digest("pumps", date(2026, 7, 1),
                          [event(datetime(2026, 7, 1, 10, tzinfo=UTC))],
                          site_timezone="Europe/Berlin")
    assert summer is not None and "2026-07-01 12:00:00 CEST" in summer.text
    utc_site = build_digest("pumps", DAY, [winter])  # a UTC site gets no duplicate columns
    assert utc_site is not None and "(UTC)" in utc_site.text and "CET" not in utc_site.text


def test_digest_links_each_event_to_its_page() -> None:
    events = [event(MIDNIGHT, id=41), event(MIDNIGHT + timedelta(hours=2), id=42, severity=6.0)]
    digest = build_digest("pumps", DAY, events, ui_base_url="https://airflow.plant.example/",
                          site_timezone="Europe/Berlin")
    assert digest is not None
    urls = ["https://airflow.plant.example/tsad/events/41",
            "https://airflow.plant.example/tsad/events/42"]
    assert event_page_url("https://airflow.plant.example/", 41) == urls[0]
    assert EVENT_PAGE == "/tsad/events/{event_id}"
    assert [url for _, url in digest.links] == urls
    assert digest.links[1][0] == "2026-11-20 03:00:00 CET (2026-11-20 02:00:00 UTC), severity 6.0"
    for url in urls:
        assert url in digest.text and f'href="{url}"' in digest.html
        assert url not in digest.table  # Slack's code block: the links are a block of their own
    payload = slack_payload(digest)
    (links,) = [b for b in payload["blocks"] if "Event pages" in b.get("text", {}).get("text", "")]
    assert f"<{urls[1]}|2026-11-20 03:00:00 CET (2026-11-20 02:00:00 UTC), severity 6.0>" \
        in links["text"]["text"]
    unlinked = build_digest("pumps", DAY, events)  # no ui_base_url: no links, no empty block
    assert unlinked is not None and not unlinked.links and "/tsad/events" not in unlinked.html
    assert not [b for b in slack_payload(unlinked)["blocks"]
                if "Event pages" in b.get("text", {}).get("text", "")]


def test_nothing_says_attached() -> None:
    """Plots are inline in the email; the text, the log and Slack carry none and say nothing."""
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, plot_path="/nonexistent/event-1.png")],
                          plot_url=lambda e: "https://plots.example/event-1.png")
    assert digest is not None and digest.plots == ()
    assert "Attached" not in digest.text + digest.html + json.dumps(slack_payload(digest))


def test_sustained_event_is_alerted_daily_with_a_note() -> None:
    yesterday = [event(MIDNIGHT - timedelta(hours=24), minutes=24 * 60 - 1, kind="sustained")]
    sustained = event(MIDNIGHT, minutes=24 * 60 - 5, kind="sustained",
                      since_date=date(2026, 11, 18))
    assert new_events([sustained], yesterday, MIDNIGHT, STEP) == [sustained]
    digest = build_digest("pumps", DAY, [sustained], adopt_after_days=5)
    assert digest is not None
    assert "SUSTAINED since 2026-11-18 (day 3)" in digest.text
    assert "marks the event 'New operating point'" in digest.text
    assert "lasted 5 days (training.adopt_after_days): from 2026-11-23 tsad retrains" \
        in digest.text
    plain = build_digest("pumps", DAY, [sustained])
    assert plain is not None and "adopt_after_days" not in plain.text


def test_log_digest(caplog: pytest.LogCaptureFixture) -> None:
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, id=3)], ui_base_url="http://ui")
    assert digest is not None
    with caplog.at_level(logging.INFO, logger="tsad.test"):
        log_digest(digest, logging.getLogger("tsad.test"))
    assert digest.subject in caplog.text and "flow 71%" in caplog.text
    assert "http://ui/tsad/events/3" in caplog.text and "Attached" not in caplog.text


# ---------------------------------------------------------------- email


class Inbox:
    """An aiosmtpd handler that keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"




def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


@pytest.fixture
def smtp_servers(tmp_path: Path) -> Iterator[dict[str, tuple[Inbox, int]]]:
    """Three real SMTP servers: ``plain``, ``starttls`` (STARTTLS required, then login) and
    ``ssl`` (SMTP over TLS from the first byte, as on port 465)."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult

    tls = self_signed(tmp_path)

    def accept(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=(data.login, data.password) == (b"tsad", b"s3cret"))

    kinds = {"plain": {},
             "starttls": {"tls_context": tls, "require_starttls": True, "authenticator": accept},
             "ssl": {"ssl_context": tls}}
    servers, running = {}, []
    try:
        for kind, kwargs in kinds.items():
            inbox, port = Inbox(), free_port()
            controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=port,
                                                      **kwargs)
            controller.start()
            running.append(controller)
            servers[kind] = (inbox, port)
        yield servers
    finally:
        for controller in running:
            controller.stop()


def smtp_conn(port: int, **extra: Any) -> dict[str, Any]:
    """An smtp connection as Airflow stores it (``AIRFLOW_CONN_*`` JSON)."""
    return {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"from_email": "tsad@plant.example", "retry_limit": 0, "timeout": 1,
                      "ssl_context": "none", **extra}}


def test_email_shows_plots_inline_with_links_and_site_time(
        smtp_servers: dict[str, tuple[Inbox, int]], tmp_path: Path) -> None:
    inbox, port = smtp_servers["plain"]
    plots = tmp_path / "plots" / "group=pumps" / "date=2026-11-20"
    plots.mkdir(parents=True)
    (plots / "event-1.png").write_bytes(PNG + b"1")
    (plots / "event-2.png").write_bytes(PNG + b"2")
    events = [event(MIDNIGHT, id=7, plot_path=str(plots / "event-1.png")),
              event(MIDNIGHT + timedelta(hours=1), id=8, severity=9.0,
                    plot_path=str(plots / "event-2.png"))]
    digest = build_digest("pumps", DAY, events, site_timezone="Europe/Berlin",
                          ui_base_url="https://airflow.plant.example")
    assert digest is not None
    mailer = SmtpMailer(SmtpSettings.from_connection(
        smtp_conn(port, disable_ssl=True, disable_tls=True)), name="tsad_smtp")
    recipients = ["ops@plant.example", "lead@plant.example"]
    mailer.send(digest_email(digest, recipients), recipients)

    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "tsad@plant.example"
    assert envelope.rcpt_tos == recipients
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == digest.subject and msg["From"] == "tsad@plant.example"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html_part = msg.get_body(preferencelist=("html",))
    html = html_part.get_content()
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    assert html_part in related.get_payload()  # the HTML and its images are one related part
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert [p.get_content() for p in images] == [PNG + b"2", PNG + b"1"]  # most severe first
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html and image.get_content_disposition() == "inline"
    assert list(msg.iter_attachments()) == []  # inline, not attached
    for url in ("https://airflow.plant.example/tsad/events/7",
                "https://airflow.plant.example/tsad/events/8"):
        assert url in text and f'href="{url}"' in html
    assert "2026-11-20 02:00:00 CET" in text and "2026-11-20 01:00:00" in text  # site and UTC
    assert "2026-11-20 02:00:00 CET" in html
    assert "Attached" not in text + html


def test_smtp_reads_the_connection_as_the_provider_does(
        smtp_servers: dict[str, tuple[Inbox, int]]) -> None:
    """disable_ssl / disable_tls decide SSL and STARTTLS (SSL and STARTTLS by default); login
    happens after STARTTLS; ssl_context 'default' verifies the certificate."""
    message = email_message("s", "t", "<p>t</p>", ["ops@plant.example"])

    def delivered(kind: str, **extra: Any) -> bool:
        inbox, port = smtp_servers[kind]
        before = len(inbox.envelopes)
        conn = smtp_conn(port, **extra)
        if kind == "starttls":
            conn.update(login="tsad", password="s3cret")
        try:
            SmtpMailer(SmtpSettings.from_connection(conn)).send(message, ["ops@plant.example"])
        except AlertError:
            return False
        return len(inbox.envelopes) == before + 1

    assert delivered("plain", disable_ssl=True, disable_tls=True)
    assert not delivered("plain", disable_ssl=True)  # STARTTLS unless disabled
    assert not delivered("plain")  # SSL unless disabled
    assert delivered("starttls", disable_ssl=True)
    assert not delivered("starttls", disable_ssl=True, disable_tls=True)
    assert delivered("ssl", disable_tls=True)
    assert not delivered("ssl", disable_ssl=True, disable_tls=True)
    assert not delivered("ssl", disable_tls=True, ssl_context="default")  # self-signed
    settings = SmtpSettings.from_connection({"host": "mail", "extra": "{}"})
    assert (settings.use_ssl, settings.starttls, settings.timeout, settings.retry_limit,
            settings.port) == (True, True, 30, 5, None)


def test_smtp_errors_name_the_connection_and_server() -> None:
    message = email_message("s", "t", "<p>t</p>", ["d@e.f"])
    port = free_port()  # nothing listens there
    down = SmtpMailer(SmtpSettings.from_connection(smtp_conn(port, disable_ssl=True)), "tsad_smtp")
    with pytest.raises(AlertError, match=f"tsad_smtp \\(127.0.0.1:{port}\\)"):
        down.send(message, ["d@e.f"])
    anonymous = SmtpMailer(SmtpSettings(host="127.0.0.1", port=port), "tsad_smtp")
    with pytest.raises(AlertError, match="tsad_smtp has no 'from_email'"):
        anonymous.send(message, ["d@e.f"])
    with pytest.raises(ValueError, match="recipient"):
        email_message("s", "t", "<p>t</p>", [])


def test_connections_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tsad run`` reads ``AIRFLOW_CONN_*`` as Airflow does: JSON or URI."""
    monkeypatch.setenv("AIRFLOW_CONN_MAIL", "smtp://tsad:p%40ss@mail.plant:587/"
                                            "?from_email=tsad%40plant&disable_ssl=true&timeout=9")
    conn = env_connection("mail")
    assert conn is not None
    assert (conn["host"], conn["port"], conn["login"], conn["password"]) == \
        ("mail.plant", 587, "tsad", "p@ss")
    settings = SmtpSettings.from_connection(conn)
    assert (settings.use_ssl, settings.starttls, settings.timeout, settings.from_email) == \
        (False, True, 9, "tsad@plant")
    monkeypatch.setenv("AIRFLOW_CONN_HOOK", json.dumps(
        {"conn_type": "slackwebhook", "host": "http://127.0.0.1:9", "password": "/T0/B0/X"}))
    assert slack_webhook_url(env_connection("hook") or {}) == "http://127.0.0.1:9/T0/B0/X"
    assert slack_webhook_url({"password": "T0/B0/X"}) == "https://hooks.slack.com/services/T0/B0/X"
    assert slack_webhook_url({"password": "https://hooks.example/x"}) == "https://hooks.example/x"
    with pytest.raises(AlertError, match="no webhook token"):
        slack_webhook_url({"host": "https://hooks.slack.com/services/T0/B0/X"}, "tsad_slack")
    assert env_connection("absent") is None
    transports = env_transports("mail", "absent")
    assert isinstance(transports.email, SmtpMailer) and transports.slack is None


# ---------------------------------------------------------------- webhook


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        status = 500 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"internal_error")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list]]:
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Hook.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_post_webhook_sends_slack_json(http_server: tuple[str, list]) -> None:
    base, received = http_server
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, id=5, top_channels_json=[
        {"channel": "a<b", "contribution": 1.0}])], ui_base_url="https://ui.example")
    assert digest is not None
    WebhookPoster(f"{base}/services/T000/B000/XXXX").post(slack_payload(digest))

    ((path, headers, body),) = received
    assert path == "/services/T000/B000/XXXX"
    assert headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    assert payload["text"] == digest.subject
    assert payload["blocks"][0]["text"]["text"] == digest.subject
    section = payload["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "a&lt;b 100%" in section["text"]
    assert "<https://ui.example/tsad/events/5|" in payload["blocks"][2]["text"]["text"]


def test_post_webhook_error_names_host_not_secret(http_server: tuple[str, list]) -> None:
    base, _ = http_server
    with pytest.raises(AlertError, match="at 127.0.0.1 answered HTTP 500") as info:
        WebhookPoster(f"{base}/fail/SECRET-TOKEN").post({"text": "t"})
    assert "SECRET-TOKEN" not in str(info.value)
    with pytest.raises(AlertError, match="http or https"):
        WebhookPoster("file:///etc/passwd").post({"text": "t"})


# ---------------------------------------------------------------- routing: levels, snoozes

ROUTES = [SeverityRoute(name="warning", min_severity=1.0),
          SeverityRoute(name="critical", min_severity=5.0, email_to=["oncall@plant.example"],
                        slack_mention="<!channel>")]


def test_severity_level_is_the_highest_route_reached() -> None:
    assert severity_level(0.9, ROUTES) is None
    assert severity_level(1.0, ROUTES) == "warning"
    assert severity_level(4.99, ROUTES) == "warning"
    assert severity_level(7.0, ROUTES) == "critical"
    assert severity_level(7.0, []) is None


def test_snooze_holds_back_a_group_or_the_events_a_channel_leads() -> None:
    flow_led = event(MIDNIGHT, top_channels_json=[{"channel": "flow", "contribution": 0.7},
                                                  {"channel": "temp", "contribution": 0.2}])
    temp_led = event(MIDNIGHT + timedelta(hours=2),
                     top_channels_json=[{"channel": "temp", "contribution": 0.6},
                                        {"channel": "flow", "contribution": 0.3}])
    flow_sensor = Snooze(until="2026-11-21", channels=["flow"], reason="sensor swap")
    keep, held = split_snoozed([flow_led, temp_led], [flow_sensor], DAY)
    assert keep == [temp_led] and held == [(flow_led, flow_sensor)]
    # the snooze ends on its 'until' day: alerts resume
    assert split_snoozed([flow_led], [flow_sensor], date(2026, 11, 21)) == ([flow_led], [])
    whole_group = Snooze(until="2026-12-01")
    assert split_snoozed([flow_led, temp_led], [whole_group], DAY)[0] == []


def test_plan_emails_routes_by_severity_one_email_per_recipient_set() -> None:
    low = event(MIDNIGHT, severity=2.0)
    high = event(MIDNIGHT + timedelta(hours=1), severity=8.0)
    plan = plan_emails([low, high], ["ops@plant.example"], ROUTES)
    assert [(d.recipients, len(d.events)) for d in plan] == [
        (("oncall@plant.example",), 1), (("ops@plant.example",), 2)]
    assert plan[0].events == (high,)
    # a recipient listed twice gets one email
    twice = plan_emails([high], ["oncall@plant.example"], ROUTES)
    assert [(d.recipients, len(d.events)) for d in twice] == [(("oncall@plant.example",), 1)]
    assert plan_emails([low], [], ROUTES) == []  # nobody routed: no email


def test_digest_with_levels_plots_and_mention(tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "group=pumps" / "date=2026-11-20" / "event-1.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(PNG)
    high = event(MIDNIGHT, severity=8.0, plot_path=str(plot))
    low = event(MIDNIGHT + timedelta(hours=1), severity=2.0, plot_path=str(tmp_path / "gone.png"))
    assert plot_files([low, high]) == [plot]  # existing files only, most severe first
    url = published_plot_url("https://plots.example/tsad/", tmp_path, str(plot))
    assert url == "https://plots.example/tsad/group%3Dpumps/date%3D2026-11-20/event-1.png"
    assert published_plot_url("https://p", tmp_path, "/elsewhere/x.png") is None

    digest = build_digest("pumps", DAY, [low, high], routes=ROUTES,
                          plot_url=lambda e: published_plot_url("https://p", tmp_path,
                                                                e.get("plot_path")))
    assert digest is not None
    assert digest.subject.startswith("[tsad] CRITICAL pumps 2026-11-20: 2 anomaly events")
    assert "level" in digest.text and "critical" in digest.text and "warning" in digest.text
    assert digest.mention == "<!channel>"
    assert digest.images == (("pumps 2026-11-20 00:00:00 severity 8.0",
                              "https://p/group%3Dpumps/date%3D2026-11-20/event-1.png"),)
    assert [p.path for p in digest.plots] == [plot]  # the email shows the one plot on disk
    warning_only = build_digest("pumps", DAY, [low], routes=ROUTES)
    assert warning_only is not None and warning_only.mention is None
    assert warning_only.subject.startswith("[tsad] WARNING pumps")


def test_webhook_payload_carries_mention_and_plot_images(http_server: tuple[str, list]) -> None:
    base, received = http_server
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, severity=8.0)], routes=ROUTES,
                          plot_url=lambda e: "https://plots.example/event-1.png")
    assert digest is not None
    WebhookPoster(f"{base}/hook").post(slack_payload(digest))
    payload = json.loads(received[0][2])
    assert payload["text"].startswith("<!channel> [tsad] CRITICAL")
    assert payload["blocks"][1]["text"]["text"].startswith("<!channel> ```")
    (image,) = [b for b in payload["blocks"] if b["type"] == "image"]
    assert image["image_url"] == "https://plots.example/event-1.png"
    assert "severity 8.0" in image["alt_text"]


def test_alert_config_reads_routes_and_snoozes() -> None:
    from tsad.config import AlertConfig, from_dict
    from tsad.errors import ConfigError

    cfg = from_dict(AlertConfig, {
        "email_conn_id": "smtp_default", "email_to": ["ops@x"],
        "routes": [{"name": "critical", "min_severity": 5, "email_to": ["oncall@x"]}],
        "snooze": [{"until": "2026-12-01", "channels": ["flow"], "reason": "swap"}],
        "plot_base_url": "https://plots.example"})
    assert cfg.routes[0].min_severity == 5.0 and cfg.snooze[0].until_day == date(2026, 12, 1)
    with pytest.raises(ConfigError, match="until"):
        from_dict(AlertConfig, {"snooze": [{"until": "next week"}]})
    with pytest.raises(ConfigError, match="min_severity"):
        from_dict(AlertConfig, {"routes": [{"name": "low", "min_severity": 0.5}]})
    with pytest.raises(ConfigError, match="duplicate"):
        from_dict(AlertConfig, {"routes": [{"name": "a", "min_severity": 2},
                                           {"name": "a", "min_severity": 3}]})
