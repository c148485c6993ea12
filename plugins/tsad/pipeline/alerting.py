"""Step 5: the day's new events sent as one digest per group (email, webhook, always a log)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from tsad.alerts import (build_digest, log_digest, new_events, plan_emails, plot_files,
                         post_webhook, published_plot_url, send_email, split_snoozed)
from tsad.dates import day_bounds
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.storage.records import read_events


def alert(ctx: GroupDay, *, smtp: dict[str, Any] | None = None,
          webhook_url: str | None = None) -> dict[str, Any]:
    """Send the day's new events (ongoing ones are not repeated, snoozed ones held back): one
    email per recipient set (severity routes) with the plots attached, one webhook post; always
    log the digest. ``smtp`` and ``webhook_url`` come from the Airflow layer's connections."""
    group, day = ctx.group, ctx.day
    routes = group.alerts
    engine = ctx.records()
    today, yesterday = retrying(
        lambda: (read_events(engine, group.name, day),
                 read_events(engine, group.name, day - timedelta(days=1))),
        f"reading the events of {ctx.label()}")
    fresh = new_events(today, yesterday, day_bounds(day, ctx.config.site_timezone)[0],
                       group.sampling_seconds, tolerance_steps=group.events.merge_gap + 1)
    fresh, held = split_snoozed(fresh, routes.snooze, day)
    for event, snooze in held:
        log.info("group %s: event at %s snoozed until %s (%s)", ctx.label(), event["start_ts"],
                 snooze.until, snooze.reason or "no reason given")
    result: dict[str, Any] = {"n_events": len(today), "n_new": len(fresh), "n_snoozed": len(held),
                              "sent": [], "emails": []}
    plot_url = (partial(published_plot_url, routes.plot_base_url, ctx.config.data_dir)
                if routes.plot_base_url else None)
    digest = build_digest(group.name, day, fresh, plot_files(fresh), routes=routes.routes,
                          plot_url=(lambda e: plot_url(e.get("plot_path"))) if plot_url else None,
                          adopt_after_days=group.training.adopt_after_days)
    if digest is None:
        log.info("group %s: no new anomaly events (%d ongoing, %d snoozed)", ctx.label(),
                 len(today), len(held))
        return result
    log_digest(digest, log)
    if smtp:
        for delivery in plan_emails(fresh, routes.email_to, routes.routes):
            files = plot_files(delivery.events)
            mail = build_digest(group.name, day, delivery.events, files, routes=routes.routes,
                                adopt_after_days=group.training.adopt_after_days)
            assert mail is not None
            send_email(mail, recipients=list(delivery.recipients), attachments=files, **smtp)
            result["emails"].append({"to": list(delivery.recipients),
                                     "n_events": len(delivery.events), "n_plots": len(files)})
        if result["emails"]:
            result["sent"].append("email")
    if webhook_url:
        post_webhook(digest, webhook_url)
        result["sent"].append("webhook")
    return result
