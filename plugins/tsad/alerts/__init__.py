from tsad.alerts.digest import *  # noqa: F403  (temporary: split below)
from tsad.alerts.digest import AlertError, Digest, build_digest, log_digest, new_events, plan_emails, plot_files, post_webhook, published_plot_url, send_email, severity_level, split_snoozed  # noqa: F401
