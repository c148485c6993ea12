"""Digests, routing (levels, snoozes, recipients), and delivery to a real local SMTP server and
a real local HTTP server."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tsad.alerts import (
    AlertError,
    Digest,
    build_digest,
    log_digest,
    new_events,
    plan_emails,
    plot_files,
    post_webhook,
    published_plot_url,
    send_email,
    severity_level,
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
    digest = build_digest("pumps", DAY, events, [Path("/tmp/pumps.png")])
    assert digest is not None
    assert digest.subject == "[tsad] pumps 2026-11-20: 2 anomaly events (max severity 3.4)"
    lines = digest.text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("start (UTC)"))
    assert lines[header + 1].startswith("2026-11-20 03:00:00  2026-11-20 03:12:00  12m 00s")
    assert "1h 15m" in lines[header + 2] and "3.4" in lines[header + 2]
    assert "flow 71%, temp 20%" in lines[header + 1] and "pumps/v0003" in lines[header + 1]
    assert "Attached: pumps.png" in digest.text
    assert "<table" in digest.html and "flow 71%" in digest.html
    assert build_digest("pumps", DAY, []) is None
    single = build_digest("pumps", DAY, events[:1])
    assert single is not None and ": 1 anomaly event (max" in single.subject


def test_log_digest(caplog: pytest.LogCaptureFixture) -> None:
    digest = build_digest("pumps", DAY, [event(MIDNIGHT)])
    assert digest is not None
    with caplog.at_level(logging.INFO, logger="tsad.test"):
        log_digest(digest, logging.getLogger("tsad.test"))
    assert digest.subject in caplog.text and "flow 71%" in caplog.text


# ---------------------------------------------------------------- email


class Inbox:
    """An aiosmtpd handler that keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    controller_module = pytest.importorskip("aiosmtpd.controller")
    inbox, port = Inbox(), free_port()
    controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_send_email_to_a_real_smtp_server(smtp_server: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp_server
    plot = tmp_path / "pumps-2026-11-20.png"
    plot.write_bytes(PNG)
    digest = build_digest("pumps", DAY, [event(MIDNIGHT)], [plot])
    assert digest is not None
    send_email(digest, host="127.0.0.1", port=port, sender="tsad@plant.example",
               recipients=["ops@plant.example", "lead@plant.example"], attachments=[plot])

    (envelope,) = inbox.envelopes
    assert envelope.mail_from == "tsad@plant.example"
    assert envelope.rcpt_tos == ["ops@plant.example", "lead@plant.example"]
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert msg["Subject"] == digest.subject
    assert "flow 71%" in msg.get_body(preferencelist=("plain",)).get_content()
    assert "<table" in msg.get_body(preferencelist=("html",)).get_content()
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_filename() == plot.name and attachment.get_content() == PNG


def test_send_email_names_the_server_when_it_is_down() -> None:
    digest = Digest(subject="s", text="t", html="<p>t</p>")
    port = free_port()  # nothing listens there
    with pytest.raises(AlertError, match=f"127.0.0.1:{port}"):
        send_email(digest, host="127.0.0.1", port=port, sender="a@b.c", recipients=["d@e.f"],
                   timeout=5)


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
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, top_channels_json=[
        {"channel": "a<b", "contribution": 1.0}])])
    assert digest is not None
    post_webhook(digest, f"{base}/services/T000/B000/XXXX")

    ((path, headers, body),) = received
    assert path == "/services/T000/B000/XXXX"
    assert headers["Content-Type"].startswith("application/json")
    payload = json.loads(body)
    assert payload["text"] == digest.subject
    assert payload["blocks"][0]["text"]["text"] == digest.subject
    section = payload["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "a&lt;b 100%" in section["text"]


def test_post_webhook_error_names_host_not_secret(http_server: tuple[str, list]) -> None:
    base, _ = http_server
    digest = Digest(subject="s", text="t", html="")
    with pytest.raises(AlertError, match="webhook at 127.0.0.1 answered HTTP 500") as info:
        post_webhook(digest, f"{base}/fail/SECRET-TOKEN")
    assert "SECRET-TOKEN" not in str(info.value)
    with pytest.raises(AlertError, match="http or https"):
        post_webhook(digest, "file:///etc/passwd")


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

    digest = build_digest("pumps", DAY, [low, high], [plot], routes=ROUTES,
                          plot_url=lambda e: published_plot_url("https://p", tmp_path,
                                                                e.get("plot_path")))
    assert digest is not None
    assert digest.subject.startswith("[tsad] CRITICAL pumps 2026-11-20: 2 anomaly events")
    assert "level" in digest.text and "critical" in digest.text and "warning" in digest.text
    assert digest.mention == "<!channel>"
    assert digest.images == (("pumps 2026-11-20 00:00:00 severity 8.0",
                              "https://p/group%3Dpumps/date%3D2026-11-20/event-1.png"),)
    warning_only = build_digest("pumps", DAY, [low], routes=ROUTES)
    assert warning_only is not None and warning_only.mention is None
    assert warning_only.subject.startswith("[tsad] WARNING pumps")


def test_webhook_payload_carries_mention_and_plot_images(http_server: tuple[str, list]) -> None:
    base, received = http_server
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, severity=8.0)], routes=ROUTES,
                          plot_url=lambda e: "https://plots.example/event-1.png")
    assert digest is not None
    post_webhook(digest, f"{base}/hook")
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
