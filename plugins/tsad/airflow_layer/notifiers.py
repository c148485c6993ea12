"""Pipeline failures, reported through Airflow's own notifiers on task callbacks.

Anomaly alerts are a task (records read back from SQL); a *failed task* is reported here, by
``on_failure_callback``. The routes come from tsad's config, resolved when the callback fires (not
when the DAG file is parsed): the failed task's sensor group's email and Slack connections, or
every group's when the task is not per group (``list_groups``). Delivery goes through the SMTP and
Slack providers' hooks exactly as the digests do (``connections.HookMailer``/``HookPoster``), so
one connection behaves one way for both.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def failed_group(context: Any, groups: list[str]) -> str | None:
    """The sensor group of the failed task instance, or None for a task that is not per group."""
    named = context.get("sensor_group")
    if named in groups:
        return str(named)
    ti = context.get("ti") or context.get("task_instance")
    label = getattr(ti, "rendered_map_index", None)
    return str(label) if label in groups else None


def failure_message(context: Any, group: str | None) -> tuple[str, str]:
    """``(subject, text)`` naming the DAG, task, group, run and the exception."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    where = f" ({group})" if group else ""
    subject = f"[tsad] FAILED {dag_id} {task_id}{where}"
    exc = context.get("exception")
    if type(exc).__name__ == "AirflowFailException" and exc.__cause__ is not None:
        exc = exc.__cause__  # tasks.fail_fast's wrapper: report the error in tsad's words
    lines = [
        f"Task {task_id}{where} of DAG {dag_id} failed.",
        f"Run: {run_id}",
        f"Data interval: {_iso(context.get('data_interval_start'))} .. "
        f"{_iso(context.get('data_interval_end'))}",
        f"Try: {getattr(ti, 'try_number', '?')}",
        f"Error: {type(exc).__name__ + ': ' + str(exc) if exc else 'see the task log'}",
    ]
    log_url = getattr(ti, "log_url", None)
    if log_url:
        lines.append(f"Log: {log_url}")
    return subject, "\n".join(lines)


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "?")


class PipelineFailureNotifier(BaseNotifier):
    """Email and Slack a failed task to its sensor group's alert routes (see module docstring)."""

    template_fields = ()

    def __init__(self, config_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def notify(self, context: Any) -> None:
        from tsad.airflow_layer.connections import HookMailer, HookPoster
        from tsad.alerts import email_message
        from tsad.config import load_config

        config = load_config(self.config_path)
        names = [g.name for g in config.groups]
        group = failed_group(context, names)
        routes = [config.group(group).alerts] if group else [g.alerts for g in config.groups]
        subject, text = failure_message(context, group)
        emails: dict[str, list[str]] = {}
        for r in routes:
            if r.email_conn_id:
                who = r.email_to or [a for route in r.routes for a in route.email_to]
                emails.setdefault(r.email_conn_id, [])
                emails[r.email_conn_id] += [a for a in who if a not in emails[r.email_conn_id]]
        slack = list(dict.fromkeys(r.slack_conn_id for r in routes if r.slack_conn_id))
        body = f"<html><body><pre>{html.escape(text)}</pre></body></html>"
        errors = []
        for conn_id, recipients in emails.items():
            try:
                HookMailer(conn_id).send(email_message(subject, text, body, recipients),
                                         recipients)
            except Exception as exc:  # noqa: BLE001 - try every route, then report
                errors.append(f"email via {conn_id}: {exc}")
        for conn_id in slack:
            try:
                HookPoster(conn_id).post({"text": f"{subject}\n```{text}```"})
            except Exception as exc:  # noqa: BLE001
                errors.append(f"Slack via {conn_id}: {exc}")
        if not emails and not slack:
            log.warning("%s: no alert routes configured; failure reported in the log only", subject)
        if errors:
            raise RuntimeError(f"failure notification incomplete: {'; '.join(errors)}")


def failure_notifiers() -> list[BaseNotifier]:
    """What the DAG passes as ``on_failure_callback`` (cheap to build at parse time)."""
    return [PipelineFailureNotifier()]
