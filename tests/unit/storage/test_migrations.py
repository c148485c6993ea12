"""Alembic migrations: tsad's own version table, the whole metadata, idempotent, serialized, and
never at DAG parse time; ``tsad db upgrade`` on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tsad.cli import main
from tsad.storage import migrate
from tsad.storage.engine import get_engine

from conftest import REPO  # noqa: E402


def tables(url: str) -> set[str]:
    return set(sa.inspect(get_engine(url)).get_table_names())


def test_upgrade_creates_every_table_under_tsads_version_table(db_url: str) -> None:
    assert migrate.current(db_url) is None
    assert migrate.upgrade(db_url) == migrate.head() == "0003"
    expected = set(migrate.load_metadata().tables)
    assert {"model_version", "detection_run", "anomaly_event", "anomaly_point",
            "alert_snooze"} <= expected
    assert expected | {migrate.VERSION_TABLE} <= tables(db_url)
    assert "alembic_version" not in tables(db_url)  # another app's Alembic is left alone
    assert migrate.upgrade(db_url) == "0003"  # again: a no-op


def test_migrated_schema_matches_the_metadata(db_url: str) -> None:
    """A column or table added to the metadata without a migration fails here."""
    migrate.upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": migrate.VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, migrate.load_metadata()) == []


def first_release_tables() -> sa.MetaData:
    """The tables as the first release created them (the frozen baseline revision)."""
    return importlib.import_module("tsad.storage.migrations.versions.0001_baseline").baseline()


def test_a_database_made_before_migrations_is_adopted(db_url: str) -> None:
    engine = get_engine(db_url)
    first_release_tables().create_all(engine)  # what create_schema did before Alembic
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO model_version (id, sensor_group, version, detector_kind, "
                             "config_json, config_sha256, artifact_uri, manifest_sha256, "
                             "training_start, training_end, threshold_strategy, threshold, "
                             "created_at, status) VALUES ('g/v0001', 'g', 1, 'dense', '{}', 'c', "
                             "'u', 'm', '2026-01-01', '2026-01-02', 'quantile', 1.0, "
                             "'2026-01-03 00:00:00', 'published')"))
    assert migrate.upgrade(db_url) == "0003"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_version")).scalar_one() == 1


def test_the_first_release_upgrades_to_head_keeping_its_rows(db_url: str) -> None:
    """0001 -> head: the columns and the verdict label added since, earlier rows kept, and the
    result identical to a database migrated from empty."""
    engine = get_engine(db_url)
    migrate.upgrade(db_url, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO anomaly_feedback (sensor_group, partition_date, "
                             "event_start_ts, label, created_at) VALUES ('g', '2026-01-01', "
                             "'2026-01-01 10:00:00', 'false_alarm', '2026-01-02 00:00:00')"))
    assert migrate.upgrade(db_url) == "0003"
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO anomaly_feedback (sensor_group, partition_date, "
                             "event_start_ts, label, created_at) VALUES ('g', '2026-01-01', "
                             "'2026-01-01 11:00:00', 'new_operating_point', "
                             "'2026-01-02 00:00:00')"))
        labels = conn.execute(sa.text("SELECT label FROM anomaly_feedback ORDER BY id")).all()
    assert [r[0] for r in labels] == ["false_alarm", "new_operating_point"]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO anomaly_feedback (sensor_group, partition_date, "
                             "event_start_ts, label, created_at) VALUES ('g', '2026-01-01', "
                             "'2026-01-01 12:00:00', 'maybe', '2026-01-02 00:00:00')"))
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": migrate.VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, migrate.load_metadata()) == []


def test_a_database_at_0002_gains_the_snooze_table_keeping_its_views(db_url: str) -> None:
    engine = get_engine(db_url)
    assert migrate.upgrade(db_url, "0002") == "0002"
    assert "alert_snooze" not in tables(db_url)
    from tsad.storage.views import create_views

    create_views(engine)
    assert migrate.upgrade(db_url) == "0003"
    assert "alert_snooze" in tables(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alert_snooze (sensor_group, channel, until_date, "
                             "created_at) VALUES ('g', NULL, '2026-12-01', "
                             "'2026-11-20 08:00:00')"))
        assert conn.execute(sa.text("SELECT count(*) FROM v_current_events")).scalar_one() == 0


def test_concurrent_upgrades_serialize(db_url: str) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate.upgrade(db_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and results == ["0003"] * 4
    with get_engine(db_url).connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).all()
    assert [v[0] for v in versions] == ["0003"]


def write_config(tmp_path: Path, db_url: str) -> Path:
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump({
        "database": {"url": db_url},
        "groups": [{"name": "g", "channels": ["a"],
                    "source": {"kind": "files", "path": str(tmp_path / "{date}.csv")}}]}))
    return file


def test_cli_db_upgrade(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, db_url)
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "upgraded from empty to revision 0003" in capsys.readouterr().out
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "already at revision 0003" in capsys.readouterr().out
    assert migrate.current(db_url) == "0003"


def test_cli_db_upgrade_unreachable_server_hides_the_password(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg2")
    monkeypatch.setenv("TSAD_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("TSAD_RETRY_BASE_DELAY", "0.01")
    config = write_config(tmp_path, "postgresql://tsad:s3cret@127.0.0.1:1/tsad")
    assert main(["--config", str(config), "db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "still failing after 2 attempts" in err and "tsad:***@127.0.0.1:1" in err
    assert "s3cret" not in err


def test_parsing_the_dag_runs_no_migration() -> None:
    code = ("import runpy, sys; runpy.run_path('dags/tsad_nightly.py'); "
            "bad = [m for m in ('tsad.storage.migrate', 'tsad.storage.engine', 'alembic') "
            "if m in sys.modules]; "
            "sys.exit(f'imported at parse time: {bad}' if bad else 0)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins"),
           # the trigger form lists the configured groups, so parsing reads the config (YAML
           # and dataclasses); a missing one still parses. No database is touched either way.
           "TSAD_CONFIG": "/nonexistent/tsad.yaml"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
