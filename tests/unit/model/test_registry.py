"""The model registry on its own: publish, list, select, retrain reasons, promotion verdicts,
manifests and verified loading, with a tiny real detector fitted once for the module."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tsad.config import DetectorConfig, ModelConfig, TrainingConfig, WindowConfig
from tsad.errors import ModelError
from tsad.model import registry
from tsad.model.detector import Detector

START, END = date(2026, 3, 1), date(2026, 3, 7)


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Three correlated channels driven by one cycle, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    drive = np.sin(2 * np.pi * t / 144) + 0.3 * np.sin(2 * np.pi * t / 37)
    data = np.stack([10 + 3 * drive, 50 - 5 * drive, 2 * drive**2], axis=1)
    data += rng.normal(0, 0.1, data.shape)
    index = pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC", name="timestamp")
    return pd.DataFrame(data, index=index, columns=["a", "b", "c"])


def tiny_config(length: int = 16) -> DetectorConfig:
    return DetectorConfig(name="pumps", channels=["a", "b", "c"],
                          window=WindowConfig(length=length, stride=4),
                          model=ModelConfig(kind="conv1d", hidden=8, latent=2, epochs=2,
                                            batch_size=64, seed=0))


@pytest.fixture(scope="module")
def detector() -> Iterator[Detector]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TSAD_THREADS", "1")
        yield Detector.fit(tiny_config(), synthetic(600, seed=0), checkpoint=False)


@pytest.fixture
def with_metrics(detector: Detector) -> Iterator[Callable[..., None]]:
    """Publish with extra ``metrics_`` (a promotion verdict, a history), restored afterwards."""
    saved = dict(detector.metrics_)

    def set_metrics(**extra: object) -> None:
        detector.metrics_ = {**saved, **extra}

    yield set_metrics
    detector.metrics_ = saved


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- publish and list


def test_publish_writes_a_whole_version_with_checksums(tmp_path: Path,
                                                       detector: Detector) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps",
                               trained_for=date(2026, 3, 8))
    folder = tmp_path / "pumps" / "v0001"
    assert (version.group, version.version, version.shard, version.id) == (
        "pumps", 1, None, "pumps/v0001")
    assert Path(version.path) == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([*registry.FILES, "manifest.json"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == version.manifest
    assert manifest["files"] == {name: sha256(folder / name) for name in registry.FILES}
    assert manifest["training_start"] == "2026-03-01" and manifest["training_end"] == "2026-03-07"
    assert manifest["trained_for"] == "2026-03-08" and manifest["created_by_run"] == "run-1"
    assert manifest["config_sha256"] == detector.config.fingerprint()
    assert manifest["threshold"] == pytest.approx(detector.threshold)
    assert "shard" not in manifest  # an unsharded group's manifest keeps its old keys
    assert [p.name for p in (tmp_path / "pumps").iterdir()] == ["v0001"]  # no temp folder left
    assert version.training_end == END
    assert version.manifest_sha256 == sha256(folder / "manifest.json")


def test_versions_are_numbered_and_listed_oldest_first(tmp_path: Path,
                                                       detector: Detector) -> None:
    for n in range(3):
        published = registry.publish(tmp_path, detector, START, END + timedelta(days=n),
                                     f"run-{n}", group="pumps")
        assert published.version == n + 1
    root = tmp_path / "pumps"
    # numbers past 9999 sort by value, not by name ("v100000" < "v99999" as text)
    shutil.copytree(root / "v0001", root / "v100000")
    shutil.copytree(root / "v0001", root / "v99999")
    assert [v.version for v in registry.list_versions(tmp_path, "pumps")] == [
        1, 2, 3, 99999, 100000]
    # the next publish takes the number after the highest, never an old one
    assert registry.publish(tmp_path, detector, START, END, "run-x", group="pumps").version \
        == 100001


def test_listing_skips_temp_folders_other_names_and_bad_manifests(
        tmp_path: Path, detector: Detector, caplog: pytest.LogCaptureFixture) -> None:
    registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    root = tmp_path / "pumps"
    shutil.copytree(root / "v0001", root / ".tmp-otherhost-1-abc")
    shutil.copytree(root / "v0001", root / "v12")  # fewer than four digits: not a version
    shutil.copytree(root / "v0001", root / "v0002")
    (root / "v0002" / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="tsad.model.registry"):
        versions = registry.list_versions(tmp_path, "pumps")
    assert [v.version for v in versions] == [1]
    assert str(root / "v0002" / "manifest.json") in caplog.text and "skipping" in caplog.text
    assert registry.list_versions(tmp_path, "nobody") == []


def test_a_shard_has_its_own_folder_and_ids(tmp_path: Path, detector: Detector) -> None:
    registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    shard = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps", shard=2)
    assert Path(shard.path) == tmp_path / "pumps" / "s02" / "v0001"
    assert (shard.owner, shard.id, shard.manifest["shard"]) == ("pumps/s02", "pumps/s02/v0001", 2)
    assert [v.id for v in registry.list_versions(tmp_path, "pumps")] == ["pumps/v0001"]
    assert [v.id for v in registry.list_versions(tmp_path, "pumps", 2)] == ["pumps/s02/v0001"]
    assert registry.list_versions(tmp_path, "pumps", 1) == []
    found = registry.version_at(str(shard.path))
    assert (found.group, found.shard, found.id) == ("pumps", 2, "pumps/s02/v0001")


def test_a_group_named_like_a_shard_folder_is_not_a_shard(tmp_path: Path,
                                                          detector: Detector) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="s01")
    found = registry.version_at(str(version.path))
    assert (found.group, found.shard, found.id) == ("s01", None, "s01/v0001")


def test_version_at_refuses_a_folder_without_a_published_version(tmp_path: Path) -> None:
    (tmp_path / "pumps" / "v0001").mkdir(parents=True)
    with pytest.raises(ModelError, match="no published model version at .*v0001"):
        registry.version_at(str(tmp_path / "pumps" / "v0001"))


def test_publish_removes_dead_temp_folders_of_this_host_only(tmp_path: Path,
                                                             detector: Detector) -> None:
    root = tmp_path / "pumps"
    root.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)
    host = registry._host()
    dead = root / f"{registry.TMP_PREFIX}{host}-{dead_pid}-abc"
    alive = root / f"{registry.TMP_PREFIX}{host}-{os.getpid()}-def"
    other = root / f"{registry.TMP_PREFIX}elsewhere-{dead_pid}-ghi"
    for folder in (dead, alive, other):
        folder.mkdir()
    registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    assert not dead.exists()
    assert alive.exists() and other.exists()


# ---------------------------------------------------------------- manifests


def test_read_manifest_names_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    file = tmp_path / "manifest.json"
    file.write_text("[1, 2")
    with pytest.raises(ModelError, match=f"{file} is not valid JSON"):
        registry.read_manifest(file)
    file.write_text(json.dumps({"group": "pumps", "training_end": "2026-03-07"}))
    with pytest.raises(ModelError, match=r"lacks \['training_start', 'config_sha256'"):
        registry.read_manifest(file)
    full = {key: "x" for key in registry.MANIFEST_KEYS}
    file.write_text(json.dumps({**full, "training_end": "last week"}))
    with pytest.raises(ModelError, match="training_end 'last week' is not a date"):
        registry.read_manifest(file)
    file.write_text(json.dumps({**full, "training_end": "2026-03-07"}))
    assert registry.read_manifest(file)["training_end"] == "2026-03-07"


# ---------------------------------------------------------------- selection


def test_select_takes_the_newest_version_trained_before_the_day(tmp_path: Path,
                                                                 detector: Detector) -> None:
    for end in (date(2026, 3, 5), date(2026, 3, 7), date(2026, 3, 9)):
        registry.publish(tmp_path, detector, START, end, "run", group="pumps")

    def selected(day: date) -> int | None:
        version = registry.select_version(tmp_path, "pumps", day)
        return None if version is None else version.version

    assert selected(date(2026, 3, 5)) is None  # trained on the day itself: not usable for it
    assert selected(date(2026, 3, 6)) == 1
    assert selected(date(2026, 3, 8)) == 2  # a re-run of an old day keeps its model
    assert selected(date(2026, 3, 9)) == 2
    assert selected(date(2026, 3, 10)) == 3
    assert registry.select_version(tmp_path, "pumps", date(2026, 3, 10), shard=1) is None


def test_a_rejected_version_is_never_selected_and_keeps_its_day(
        tmp_path: Path, detector: Detector, with_metrics: Callable[..., None]) -> None:
    day = date(2026, 3, 8)
    registry.publish(tmp_path, detector, START, date(2026, 3, 6), "run-1", group="pumps")
    with_metrics(promotion={"promoted": False, "against": "pumps/v0001"})
    rejected = registry.publish(tmp_path, detector, START, END, "run-2", group="pumps",
                                trained_for=day)
    assert registry.is_rejected(rejected)
    assert not registry.is_rejected(registry.list_versions(tmp_path, "pumps")[0])
    assert registry.select_version(tmp_path, "pumps", day).version == 1
    assert registry.rejected_for(tmp_path, "pumps", day).version == 2
    assert registry.rejected_for(tmp_path, "pumps", day + timedelta(days=1)) is None
    with_metrics(promotion={"promoted": True})
    promoted = registry.publish(tmp_path, detector, START, END, "run-3", group="pumps",
                                trained_for=day + timedelta(days=1))
    assert not registry.is_rejected(promoted)
    assert registry.rejected_for(tmp_path, "pumps", day + timedelta(days=1)) is None
    assert registry.select_version(tmp_path, "pumps", day + timedelta(days=1)).version == 3


def test_retrain_reasons(tmp_path: Path, detector: Detector) -> None:
    training = TrainingConfig(days=7, max_model_age_days=7)
    config = detector.config
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps",
                               trained_for=END + timedelta(days=1))
    fresh = END + timedelta(days=7)  # exactly max_model_age_days old: still fine
    assert registry.retrain_reason(version, config, training, fresh) is None
    assert registry.retrain_reason(version, config, training, fresh, force=True) \
        == "force_retrain requested"
    assert registry.retrain_reason(None, config, training, fresh) \
        == "no model trained before this day"
    old = registry.retrain_reason(version, config, training, fresh + timedelta(days=1))
    assert old == "model pumps/v0001 is 8 days old (max_model_age_days=7)"
    changed = dataclasses.replace(config, window=WindowConfig(length=32, stride=4))
    assert registry.retrain_reason(version, changed, training, fresh) \
        == "the group's model settings changed since pumps/v0001"
    renamed = dataclasses.replace(config, name="pumps/s01")  # the name is no setting
    assert registry.retrain_reason(version, renamed, training, fresh) is None


def test_a_provisional_model_is_retrained_on_later_days_only(
        tmp_path: Path, detector: Detector, with_metrics: Callable[..., None]) -> None:
    training = TrainingConfig(days=7, min_days=2)
    trained_for = date(2026, 3, 8)
    with_metrics(history={"provisional": True, "days": ["2026-03-06", "2026-03-07"]})
    version = registry.publish(tmp_path, detector, date(2026, 3, 6), END, "run-1",
                               group="pumps", trained_for=trained_for)
    assert registry.retrain_reason(version, detector.config, training, trained_for) is None
    reason = registry.retrain_reason(version, detector.config, training,
                                     trained_for + timedelta(days=1))
    assert reason == ("model pumps/v0001 is provisional (trained on 2 of 7 days): retrain with "
                      "the history there is now")
    with_metrics(history={"provisional": False, "days": ["2026-03-06", "2026-03-07"]})
    full = registry.publish(tmp_path, detector, date(2026, 3, 6), END, "run-2",
                            group="pumps", trained_for=trained_for)
    assert registry.retrain_reason(full, detector.config, training,
                                   trained_for + timedelta(days=1)) is None


# ---------------------------------------------------------------- loading


def test_a_loaded_version_scores_like_the_published_detector(tmp_path: Path,
                                                             detector: Detector) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    loaded = registry.load_detector(registry.version_at(str(version.path)), ["a", "b", "c"])
    frame = synthetic(200, seed=9)
    assert loaded.channels == ["a", "b", "c"] and loaded.threshold == detector.threshold
    np.testing.assert_allclose(loaded.score(frame).aggregate, detector.score(frame).aggregate,
                               rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", registry.FILES)
def test_a_tampered_file_is_refused_naming_it(tmp_path: Path, detector: Detector,
                                              name: str) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    file = Path(version.path) / name
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: still a loadable file, a different model
    file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=rf"model pumps/v0001: {file} does not match its "
                                         "manifest checksum"):
        registry.load_detector(version)


def test_a_missing_file_or_an_incomplete_manifest_is_refused(tmp_path: Path,
                                                             detector: Detector) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    weights = Path(version.path) / "weights.safetensors"
    moved = weights.with_suffix(".bak")
    weights.rename(moved)
    with pytest.raises(ModelError, match=f"file {weights} is missing; retrain with "
                                         "force_retrain"):
        registry.load_detector(version)
    moved.rename(weights)
    partial = {k: v for k, v in version.manifest["files"].items() if k != "state.json"}
    short = dataclasses.replace(version, manifest={**version.manifest, "files": partial})
    with pytest.raises(ModelError, match="manifest .* is incomplete"):
        registry.load_detector(short)
    empty = dataclasses.replace(version, manifest={**version.manifest, "files": {}})
    with pytest.raises(ModelError, match="lists no files"):
        registry.load_detector(empty)


def test_loading_with_other_channels_is_refused(tmp_path: Path, detector: Detector) -> None:
    version = registry.publish(tmp_path, detector, START, END, "run-1", group="pumps")
    with pytest.raises(ModelError, match=r"trained on channels \['a', 'b', 'c'\], but group "
                                         r"'pumps' now has \['a', 'c', 'b'\]"):
        registry.load_detector(version, ["a", "c", "b"])
