"""Step 5: the day's new events sent as one digest per group (email, Slack, always the log)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from tsad.alerts import (Transports, build_digest, digest_email, env_transports, log_digest,
                         new_events, plan_emails, provisional_note, published_plot_url,
                         slack_payload, split_snoozed)
from tsad.dates import day_bounds
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.storage.records import model_metrics, read_events
from tsad.storage.snoozes import snoozes_for


def alert(ctx: GroupDay, transports: Transports | None = None) -> dict[str, Any]:
    """Send the day's new events (ongoing ones are not repeated; those snoozed in the config or
    on the event page, ``alert_snooze``, are held back): one email per recipient set (severity
    routes) with the plots inline, one Slack post; always log the digest. ``transports`` are the Airflow layer's (the providers' hooks); without them
    (``tsad run``) the connections come from ``AIRFLOW_CONN_*`` environment variables."""
    group, day, config = ctx.group, ctx.day, ctx.config
    routes = group.alerts
    if transports is None:
        transports = env_transports(routes.email_conn_id, routes.slack_conn_id)
    engine = ctx.records()
    today, yesterday = retrying(
        lambda: (read_events(engine, group.name, day),
                 read_events(engine, group.name, day - timedelta(days=1))),
        f"reading the events of {ctx.label()}")
    fresh = new_events(today, yesterday, day_bounds(day, config.site_timezone)[0],
                       group.sampling_seconds, tolerance_steps=group.events.merge_gap + 1)
    snoozes = [*routes.snooze, *retrying(lambda: snoozes_for(engine, group.name, day),
                                         f"reading the snoozes of {ctx.label()}")]
    fresh, held = split_snoozed(fresh, snoozes, day)
    for event, snooze in held:
        log.info("group %s: event at %s snoozed until %s (%s)", ctx.label(), event["start_ts"],
                 snooze.until, snooze.reason or "no reason given")
    result: dict[str, Any] = {"n_events": len(today), "n_new": len(fresh), "n_snoozed": len(held),
                              "sent": [], "emails": []}
    plot_url = (partial(published_plot_url, routes.plot_base_url, config.data_dir)
                if routes.plot_base_url else None)
    versions = sorted({e["model_version_id"] for e in fresh if e.get("model_version_id")})
    metrics = retrying(lambda: model_metrics(engine, versions),
                       f"reading the model versions of {ctx.label()}") if versions else {}
    notes = [provisional_note(v, m["history"], group.training.days) for v, m in metrics.items()
             if (m.get("history") or {}).get("provisional")]
    digest_of = partial(build_digest, group.name, day, routes=routes.routes,
                        site_timezone=config.site_timezone, ui_base_url=routes.ui_base_url,
                        adopt_after_days=group.training.adopt_after_days, model_notes=notes)
    digest = digest_of(fresh, plot_url=(lambda e: plot_url(e.get("plot_path"))) if plot_url
                       else None)
    if digest is None:
        log.info("group %s: no new anomaly events (%d ongoing, %d snoozed)", ctx.label(),
                 len(today), len(held))
        return result
    log_digest(digest, log)
    if transports.email is not None:
        for plan in plan_emails(fresh, routes.email_to, routes.routes):
            mail = digest_of(plan.events)
            assert mail is not None
            transports.email.send(digest_email(mail, plan.recipients), plan.recipients)
            result["emails"].append({"to": list(plan.recipients),
                                     "n_events": len(plan.events), "n_plots": len(mail.plots)})
        if result["emails"]:
            result["sent"].append("email")
    if transports.slack is not None:
        transports.slack.post(slack_payload(digest))
        result["sent"].append("webhook")
    return result
