"""Airflow connections -> what the core takes: SQLAlchemy URLs, and alert transports.

Secrets stay in Airflow connections (or ``AIRFLOW_CONN_*`` environment variables); they are
passed to the core in memory and never logged or written to records. Every email and Slack post
inside Airflow, anomaly digests (``tasks.alert``) and failure notices (``notifiers``) alike, goes
through the providers' ``SmtpHook`` and ``SlackWebhookHook``: one connection, one behaviour
(SSL, STARTTLS, login, retries and timeouts as its extras say).
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from airflow.sdk import BaseHook

from tsad.alerts import AlertError, Transports

_SQLALCHEMY_SCHEMES = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2",
                       "mysql": "mysql+pymysql"}


def sqlalchemy_url(conn_id: str) -> str:
    """A SQLAlchemy URL from a postgres, sqlite, mysql or generic connection."""
    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    uri = conn.get_uri()
    scheme, rest = uri.split("://", 1)
    return f"{_SQLALCHEMY_SCHEMES.get(scheme, scheme)}://{rest}"


def smtp_endpoint(conn_id: str) -> tuple[str, int]:
    """``(host, port)`` of an SMTP connection, the port defaulted as ``SmtpHook`` does (465 with
    SSL, its default, else 25): what ``tsad config check`` tries to reach."""
    conn = BaseHook.get_connection(conn_id)
    ssl = not (conn.extra_dejson or {}).get("disable_ssl", False)
    return str(conn.host), int(conn.port or (465 if ssl else 25))


def slack_host(conn_id: str) -> str:
    """The host a Slack webhook connection posts to (its URL built as ``SlackWebhookHook``
    builds it)."""
    from tsad.alerts.delivery import slack_webhook_url

    conn = BaseHook.get_connection(conn_id)
    url = slack_webhook_url({"password": conn.password, "host": conn.host,
                             "schema": conn.schema}, conn_id)
    return url.split("/")[2]


def optional_url(url: str | None, conn_id: str | None) -> str | None:
    """``url`` as configured, or the URL behind ``conn_id`` when that is what the config names."""
    return sqlalchemy_url(conn_id) if url is None and conn_id else url


class HookMailer:
    """Email through ``SmtpHook``: the hook connects, negotiates SSL/STARTTLS and logs in as the
    connection says; the message is tsad's own (text + HTML with inline plots)."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        where = f"connection {self.conn_id}"
        try:
            with SmtpHook(smtp_conn_id=self.conn_id) as hook:
                where += f" ({hook.host}:{hook.port or (465 if hook.use_ssl else 25)})"
                sender = hook.from_email
                if not sender:
                    raise AlertError(f"{where} has no 'from_email' in its extras; add the sender "
                                     "address there")
                del message["From"]
                message["From"] = sender
                # send_email_smtp builds its own MIME (HTML only, files as octet-stream
                # attachments); this message needs multipart/related, so it is sent on the
                # client the hook opened, with the hook's retry rule.
                client = hook._smtp_client
                for attempt in range(hook.smtp_retry_limit + 1):
                    try:
                        client.sendmail(sender, list(recipients), message.as_string())
                        break
                    except Exception:
                        if attempt == hook.smtp_retry_limit:
                            raise
        except AlertError:
            raise
        except Exception as exc:  # noqa: BLE001 - the hook raises smtplib, ssl and Airflow errors
            raise AlertError(f"sending email through {where} failed: "
                             f"{type(exc).__name__}: {exc}") from exc


class HookPoster:
    """Slack through ``SlackWebhookHook.send_dict`` (token, base URL, timeout, proxy)."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id

    def post(self, payload: dict[str, Any]) -> None:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        try:
            SlackWebhookHook(slack_webhook_conn_id=self.conn_id).send_dict(payload)
        except Exception as exc:  # noqa: BLE001 - slack_sdk and Airflow errors alike
            raise AlertError(f"posting to Slack through connection {self.conn_id} failed: "
                             f"{type(exc).__name__}: {exc}") from exc


def hook_transports(email_conn_id: str | None, slack_conn_id: str | None) -> Transports:
    """The transports of a group's alert routes (None where a route is not configured)."""
    return Transports(email=HookMailer(email_conn_id) if email_conn_id else None,
                      slack=HookPoster(slack_conn_id) if slack_conn_id else None)
