"""Digests, and their delivery to a real local SMTP server and a real local HTTP server."""

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
    post_webhook,
    send_email,
)

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
