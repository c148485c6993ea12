"""The event page's model panel says what a model kept of the false alarms a person marked
(``metrics_json.known_normal``, ``tsad.model.known_normal``) and by how much its threshold rose."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from tsad.airflow_layer.ui.pages import _model


def model(**metrics: Any) -> dict[str, Any]:
    return {"id": "pumps/v0007", "detector_kind": "conv1d", "training_start": date(2027, 1, 5),
            "training_end": date(2027, 1, 11), "threshold": 21.21,
            "threshold_strategy": "quantile",
            "created_at": datetime(2027, 1, 12, tzinfo=timezone.utc),
            "created_by_run": "scheduled__2027-01-12", "metrics_json": metrics}


def test_the_panel_says_how_far_a_false_alarm_raised_the_threshold() -> None:
    html = _model(model(known_normal={"periods": 2, "rows": 35, "peak": 14.1412,
                                      "raised_from": 17.3152}), "pumps/v0007")
    assert "2 period(s) marked false alarm kept in training" in html
    assert "threshold raised from 17.3152" in html and "their peak 14.1412" in html


def test_the_panel_says_when_the_threshold_already_cleared_them() -> None:
    html = _model(model(known_normal={"periods": 1, "rows": 20, "peak": 3.0,
                                      "raised_from": None}), "pumps/v0007")
    assert "the threshold already cleared them" in html
    assert "false alarms learned</div><div>-" in _model(model(), "pumps/v0007")
