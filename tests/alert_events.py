"""Anomaly events and severity routes as the alert tests build them (digests, delivery)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from tsad.config import SeverityRoute

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


ROUTES = [SeverityRoute(name="warning", min_severity=1.0),
          SeverityRoute(name="critical", min_severity=5.0, email_to=["oncall@plant.example"],
                        slack_mention="<!channel>")]
