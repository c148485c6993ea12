"""Airflow connections -> the plain settings the core takes (URLs, SMTP settings).

Secrets stay in Airflow connections (or ``AIRFLOW_CONN_*`` environment variables); they are
passed to the core in memory and never logged or written to records.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

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


def optional_url(url: str | None, conn_id: str | None) -> str | None:
    """``url`` as configured, or the URL behind ``conn_id`` when that is what the config names."""
    return sqlalchemy_url(conn_id) if url is None and conn_id else url


def smtp_settings(conn_id: str) -> dict[str, Any]:
    """Keyword arguments for ``tsad.alerts.send_email`` from an smtp connection."""
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    return {
        "host": conn.host or "localhost",
        "port": int(conn.port or 25),
        "sender": extra.get("from_email", f"tsad@{conn.host or 'localhost'}"),
        "username": conn.login or None,
        "password": conn.password or None,
        "starttls": not bool(extra.get("disable_tls", False)),
    }


def webhook_url(conn_id: str) -> str:
    """The POST URL of a slackwebhook (or http/generic) connection.

    The Slack provider keeps the webhook token in the password and the host as the base URL;
    a full ``http(s)://`` URL in either field is used as is.
    """
    conn = BaseHook.get_connection(conn_id)
    for candidate in (conn.password, conn.host):
        if candidate and candidate.startswith(("http://", "https://")):
            if candidate == conn.host and conn.password:
                return f"{candidate.rstrip('/')}/{conn.password.lstrip('/')}"
            return candidate
    host = (conn.host or "hooks.slack.com/services").rstrip("/")
    return f"https://{host}/{(conn.password or '').lstrip('/')}"
