"""Shared fixtures: a small plant config in a temp folder, and a throwaway Airflow home.

Airflow reads its configuration when first imported, so the Airflow variables are set here, at
collection time, before any test module imports it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# pg_server_url, pg_url, pg_factory, and db_url (parametrised over SQLite and PostgreSQL).
pytest_plugins = ["pg_fixture"]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="tsad-airflow-"))

from tsad.airflow_layer.demo import airflow_environment  # noqa: E402  (imports no Airflow)

os.environ.update(airflow_environment(REPO, _AIRFLOW_HOME))


def small_plant(tmp: Path, *, days: int = 3, sampling_seconds: int = 300) -> dict:
    """Two small groups (SQL long and wide) that train in seconds."""
    common = {
        "sampling_seconds": sampling_seconds,
        "window": {"length": 16, "stride": 4},
        "model": {"kind": "conv1d", "hidden": 16, "latent": 4, "epochs": 6, "batch_size": 64},
        "training": {"days": days, "max_model_age_days": 7},
        "events": {"min_points": 2, "merge_gap": 3, "top_channels": 2},
    }
    historian = f"sqlite:///{tmp}/historian.db"
    return {
        "site_timezone": "UTC",
        "data_dir": str(tmp / "data"),
        "models_dir": str(tmp / "models"),
        "database": {"url": f"sqlite:///{tmp}/tsad.db"},
        "groups": [
            {"name": "pumps", "channels": ["flow", "pressure", "current", "temp"],
             "source": {"kind": "sql", "url": historian, "table": "pump_readings", "layout": "long",
                        "timestamp_column": "ts"}, **common},
            {"name": "boiler", "channels": ["steam", "level", "flue"],
             "source": {"kind": "sql", "url": historian, "table": "boiler_readings", "layout": "wide",
                        "timestamp_column": "ts"}, **common},
        ],
    }


def detect(ctx: Any, model_path: str) -> dict:
    """Score an unsharded group's day with the model at ``model_path`` and write its records:
    the DAG's score and detect tasks, in this process."""
    from tsad import pipeline

    pipeline.score(ctx, model_path)
    return pipeline.record(ctx)


@pytest.fixture
def plant_config_file(tmp_path: Path) -> Path:
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump(small_plant(tmp_path)))
    return file


@pytest.fixture(scope="session")
def airflow_ready() -> Path:
    """A migrated Airflow metadata database with the training pool (once per session)."""
    from tsad.airflow_layer.demo import prepare_airflow

    prepare_airflow(airflow_environment(REPO, _AIRFLOW_HOME))
    return _AIRFLOW_HOME
