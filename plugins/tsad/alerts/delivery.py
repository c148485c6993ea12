"""Sending alerts outside Airflow: SMTP, a Slack incoming webhook, and the log.

Inside Airflow every email and Slack post (digests and failure notices alike) goes through the
providers' ``SmtpHook`` and ``SlackWebhookHook`` (``tsad.airflow_layer.connections``). ``tsad
run`` outside Airflow has no hooks; it reads the same connections from ``AIRFLOW_CONN_<ID>``
environment variables (JSON or URI, as Airflow does) and sends with the standard library, reading
each connection's extras exactly as the providers do, so one connection behaves one way:

- ``disable_ssl`` false (the default): SMTP over SSL (``SMTP_SSL``, port 465 when none is set);
- ``disable_tls`` false (the default): STARTTLS after connecting, even over SSL, as the provider
  does; a plain server needs both disabled, a STARTTLS server (port 587) ``disable_ssl: true``;
- ``ssl_context``: ``default`` verifies the server's certificate, ``none`` does not;
- ``timeout`` (30 s), ``retry_limit`` (5), ``from_email`` (required);
- Slack: the token in the password (or a full URL there), the host as base URL, ``timeout``.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from tsad.alerts.digest import Digest
from tsad.errors import TsadError

log = logging.getLogger(__name__)


class AlertError(TsadError):
    """An alert could not be delivered; the message names the server or host, never a secret."""


class Mailer(Protocol):
    """Sends one email (``From`` is the connection's ``from_email``)."""

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None: ...


class Poster(Protocol):
    """Posts one Slack-compatible JSON payload."""

    def post(self, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Transports:
    """Where a group's alerts go besides the log; None: that route is not configured."""

    email: Mailer | None = None
    slack: Poster | None = None


@dataclass(frozen=True)
class SmtpSettings:
    """An smtp connection read as ``airflow.providers.smtp.hooks.smtp.SmtpHook`` reads it."""

    host: str
    port: int | None = None
    from_email: str | None = None
    login: str = ""
    password: str = ""
    use_ssl: bool = True
    starttls: bool = True
    ssl_context: str | None = None
    timeout: int = 30
    retry_limit: int = 5

    @classmethod
    def from_connection(cls, conn: Mapping[str, Any]) -> SmtpSettings:
        """From a connection's fields (``host``, ``port``, ``login``, ``password``, ``extra``)."""
        extra = _extra(conn)
        port = int(conn["port"]) if conn.get("port") else None
        return cls(host=conn.get("host") or "", port=port,
                   from_email=extra.get("from_email"), login=conn.get("login") or "",
                   password=conn.get("password") or "",
                   use_ssl=not bool(extra.get("disable_ssl", False)),
                   starttls=not bool(extra.get("disable_tls", False)),
                   ssl_context=extra.get("ssl_context"), timeout=int(extra.get("timeout", 30)),
                   retry_limit=int(extra.get("retry_limit", 5)))


class SmtpMailer:
    """Sends through ``smtplib`` with the provider's sequence: connect (retried on disconnect),
    STARTTLS, login when both login and password are set, send (retried)."""

    def __init__(self, settings: SmtpSettings, name: str = "smtp") -> None:
        self.settings, self.name = settings, name

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        s = self.settings
        where = f"{s.host or '(no host)'}:{s.port or (465 if s.use_ssl else 25)}"
        if not s.from_email:
            raise AlertError(f"connection {self.name} has no 'from_email' in its extras; add the "
                             "sender address there")
        if s.ssl_context not in (None, "default", "none"):
            raise AlertError(f"connection {self.name}: extra 'ssl_context' must be 'default' or "
                             f"'none', got {s.ssl_context!r}")
        del message["From"]
        message["From"] = s.from_email
        context = None if s.ssl_context == "none" else ssl.create_default_context()
        try:
            with self._connect(context) as client:
                if s.starttls:
                    client.starttls(context=context)
                    client.ehlo()
                if s.login and s.password:
                    client.login(s.login, s.password)
                for attempt in range(s.retry_limit + 1):
                    try:
                        client.sendmail(s.from_email, list(recipients), message.as_string())
                        break
                    except (smtplib.SMTPException, OSError):
                        if attempt == s.retry_limit:
                            raise
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise AlertError(f"sending email through {self.name} ({where}) failed: "
                             f"{type(exc).__name__}: {exc}") from exc

    def _connect(self, context: ssl.SSLContext | None) -> smtplib.SMTP:
        s = self.settings
        for attempt in range(s.retry_limit + 1):
            try:
                if s.use_ssl:
                    return smtplib.SMTP_SSL(s.host, s.port or 0, timeout=s.timeout,
                                            context=context)
                return smtplib.SMTP(s.host, s.port or 0, timeout=s.timeout)
            except smtplib.SMTPServerDisconnected:
                if attempt == s.retry_limit:
                    raise
        raise AssertionError("unreachable")


def slack_webhook_url(conn: Mapping[str, Any], name: str = "slack") -> str:
    """The POST URL of a slackwebhook connection, built as ``SlackWebhookHook`` builds it."""
    token = (conn.get("password") or "").strip()
    if not token:
        raise AlertError(f"connection {name} has no webhook token in its password; put the token "
                         "(or the full webhook URL) there")
    if "://" in token:
        return token
    base = conn.get("host") or ""
    if "://" not in base:
        base = f"{conn.get('schema') or 'https'}://{base or 'hooks.slack.com/services'}"
    return (base.rstrip("/") + "/" + token.lstrip("/")).rstrip("/")


class WebhookPoster:
    """POSTs JSON with ``urllib``; anything but HTTP 200 is an error, as for the provider."""

    def __init__(self, url: str, timeout: float | None = None, name: str = "webhook") -> None:
        self.url, self.timeout, self.name = url, timeout or 30, name

    def post(self, payload: dict[str, Any]) -> None:
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or "?"
        if parts.scheme not in ("http", "https"):
            raise AlertError(f"webhook URL of {self.name} (host {host}) must be http or https, "
                             f"not {parts.scheme!r}")
        request = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json;charset=utf-8", "User-Agent": "tsad"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(300)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(300)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AlertError(f"webhook of {self.name} at {host} could not be reached: "
                             f"{reason}") from None
        if status != 200:
            detail = body.decode("utf-8", "replace").strip()
            raise AlertError(f"webhook of {self.name} at {host} answered HTTP {status}: {detail}")


def env_connection(conn_id: str) -> dict[str, Any] | None:
    """Connection ``conn_id`` from ``AIRFLOW_CONN_<ID>`` (JSON or URI), None when unset."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        return None
    if raw.lstrip().startswith("{"):
        try:
            return dict(json.loads(raw))
        except ValueError as exc:
            raise AlertError(f"AIRFLOW_CONN_{conn_id.upper()} is not valid JSON: {exc}") from None
    return _from_uri(raw)


def _from_uri(uri: str) -> dict[str, Any]:
    """Airflow's connection URI: ``type://login:password@host:port/schema?extra=...``, where a
    host with its own protocol is written ``type://http://login:password@host``, extras'
    values JSON-decoded (``airflow.models.connection.Connection._parse_from_uri``)."""
    scheme, rest = uri.split("://", 1) if "://" in uri else ("", uri)
    protocol = None
    if "://" in rest:
        protocol, rest = rest.split("://", 1)
        if "@" in protocol or ":" in protocol or "://" in rest:
            raise AlertError(f"connection URI of type {scheme!r} is not valid: a host with a "
                             "protocol is written type://protocol://login:password@host")
    parts = urllib.parse.urlsplit("//" + rest)
    unquote = urllib.parse.unquote
    host = unquote(parts.hostname or "")
    if "/" in host:  # an encoded path in the host: keep it as written
        host = unquote(parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0])
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        extra: Any = json.loads(query["__extra__"])
    else:
        extra = {k: _json_or_text(v) for k, v in query.items()}
    return {"conn_type": scheme.replace("-", "_"),
            "host": f"{protocol}://{host}" if protocol and host else host,
            "login": unquote(parts.username) if parts.username else parts.username,
            "password": unquote(parts.password) if parts.password else parts.password,
            "port": parts.port, "schema": unquote(parts.path[1:]) or None, "extra": extra}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value) if value else value
    except ValueError:
        return value


def _extra(conn: Mapping[str, Any]) -> dict[str, Any]:
    extra = conn.get("extra") or {}
    return dict(json.loads(extra) if isinstance(extra, str) else extra)


def env_transports(email_conn_id: str | None, slack_conn_id: str | None) -> Transports:
    """Transports for ``tsad run``: each configured connection found in the environment; one
    that is not is reported in the log (its route gets nothing, the log still does)."""
    email = slack = None
    for conn_id, kind in ((email_conn_id, "email"), (slack_conn_id, "slack")):
        if not conn_id:
            continue
        conn = env_connection(conn_id)
        if conn is None:
            log.warning("alerts.%s_conn_id=%s: no AIRFLOW_CONN_%s in the environment; outside "
                        "Airflow the digest goes to the log only", kind, conn_id, conn_id.upper())
        elif kind == "email":
            email = SmtpMailer(SmtpSettings.from_connection(conn), name=conn_id)
        else:
            timeout = _extra(conn).get("timeout")
            slack = WebhookPoster(slack_webhook_url(conn, conn_id),
                                  int(timeout) if timeout else None, name=conn_id)
    return Transports(email=email, slack=slack)


def log_digest(digest: Digest, logger: logging.Logger) -> None:
    """Write the digest to the task log: the one route that always works."""
    logger.info("%s\n%s", digest.subject, digest.text)
