"""Delivery to real local SMTP servers (plain, STARTTLS, SSL) and a real local HTTP server,
outside Airflow: what arrives, and errors that name the connection and server."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from alert_events import DAY, MIDNIGHT, PNG, ROUTES, UTC, event
from procs import free_port

from tsad.alerts import (
    AlertError,
    SmtpMailer,
    SmtpSettings,
    WebhookPoster,
    build_digest,
    digest_email,
    email_message,
    env_connection,
    env_transports,
    slack_payload,
    slack_webhook_url,
)


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

