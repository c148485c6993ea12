"""Defects found by trying to break tsad (issue 16), one test each; every one failed before its fix.

Config (items 8, 11, 12, 13), the registry (10, 16, 17) and the plots of a failed write (2).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from conftest import small_plant
from tsad import pipeline
from tsad.config import load_config
from tsad.errors import ConfigError, DataError
from tsad.evaluation.simulator import simulate
from tsad.model import registry
from tsad.pipeline import GroupDay, RunInfo
from tsad.storage.engine import dispose_all

START = date(2026, 3, 1)
DAY = date(2026, 3, 4)


def write(tmp: Path, data: dict[str, Any] | str) -> Path:
    file = tmp / "tsad.yaml"
    file.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return file


def plant(tmp: Path, **group: Any) -> dict[str, Any]:
    data = small_plant(tmp)
    data["groups"] = data["groups"][:1]
    data["groups"][0].update(group)
    return data


# ---------------------------------------------------------------- config (8, 11, 12, 13)


def test_a_channel_named_timestamp_is_refused(tmp_path: Path) -> None:  # item 8
    data = plant(tmp_path, channels=["flow", "timestamp"])
    with pytest.raises(ConfigError, match=r"groups\[0\]: 'channels' has 'timestamp', which tsad "
                                          "reserves"):
        load_config(write(tmp_path, data))


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path: Path) -> None:
    """Item 11: nine levels of nine aliases expand to 9**9 strings in an error message."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines += ["groups: *a9"]
    began = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "\n".join(lines) + "\n"))
    assert time.monotonic() - began < 5
    assert len(str(err.value)) < 400 and "YAML aliases" in str(err.value)


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:  # item 11
    text = yaml.safe_dump(plant(tmp_path)).replace("data_dir:", "site_timezone: UTC\ndata_dir:")
    with pytest.raises(ConfigError, match="key 'site_timezone' appears twice"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("where", "value", "message"), [
    (("source", "timestamps_timezone"), "Mars/Olympus", "is not an IANA time zone"),
    (("sampling_seconds",), 10**30, "'sampling_seconds' must be between 1 and 86400"),
    (("training", "days"), 10**9, "'days' must be between 1 and 366"),
    (("threshold", "smoothing_seconds"), 1e308, "'smoothing_seconds' must be between"),
    (("events", "merge_gap"), 10**30, "'merge_gap' must be between 0 and"),
    (("model", "hidden"), 10**9, "'hidden' must be between 1 and 4096"),
    (("model", "seed"), -5, "'seed' must be between 0 and"),
    (("model", "learning_rate"), float("inf"), "expected a finite number"),
    (("channels",), ["x" * 201], "at most 200 fit the records"),
])
def test_values_are_range_checked_naming_the_key(tmp_path: Path, where: tuple[str, ...],
                                                 value: Any, message: str) -> None:  # item 12
    data = plant(tmp_path)
    target = data["groups"][0]
    for key in where[:-1]:
        target = target.setdefault(key, {})
    target[where[-1]] = value
    began = time.monotonic()
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write(tmp_path, data))
    assert time.monotonic() - began < 5 and len(str(err.value)) < 400
    assert "groups[0]" in str(err.value)


@pytest.mark.parametrize("name", ["pumps\n", "pumps\n\n"])
def test_names_are_matched_whole(tmp_path: Path, name: str) -> None:  # item 13
    with pytest.raises(ConfigError, match="'name' must be lowercase letters"):
        load_config(write(tmp_path, plant(tmp_path, name=name)))
    data = plant(tmp_path)
    data["groups"][0]["source"]["table"] = "pump_readings\n"
    with pytest.raises(ConfigError, match="'table' must be a plain identifier"):
        load_config(write(tmp_path, data))


# ---------------------------------------------------------------- registry (10, 16, 17)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    config = load_config(write(tmp, plant(tmp)))
    simulate(config, START, 4, seed=3)
    pipeline.ensure_model(GroupDay.of(config, "pumps", DAY))
    dispose_all()
    return tmp


def copy(trained: Path, tmp: Path) -> Any:
    for name in ("models", "historian.db"):
        source = trained / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp / name)
    return load_config(write(tmp, plant(tmp)))


@pytest.mark.parametrize("damage", ["manifest", "manifest-keys", "state"])
def test_a_broken_version_is_named_and_skipped_and_a_retrain_proceeds(
        trained: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    """Item 10: a corrupt manifest.json or state.json, or a manifest without training_end."""
    config = copy(trained, tmp_path)
    folder = Path(config.models_dir) / "pumps" / "v0001"
    if damage == "manifest":
        (folder / "manifest.json").write_text('{"group": "pumps",\n  "training_end": ')
    elif damage == "manifest-keys":
        manifest = json.loads((folder / "manifest.json").read_text())
        del manifest["training_end"]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    else:  # a corrupt state.json whose manifest was re-hashed: only its JSON is wrong
        import hashlib

        (folder / "state.json").write_text('{"channels": [')
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"]["state.json"] = hashlib.sha256(b'{"channels": [').hexdigest()
        (folder / "manifest.json").write_text(json.dumps(manifest))
    ctx = GroupDay.of(config, "pumps", DAY)
    if damage == "state":  # the manifest is fine: loading names the file that is not
        with pytest.raises(Exception, match=r"state\.json is not valid JSON"):
            registry.load_detector(registry.list_versions(config.models_dir, "pumps")[0])
        result = pipeline.ensure_model(ctx, force_retrain=True)
    else:
        with caplog.at_level("WARNING", logger="tsad.model.registry"):
            assert registry.list_versions(config.models_dir, "pumps") == []
        assert "manifest.json" in caplog.text and "skipping that version" in caplog.text
        result = pipeline.ensure_model(ctx)
    assert result["trained"] and result["model_version_id"] == "pumps/v0002"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_first_runs_of_a_day_train_once(tmp_path: Path, backend: str,
                                            request: pytest.FixtureRequest) -> None:
    """Item 16: both runs need a model; one trains, the other waits and uses its version."""
    data = plant(tmp_path)
    if backend == "postgresql":
        data["database"]["url"] = request.getfixturevalue("pg_url")
    config = load_config(write(tmp_path, data))
    simulate(config, START, 4, seed=3)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            ctx = GroupDay.of(config, "pumps", DAY, RunInfo(run_id=name))
            results.append(pipeline.ensure_model(ctx, force_retrain=True))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert sorted(r["trained"] for r in results) == [False, True]
    assert {r["model_version_id"] for r in results} == {"pumps/v0001"}
    assert [v.id for v in registry.list_versions(config.models_dir, "pumps")] == ["pumps/v0001"]
    later = pipeline.ensure_model(GroupDay.of(config, "pumps", DAY), force_retrain=True)
    assert later["trained"] and later["model_version_id"] == "pumps/v0002"  # not concurrent


def test_checkpoints_refuse_a_folder_other_users_can_write(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 17: a shared, planted checkpoint folder is refused; the default is per user, 0700."""
    from tsad.model.training import checkpoint_dir

    shared = tmp_path / "shared"
    (shared / "checkpoints").mkdir(parents=True)
    os.chmod(shared / "checkpoints", 0o777)
    monkeypatch.setenv("TSAD_WORK_DIR", str(shared))
    with pytest.raises(Exception, match="is not private to this user"):
        checkpoint_dir()
    monkeypatch.delenv("TSAD_WORK_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    folder = checkpoint_dir()
    assert folder.parent.name == f"tsad-work-{os.getuid()}"
    assert folder.stat().st_mode & 0o777 == 0o700 and folder.parent.stat().st_mode & 0o777 == 0o700


# ---------------------------------------------------------------- plots of a failed write (2)


def test_a_failed_records_write_keeps_the_previous_rows_and_their_plots(
        trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2: plots are drawn under names of their own and the old ones removed only after
    the commit, so a write that fails leaves the committed rows' plots in place."""
    config = copy(trained, tmp_path)
    day = DAY
    ctx = GroupDay.of(config, "pumps", day)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'historian.db'}")
    with engine.begin() as conn:  # a fault on the scored day, so there are events to draw
        conn.execute(sa.text("UPDATE pump_readings SET value = value + 50 WHERE sensor = 'flow' "
                             "AND ts >= :a AND ts < :b"),
                     {"a": f"{day} 06:00:00", "b": f"{day} 08:00:00"})
    engine.dispose()
    pipeline.extract(ctx)
    model = pipeline.ensure_model(ctx)
    pipeline.score(ctx, model["path"])
    first = pipeline.record(ctx)
    assert first["n_events"] >= 1
    url = config.database.url

    def committed_plots() -> list[str]:
        with sa.create_engine(url).connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT plot_path FROM anomaly_event"))]

    plots = committed_plots()
    assert plots and all(Path(p).is_file() for p in plots)

    def failing_write(*args: Any, **kwargs: Any) -> int:
        raise DataError("the records database refused the write (test)")

    from tsad.pipeline import recording

    monkeypatch.setattr(recording, "write_partition", failing_write)
    rerun = GroupDay.of(config, "pumps", day, RunInfo(run_id="failing"))
    monkeypatch.setattr("tsad.detection.plots.picture_tag", lambda e, m: "failing")
    pipeline.score(rerun, model["path"])
    with pytest.raises(DataError, match="refused the write"):
        pipeline.record(rerun)
    assert committed_plots() == plots and all(Path(p).is_file() for p in plots)
    assert (day - timedelta(days=0)) == day
