"""Anomaly alerts: which events (``routing``), the message (``digest``), sending it (``delivery``)."""

from tsad.alerts.delivery import AlertError, log_digest, post_webhook, send_email
from tsad.alerts.digest import Digest, build_digest, plot_files, published_plot_url
from tsad.alerts.routing import (EmailPlan, new_events, plan_emails, severity_level,
                                 split_snoozed)

__all__ = ["AlertError", "Digest", "EmailPlan", "build_digest", "log_digest", "new_events",
           "plan_emails", "plot_files", "post_webhook", "published_plot_url", "send_email",
           "severity_level", "split_snoozed"]
