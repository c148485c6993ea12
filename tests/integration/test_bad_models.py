"""Bad model artifacts, one test per case: a ModelError naming the version and what to do
(retrain), never a silent wrong score. Rows of docs/bad-inputs.md (``test_bad_inputs.py`` keeps
the table and both files in step)."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from conftest import detect
from tsad import pipeline
from tsad.config import TsadConfig, load_config
from tsad.errors import ModelError
from tsad.evaluation.simulator import simulate
from tsad.model import registry
from tsad.pipeline import GroupDay
from tsad.storage.engine import dispose_all

DAY = date(2024, 1, 2)
STEP = 600  # ten-minute grid: 144 points a day


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A files plant (csv, wide) of 4 days with one tiny model trained on the first 3."""
    tmp = tmp_path_factory.mktemp("models")
    config = plant(tmp)
    simulate(config, DAY, 4, seed=2)
    pipeline.ensure_model(GroupDay.of(config, "g", DAY + timedelta(days=3)), force_retrain=True)
    dispose_all()
    return tmp


def plant(tmp: Path, channels: tuple[str, ...] = ("a", "b", "c")) -> TsadConfig:
    data = {"data_dir": str(tmp / "data"), "models_dir": str(tmp / "models"),
            "database": {"url": f"sqlite:///{tmp / 'tsad.db'}"},
            "groups": [{"name": "g", "channels": list(channels), "sampling_seconds": STEP,
                        "window": {"length": 8, "stride": 4},
                        "model": {"kind": "dense", "hidden": 8, "latent": 2, "epochs": 2},
                        "training": {"days": 3},
                        "source": {"kind": "files", "layout": "wide",
                                   "path": str(tmp / "drop" / "{date}.csv")}}]}
    (tmp / "tsad.yaml").write_text(yaml.safe_dump(data))
    return load_config(tmp / "tsad.yaml")


def copy_plant(trained: Path, tmp: Path, channels: tuple[str, ...] = ("a", "b", "c")) -> TsadConfig:
    shutil.copytree(trained / "drop", tmp / "drop")
    shutil.copytree(trained / "models", tmp / "models")
    return plant(tmp, channels)


def test_model_trained_on_other_channels(trained: Path, tmp_path: Path) -> None:
    """ModelError naming the model version, its channels and the group's: retrain."""
    config = copy_plant(trained, tmp_path, ("a", "b", "d"))
    version = registry.list_versions(config.models_dir, "g")[0]
    day = DAY + timedelta(days=3)
    with pytest.raises(ModelError, match=r"model g/v0001 was trained on channels \['a', 'b', 'c'\]"
                                         r", but group 'g' now has \['a', 'b', 'd'\]; retrain"):
        detect(GroupDay.of(config, "g", day), str(version.path))
    group = config.group("g")
    assert registry.retrain_reason(version, group.detector_config(), group.training,
                                   day) is not None  # next run retrains


def test_tampered_artifact(trained: Path, tmp_path: Path) -> None:
    """ModelError naming the model and the file that does not match its manifest checksum."""
    config = copy_plant(trained, tmp_path)
    version = registry.list_versions(config.models_dir, "g")[0]
    weights = version.path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"model g/v0001: .*weights.safetensors does not match its "
                                         r"manifest checksum"):
        registry.load_detector(version)


def test_tampered_manifest(trained: Path, tmp_path: Path) -> None:
    """ModelError from the records database: the version was recorded with another manifest
    (versions are immutable)."""
    config = copy_plant(trained, tmp_path)
    day = DAY + timedelta(days=3)
    ctx = GroupDay.of(config, "g", day)
    pipeline.extract(ctx)
    version = registry.list_versions(config.models_dir, "g")[0]
    detect(ctx, str(version.path))  # records the version's manifest
    manifest = json.loads((version.path / "manifest.json").read_text())
    manifest["threshold"] *= 100  # files and checksums untouched: only the database can tell
    (version.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"model version 'g/v0001' is already recorded with "
                                         r"manifest sha256 .*immutable"):
        detect(ctx, str(version.path))


def test_missing_artifact_file(trained: Path, tmp_path: Path) -> None:
    """ModelError naming the model and the missing file: retrain with force_retrain."""
    config = copy_plant(trained, tmp_path)
    version = registry.list_versions(config.models_dir, "g")[0]
    (version.path / "state.json").unlink()
    with pytest.raises(ModelError, match=r"model g/v0001: file .*state.json is missing; retrain"):
        registry.load_detector(version)
