"""Sending a digest: email over SMTP, a Slack-compatible webhook, and the task log.

Connections are resolved by the caller (the Airflow layer or the CLI): these functions take plain
settings and use only the standard library.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tsad.alerts.digest import Digest
from tsad.errors import TsadError

SLACK_SECTION_LIMIT = 3000  # characters in one Slack section block
SLACK_MAX_IMAGES = 5  # image blocks per post; the rest are reachable from the digest table


class AlertError(TsadError):
    """An alert could not be delivered; the message names the server or host, never a secret."""


def send_email(
    digest: Digest,
    *,
    host: str,
    port: int,
    sender: str,
    recipients: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    use_ssl: bool = False,
    attachments: Sequence[Path] = (),
    timeout: float = 30,
) -> None:
    """Send the digest as text + HTML, with files attached (PNG plots); ``use_ssl`` is port 465."""
    if not recipients:
        raise ValueError("send_email needs at least one recipient")
    msg = EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    for path in map(Path, attachments):
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype,
                           filename=path.name)
    context = ssl.create_default_context()
    try:
        smtp_cls = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if use_ssl else {}
        with smtp_cls(host, port, timeout=timeout, **kwargs) as smtp:
            if starttls and not use_ssl:
                smtp.starttls(context=context)
            if username:
                smtp.login(username, password or "")
            smtp.send_message(msg, from_addr=sender, to_addrs=list(recipients))
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError(f"sending the digest through SMTP server {host}:{port} failed: "
                         f"{type(exc).__name__}: {exc}") from exc


def post_webhook(digest: Digest, url: str, timeout: float = 10) -> None:
    """POST the digest as Slack-compatible JSON; errors name the host, never the secret path."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.scheme not in ("http", "https"):
        raise AlertError(f"webhook URL for host {host} must be http or https, not {parts.scheme!r}")
    body = json.dumps(_webhook_payload(digest)).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "tsad"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise AlertError(f"webhook at {host} answered HTTP {exc.code} {exc.reason}: {detail}") \
            from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AlertError(f"webhook at {host} could not be reached: {reason}") from None


def _webhook_payload(digest: Digest) -> dict[str, Any]:
    # Slack's mrkdwn treats & < > as control characters.
    table = digest.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    mention = f"{digest.mention} " if digest.mention else ""
    limit = SLACK_SECTION_LIMIT - 10 - len(mention)
    if len(table) > limit:
        table = table[: limit - 20] + "\n... (truncated)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": digest.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{mention}```{table}```"}},
    ]
    for alt, url in digest.images[:SLACK_MAX_IMAGES]:
        blocks.append({"type": "image", "image_url": url, "alt_text": alt[:2000],
                       "title": {"type": "plain_text", "text": alt[:150]}})
    return {"text": f"{mention}{digest.subject}", "blocks": blocks}


def log_digest(digest: Digest, logger: logging.Logger) -> None:
    """Write the digest to the task log: the one route that always works."""
    logger.info("%s\n%s", digest.subject, digest.text)
