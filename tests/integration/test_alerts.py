"""Digests (links, site time, inline plots) and routing (levels, snoozes, recipients), outside
Airflow; delivery to real servers is tests/integration/test_alert_delivery.py."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from alert_events import DAY, MIDNIGHT, PNG, ROUTES, STEP, UTC, event

from tsad.alerts import (
    EVENT_PAGE,
    build_digest,
    event_page_url,
    log_digest,
    new_events,
    plan_emails,
    plot_files,
    published_plot_url,
    severity_level,
    slack_payload,
    split_snoozed,
)
from tsad.config import Snooze


# ---------------------------------------------------------------- new_events


def test_event_continuing_across_midnight_is_dropped() -> None:
    yesterday = [event(MIDNIGHT - timedelta(minutes=30), minutes=29)]  # ends 23:59
    today = [event(MIDNIGHT), event(MIDNIGHT + timedelta(hours=5))]
    assert new_events(today, yesterday, MIDNIGHT, STEP) == today[1:]


@pytest.mark.parametrize(
    ("yesterday_end", "today_start"),
    [
        (MIDNIGHT - timedelta(minutes=5), MIDNIGHT),  # yesterday's event ended well before midnight
        (MIDNIGHT - timedelta(minutes=1), MIDNIGHT + timedelta(minutes=2)),  # today's starts later
    ],
)
def test_events_not_touching_midnight_are_new(yesterday_end: datetime,
                                              today_start: datetime) -> None:
    yesterday = [event(yesterday_end - timedelta(minutes=10), minutes=10)]
    today = [event(today_start)]
    assert new_events(today, yesterday, MIDNIGHT, STEP) == today


def test_no_yesterday_keeps_everything_and_naive_day_start_is_refused() -> None:
    today = [event(MIDNIGHT)]
    assert new_events(today, [], MIDNIGHT, STEP) == today
    with pytest.raises(ValueError, match="time zone"):
        new_events(today, [], MIDNIGHT.replace(tzinfo=None), STEP)


# ---------------------------------------------------------------- digest


def test_digest_text_and_subject() -> None:
    events = [event(MIDNIGHT + timedelta(hours=14, minutes=5), minutes=75, severity=3.42),
              event(MIDNIGHT + timedelta(hours=3), minutes=12, severity=1.25)]
    digest = build_digest("pumps", DAY, events)
    assert digest is not None
    assert digest.subject == "[tsad] pumps 2026-11-20: 2 anomaly events (max severity 3.4)"
    lines = digest.text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("start (UTC)"))
    assert lines[header + 1].startswith("2026-11-20 03:00:00  2026-11-20 03:12:00  12m 00s")
    assert "1h 15m" in lines[header + 2] and "3.4" in lines[header + 2]
    assert "flow 71%, temp 20%" in lines[header + 1] and "pumps/v0003" in lines[header + 1]
    assert "<table" in digest.html and "flow 71%" in digest.html
    assert build_digest("pumps", DAY, []) is None
    single = build_digest("pumps", DAY, events[:1])
    assert single is not None and ": 1 anomaly event (max" in single.subject


def test_digest_shows_site_time_beside_utc() -> None:
    # 2026-11-20 is winter time in Berlin (CET, UTC+1); 2026-07-01 summer time (CEST, UTC+2)
    winter = event(MIDNIGHT + timedelta(hours=23, minutes=30), minutes=45)
    digest = build_digest("pumps", DAY, [winter], site_timezone="Europe/Berlin")
    assert digest is not None
    lines = digest.text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("start (Europe/Berlin)"))
    assert lines[header].split()[:8] == ["start", "(Europe/Berlin)", "end", "(Europe/Berlin)",
                                         "start", "(UTC)", "end", "(UTC)"]
    row = lines[header + 1]
    # the local day is the next one: the table says so instead of leaving it to the reader
    assert row.startswith("2026-11-21 00:30:00 CET  2026-11-21 01:15:00 CET  "
                          "2026-11-20 23:30:00  2026-11-21 00:15:00  45m 00s")
    assert "2026-11-21 00:30:00 CET" in digest.html and "2026-11-20 23:30:00" in digest.html
    summer = build_digest("pumps", date(2026, 7, 1),
                          [event(datetime(2026, 7, 1, 10, tzinfo=UTC))],
                          site_timezone="Europe/Berlin")
    assert summer is not None and "2026-07-01 12:00:00 CEST" in summer.text
    utc_site = build_digest("pumps", DAY, [winter])  # a UTC site gets no duplicate columns
    assert utc_site is not None and "(UTC)" in utc_site.text and "CET" not in utc_site.text


def test_digest_links_each_event_to_its_page() -> None:
    events = [event(MIDNIGHT, id=41), event(MIDNIGHT + timedelta(hours=2), id=42, severity=6.0)]
    digest = build_digest("pumps", DAY, events, ui_base_url="https://airflow.plant.example/",
                          site_timezone="Europe/Berlin")
    assert digest is not None
    urls = ["https://airflow.plant.example/tsad/events/41",
            "https://airflow.plant.example/tsad/events/42"]
    assert event_page_url("https://airflow.plant.example/", 41) == urls[0]
    assert EVENT_PAGE == "/tsad/events/{event_id}"
    assert [url for _, url in digest.links] == urls
    assert digest.links[1][0] == "2026-11-20 03:00:00 CET (2026-11-20 02:00:00 UTC), severity 6.0"
    for url in urls:
        assert url in digest.text and f'href="{url}"' in digest.html
        assert url not in digest.table  # Slack's code block: the links are a block of their own
    payload = slack_payload(digest)
    (links,) = [b for b in payload["blocks"] if "Event pages" in b.get("text", {}).get("text", "")]
    assert f"<{urls[1]}|2026-11-20 03:00:00 CET (2026-11-20 02:00:00 UTC), severity 6.0>" \
        in links["text"]["text"]
    unlinked = build_digest("pumps", DAY, events)  # no ui_base_url: no links, no empty block
    assert unlinked is not None and not unlinked.links and "/tsad/events" not in unlinked.html
    assert not [b for b in slack_payload(unlinked)["blocks"]
                if "Event pages" in b.get("text", {}).get("text", "")]


def test_nothing_says_attached() -> None:
    """Plots are inline in the email; the text, the log and Slack carry none and say nothing."""
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, plot_path="/nonexistent/event-1.png")],
                          plot_url=lambda e: "https://plots.example/event-1.png")
    assert digest is not None and digest.plots == ()
    assert "Attached" not in digest.text + digest.html + json.dumps(slack_payload(digest))


def test_sustained_event_is_alerted_daily_with_a_note() -> None:
    yesterday = [event(MIDNIGHT - timedelta(hours=24), minutes=24 * 60 - 1, kind="sustained")]
    sustained = event(MIDNIGHT, minutes=24 * 60 - 5, kind="sustained",
                      since_date=date(2026, 11, 18))
    assert new_events([sustained], yesterday, MIDNIGHT, STEP) == [sustained]
    digest = build_digest("pumps", DAY, [sustained], adopt_after_days=5)
    assert digest is not None
    assert "SUSTAINED since 2026-11-18 (day 3)" in digest.text
    assert "marks the event 'New operating point'" in digest.text
    assert "lasted 5 days (training.adopt_after_days): from 2026-11-23 tsad retrains" \
        in digest.text
    plain = build_digest("pumps", DAY, [sustained])
    assert plain is not None and "adopt_after_days" not in plain.text


def test_log_digest(caplog: pytest.LogCaptureFixture) -> None:
    digest = build_digest("pumps", DAY, [event(MIDNIGHT, id=3)], ui_base_url="http://ui")
    assert digest is not None
    with caplog.at_level(logging.INFO, logger="tsad.test"):
        log_digest(digest, logging.getLogger("tsad.test"))
    assert digest.subject in caplog.text and "flow 71%" in caplog.text
    assert "http://ui/tsad/events/3" in caplog.text and "Attached" not in caplog.text





def test_severity_level_is_the_highest_route_reached() -> None:
    assert severity_level(0.9, ROUTES) is None
    assert severity_level(1.0, ROUTES) == "warning"
    assert severity_level(4.99, ROUTES) == "warning"
    assert severity_level(7.0, ROUTES) == "critical"
    assert severity_level(7.0, []) is None


def test_snooze_holds_back_a_group_or_the_events_a_channel_leads() -> None:
    flow_led = event(MIDNIGHT, top_channels_json=[{"channel": "flow", "contribution": 0.7},
                                                  {"channel": "temp", "contribution": 0.2}])
    temp_led = event(MIDNIGHT + timedelta(hours=2),
                     top_channels_json=[{"channel": "temp", "contribution": 0.6},
                                        {"channel": "flow", "contribution": 0.3}])
    flow_sensor = Snooze(until="2026-11-21", channels=["flow"], reason="sensor swap")
    keep, held = split_snoozed([flow_led, temp_led], [flow_sensor], DAY)
    assert keep == [temp_led] and held == [(flow_led, flow_sensor)]
    # the snooze ends on its 'until' day: alerts resume
    assert split_snoozed([flow_led], [flow_sensor], date(2026, 11, 21)) == ([flow_led], [])
    whole_group = Snooze(until="2026-12-01")
    assert split_snoozed([flow_led, temp_led], [whole_group], DAY)[0] == []


def test_plan_emails_routes_by_severity_one_email_per_recipient_set() -> None:
    low = event(MIDNIGHT, severity=2.0)
    high = event(MIDNIGHT + timedelta(hours=1), severity=8.0)
    plan = plan_emails([low, high], ["ops@plant.example"], ROUTES)
    assert [(d.recipients, len(d.events)) for d in plan] == [
        (("oncall@plant.example",), 1), (("ops@plant.example",), 2)]
    assert plan[0].events == (high,)
    # a recipient listed twice gets one email
    twice = plan_emails([high], ["oncall@plant.example"], ROUTES)
    assert [(d.recipients, len(d.events)) for d in twice] == [(("oncall@plant.example",), 1)]
    assert plan_emails([low], [], ROUTES) == []  # nobody routed: no email


def test_digest_with_levels_plots_and_mention(tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "group=pumps" / "date=2026-11-20" / "event-1.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(PNG)
    high = event(MIDNIGHT, severity=8.0, plot_path=str(plot))
    low = event(MIDNIGHT + timedelta(hours=1), severity=2.0, plot_path=str(tmp_path / "gone.png"))
    assert plot_files([low, high]) == [plot]  # existing files only, most severe first
    url = published_plot_url("https://plots.example/tsad/", tmp_path, str(plot))
    assert url == "https://plots.example/tsad/group%3Dpumps/date%3D2026-11-20/event-1.png"
    assert published_plot_url("https://p", tmp_path, "/elsewhere/x.png") is None

    digest = build_digest("pumps", DAY, [low, high], routes=ROUTES,
                          plot_url=lambda e: published_plot_url("https://p", tmp_path,
                                                                e.get("plot_path")))
    assert digest is not None
    assert digest.subject.startswith("[tsad] CRITICAL pumps 2026-11-20: 2 anomaly events")
    assert "level" in digest.text and "critical" in digest.text and "warning" in digest.text
    assert digest.mention == "<!channel>"
    assert digest.images == (("pumps 2026-11-20 00:00:00 severity 8.0",
                              "https://p/group%3Dpumps/date%3D2026-11-20/event-1.png"),)
    assert [p.path for p in digest.plots] == [plot]  # the email shows the one plot on disk
    warning_only = build_digest("pumps", DAY, [low], routes=ROUTES)
    assert warning_only is not None and warning_only.mention is None
    assert warning_only.subject.startswith("[tsad] WARNING pumps")


def test_alert_config_reads_routes_and_snoozes() -> None:
    from tsad.config import AlertConfig, from_dict
    from tsad.errors import ConfigError

    cfg = from_dict(AlertConfig, {
        "email_conn_id": "smtp_default", "email_to": ["ops@x"],
        "routes": [{"name": "critical", "min_severity": 5, "email_to": ["oncall@x"]}],
        "snooze": [{"until": "2026-12-01", "channels": ["flow"], "reason": "swap"}],
        "plot_base_url": "https://plots.example"})
    assert cfg.routes[0].min_severity == 5.0 and cfg.snooze[0].until_day == date(2026, 12, 1)
    with pytest.raises(ConfigError, match="until"):
        from_dict(AlertConfig, {"snooze": [{"until": "next week"}]})
    with pytest.raises(ConfigError, match="min_severity"):
        from_dict(AlertConfig, {"routes": [{"name": "low", "min_severity": 0.5}]})
    with pytest.raises(ConfigError, match="duplicate"):
        from_dict(AlertConfig, {"routes": [{"name": "a", "min_severity": 2},
                                           {"name": "a", "min_severity": 3}]})
