"""The DAG's task bodies, their pure parts: the data day from the run's interval, the groups and
units to map over, the skips before any work, and fail_fast turning a permanent tsad error into
AirflowFailException while transient ones keep Airflow's retries.

Plain objects stand in for the Airflow context (a mapping with ``dag_run``, ``params``, ...);
the exceptions are Airflow's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from conftest import small_plant
from tsad.airflow_layer import tasks
from tsad.config import TsadConfig, from_dict
from tsad.errors import ConfigError, DataError, ModelError
from tsad.retry import TransientError, TransientSourceError


@dataclass
class DagRun:
    """What ``run_day`` reads from Airflow's DagRun."""

    data_interval_start: datetime | None
    data_interval_end: datetime | None
    logical_date: datetime | None = None
    run_after: datetime | None = None


@dataclass
class Dag:
    dag_id: str = "tsad_nightly"


def context(start: datetime | None = datetime(2026, 3, 5, tzinfo=UTC),
            end: datetime | None = datetime(2026, 3, 6, tzinfo=UTC), *,
            params: dict[str, Any] | None = None, **dag_run: Any) -> dict[str, Any]:
    return {"dag_run": DagRun(start, end, **dag_run), "params": params, "dag": Dag(),
            "run_id": "scheduled__2026-03-06T00:00:00+00:00"}


def plant(tmp: Path, timezone: str = "UTC", shards: dict[str, Any] | None = None) -> Path:
    raw = small_plant(tmp)
    raw["site_timezone"] = timezone
    if shards is not None:
        raw["groups"][0]["shards"] = shards
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(raw))
    return file


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plant the tasks load (TSAD_CONFIG): pumps in two shards, boiler whole."""
    file = plant(tmp_path, shards={"max_channels": 2})
    monkeypatch.setenv("TSAD_CONFIG", str(file))
    return file


def config(tmp: Path, timezone: str = "UTC") -> TsadConfig:
    return from_dict(TsadConfig, yaml.safe_load(plant(tmp, timezone).read_text()))


# ---------------------------------------------------------------- the data day


def test_the_data_day_is_the_start_of_the_runs_interval(tmp_path: Path) -> None:
    utc = config(tmp_path)
    assert tasks.run_day(context(), utc) == date(2026, 3, 5)
    berlin = config(tmp_path, "Europe/Berlin")  # the site-local day: 23:00 UTC is midnight
    local_day = context(datetime(2026, 3, 4, 23, tzinfo=UTC), datetime(2026, 3, 5, 23, tzinfo=UTC))
    assert tasks.run_day(local_day, berlin) == date(2026, 3, 5)
    assert tasks.run_day(local_day, utc) == date(2026, 3, 4)


def test_a_partition_date_param_overrides_the_interval(tmp_path: Path) -> None:
    utc = config(tmp_path)
    assert tasks.run_day(context(params={"partition_date": "2026-02-27"}), utc) \
        == date(2026, 2, 27)
    assert tasks.run_day(context(params={"partition_date": ""}), utc) == date(2026, 3, 5)
    assert tasks.run_day(context(params=None), utc) == date(2026, 3, 5)


def test_a_bad_partition_date_param_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"param 'partition_date': partition date 'yesterday' "
                                          r"is not a date in YYYY-MM-DD form; trigger the run "
                                          "again"):
        tasks.run_day(context(params={"partition_date": "yesterday"}), config(tmp_path))


def test_a_run_without_an_interval_covers_the_day_before_it(tmp_path: Path) -> None:
    """A manual trigger in Airflow 3 may have no data interval (nor logical date)."""
    utc = config(tmp_path)
    after = datetime(2026, 3, 6, 1, 30, tzinfo=UTC)
    assert tasks.run_day(context(None, None, run_after=after), utc) == date(2026, 3, 5)
    assert tasks.run_day(context(None, None, logical_date=after, run_after=None), utc) \
        == date(2026, 3, 5)


def test_group_day_carries_the_group_day_and_run(tmp_path: Path, config_file: Path) -> None:
    ctx = tasks.group_day("boiler", context())
    assert (ctx.name, ctx.day, ctx.run.dag_id, ctx.run.run_id) == (
        "boiler", date(2026, 3, 5), "tsad_nightly", "scheduled__2026-03-06T00:00:00+00:00")
    # no conn_id configured: the config's own URLs
    assert (ctx.db_url, ctx.source_url) == (ctx.config.database.url, ctx.group.source.url)


# ---------------------------------------------------------------- what the DAG maps over


def test_list_groups_all_or_the_selected_ones_in_config_order(config_file: Path) -> None:
    assert tasks.list_groups(context()) == ["pumps", "boiler"]
    assert tasks.list_groups(context(params={"groups": []})) == ["pumps", "boiler"]
    assert tasks.list_groups(context(params={"groups": ["boiler", "pumps"]})) \
        == ["pumps", "boiler"]
    assert tasks.list_groups(context(params={"groups": ["boiler"]})) == ["boiler"]


def test_an_unknown_group_param_fails_the_task_without_retries(config_file: Path) -> None:
    bad = context(params={"groups": ["boiler", "pumsp"]})
    with pytest.raises(ConfigError, match=r"param 'groups' names unknown group\(s\) \['pumsp'\]; "
                                          r"configured: \['pumps', 'boiler'\]"):
        tasks.list_groups.__wrapped__(bad)  # type: ignore[attr-defined]
    with pytest.raises(AirflowFailException, match=r"unknown group\(s\) \['pumsp'\].*"
                                                   r"\[ConfigError: not retried") as raised:
        tasks.list_groups(bad)
    assert isinstance(raised.value.__cause__, ConfigError)


def test_list_units_names_every_shard_of_a_sharded_group(config_file: Path) -> None:
    assert tasks.list_units(["pumps", "boiler"], context()) == [
        {"group": "pumps", "shard": 1}, {"group": "pumps", "shard": 2},
        {"group": "boiler", "shard": None}]
    assert tasks.list_units(["boiler"], context()) == [{"group": "boiler", "shard": None}]


def test_a_missing_config_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_CONFIG", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(AirflowFailException, match="nowhere.yaml: config file not found"):
        tasks.list_groups(context())


# ---------------------------------------------------------------- skips before any work


def test_ensure_model_skips_when_the_extract_left_no_partition(config_file: Path) -> None:
    with pytest.raises(AirflowSkipException, match="group pumps 2026-03-05: no extracted "
                                                   "partition"):
        tasks.ensure_model("pumps", 1, context())


def test_detect_skips_naming_the_units_without_scores_of_this_run(config_file: Path) -> None:
    from tsad import fs
    from tsad.detection.unit_scores import scratch_path

    ctx = tasks.group_day("pumps", context())
    with pytest.raises(AirflowSkipException, match=r"no scores of \['pumps/s01', 'pumps/s02'\] "
                                                   "from this run"):
        tasks.detect("pumps", context())
    fs.write_bytes_atomic(scratch_path(ctx.config.data_dir, "pumps", ctx.day, ctx.run.run_id, 1),
                          b"scored")
    with pytest.raises(AirflowSkipException, match=r"no scores of \['pumps/s02'\] from"):
        tasks.detect("pumps", context())


# ---------------------------------------------------------------- fail_fast


def raising(error: BaseException) -> Any:
    @tasks.fail_fast
    def task(context: Any) -> Any:
        """A task body."""
        raise error

    return task


@pytest.mark.parametrize("error", [ConfigError("'groups[0].window.length' must be >= 2"),
                                   DataError("day 2026-03-05 of pumps is empty"),
                                   ModelError("model pumps/v0003 is tampered")],
                         ids=lambda e: type(e).__name__)
def test_permanent_tsad_errors_become_airflow_fail_exceptions(error: Exception) -> None:
    with pytest.raises(AirflowFailException) as raised:
        raising(error)({})
    assert str(raised.value) == (
        f"{error} [{type(error).__name__}: not retried, waiting will not fix it; fix the cause, "
        "then clear this task]")
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", [TransientError("database restarting"),
                                   TransientSourceError("historian busy"),
                                   ValueError("a bug"), ConnectionResetError("reset")],
                         ids=lambda e: type(e).__name__)
def test_transient_and_unexpected_errors_keep_airflows_retries(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        raising(error)({})
    assert raised.value is error


def test_fail_fast_returns_the_result_and_keeps_the_name() -> None:
    @tasks.fail_fast
    def extract(group: str, context: Any) -> dict[str, Any]:
        """Extract a group's day."""
        return {"group": group, "rows": 288}

    assert extract("pumps", context={}) == {"group": "pumps", "rows": 288}
    assert extract.__name__ == "extract" and extract.__doc__ == "Extract a group's day."
