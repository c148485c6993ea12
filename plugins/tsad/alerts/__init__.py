"""Anomaly alerts: which events (``routing``), the message (``digest``), sending it
(``delivery``)."""

from tsad.alerts.delivery import (AlertError, Mailer, Poster, SmtpMailer, SmtpSettings,
                                  Transports, WebhookPoster, env_connection, env_transports,
                                  log_digest, slack_webhook_url)
from tsad.alerts.digest import (EVENT_PAGE, Digest, InlinePlot, build_digest, digest_email,
                                email_message, event_page_url, plot_files, provisional_note,
                                published_plot_url, slack_payload)
from tsad.alerts.routing import (EmailPlan, new_events, plan_emails, severity_level,
                                 split_snoozed)

__all__ = ["EVENT_PAGE", "AlertError", "Digest", "EmailPlan", "InlinePlot", "Mailer", "Poster",
           "SmtpMailer", "SmtpSettings", "Transports", "WebhookPoster", "build_digest",
           "digest_email", "email_message", "env_connection", "env_transports", "event_page_url",
           "log_digest", "new_events", "plan_emails", "plot_files", "provisional_note",
           "published_plot_url",
           "severity_level", "slack_payload", "slack_webhook_url", "split_snoozed"]
