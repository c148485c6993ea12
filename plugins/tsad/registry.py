"""The model registry: one immutable folder per version under ``{models_dir}/{group}/vNNNN``.

A version holds ``config.json`` (the group config it was trained with), ``weights.safetensors``
(the ``state_dict``), ``state.json`` (scaler, threshold, metrics) and ``manifest.json`` (sha256 of
each file, training range, code version). It is written to a temporary folder and renamed into
place, so a killed training never leaves half a version (its temporary folder is removed by the
next publish on the same host); it is never overwritten; loading verifies every checksum, checks
that the model's channels are the group's, and never unpickles anything. The stored config has
the source URL's password masked: secrets are never written into artifacts or records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from tsad import __version__
from tsad.config import GroupConfig, group_config_from_dict
from tsad.errors import ModelError

VERSION_DIR = re.compile(r"^v(\d{4,})$")
FILES = ("config.json", "weights.safetensors", "state.json")
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ModelVersion:
    """A published version, as described by its manifest."""

    group: str
    version: int
    path: Path
    manifest: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.group}/v{self.version:04d}"

    @property
    def training_end(self) -> date:
        return date.fromisoformat(self.manifest["training_end"])

    @property
    def manifest_sha256(self) -> str:
        return _sha256(self.path / "manifest.json")


def model_config_hash(group: GroupConfig) -> str:
    """Hash of the settings that shape a model; a change to any of them calls for a retrain."""
    cfg = _group_dict(group)
    relevant = {k: cfg[k] for k in ("channels", "sampling_seconds", "window", "model", "threshold")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def list_versions(models_dir: str | Path, group: str) -> list[ModelVersion]:
    """Published versions of ``group``, oldest first (temporary folders are ignored)."""
    root = Path(models_dir) / group
    versions = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        match = VERSION_DIR.match(child.name)
        if match and (child / "manifest.json").is_file():
            manifest = json.loads((child / "manifest.json").read_text())
            versions.append(ModelVersion(group, int(match.group(1)), child, manifest))
    return sorted(versions, key=lambda v: v.version)


def select_version(models_dir: str | Path, group: str, day: date) -> ModelVersion | None:
    """The newest version trained only on days before ``day``: re-runs and backfills stay stable."""
    usable = [v for v in list_versions(models_dir, group) if v.training_end < day]
    return usable[-1] if usable else None


def retrain_reason(version: ModelVersion | None, group: GroupConfig, day: date,
                   force: bool = False) -> str | None:
    """Why a new model is needed for ``day``, or None to reuse ``version``."""
    if force:
        return "force_retrain requested"
    if version is None:
        return "no model trained before this day"
    age = (day - version.training_end).days
    if age > group.training.max_model_age_days:
        return f"model {version.id} is {age} days old (max_model_age_days={group.training.max_model_age_days})"
    if version.manifest.get("config_sha256") != model_config_hash(group):
        return f"the group's model settings changed since {version.id}"
    return None


def publish(models_dir: str | Path, detector: Any, training_start: date, training_end: date,
            created_by_run: str) -> ModelVersion:
    """Write ``detector`` as the next version of its group, atomically; returns the new version."""
    from safetensors.torch import save_file

    group = detector.group
    root = Path(models_dir) / group.name
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(root)
    tmp = root / f"{TMP_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_json(tmp / "config.json", _group_dict(group))
        weights = {k: v.detach().cpu().contiguous() for k, v in detector.network_.state_dict().items()}
        save_file(weights, str(tmp / "weights.safetensors"))
        _write_json(tmp / "state.json", detector.state())
        manifest = {
            "group": group.name,
            "detector_kind": group.model.kind,
            "training_start": training_start.isoformat(),
            "training_end": training_end.isoformat(),
            "config_sha256": model_config_hash(group),
            "code_version": __version__,
            "created_by_run": created_by_run,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "threshold": detector.threshold,
            "threshold_strategy": group.threshold.strategy,
            "metrics": detector.metrics_,
            "files": {name: _sha256(tmp / name) for name in FILES},
        }
        _write_json(tmp / "manifest.json", manifest)
        _fsync_dir(tmp)
        return _rename_into_place(tmp, root, group.name, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_tmp(root: Path) -> list[Path]:
    """Remove temporary version folders left by killed processes of this host; return them."""
    removed = []
    for child in root.iterdir() if root.is_dir() else []:
        parts = child.name[len(TMP_PREFIX):].rsplit("-", 2)
        if not child.name.startswith(TMP_PREFIX) or len(parts) != 3 or parts[0] != _host():
            continue
        if parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def load_detector(version: ModelVersion, channels: list[str] | None = None) -> Any:
    """Rebuild a detector from a version after checking every file against the manifest.

    ``channels`` (the group's current channels) must be the ones the model was trained on.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from tsad.detector import Detector

    if not version.manifest.get("files"):
        raise ModelError(f"model {version.id}: manifest {version.path / 'manifest.json'} lists no "
                         "files; retrain with force_retrain")
    for name, expected in version.manifest.get("files", {}).items():
        file = version.path / name
        if not file.is_file():
            raise ModelError(
                f"model {version.id}: file {file} is missing; retrain with force_retrain")
        if _sha256(file) != expected:
            raise ModelError(
                f"model {version.id}: {file} does not match its manifest checksum (tampered or "
                "corrupt); do not use it: retrain with force_retrain")
    if set(version.manifest.get("files", {})) != set(FILES):
        raise ModelError(f"model {version.id}: manifest {version.path / 'manifest.json'} is incomplete")
    group = group_config_from_dict(json.loads((version.path / "config.json").read_text()))
    if channels is not None and list(channels) != list(group.channels):
        raise ModelError(
            f"model {version.id} was trained on channels {group.channels}, but group "
            f"{group.name!r} now has {list(channels)}; retrain (force_retrain) after a channel "
            "change")
    state = json.loads((version.path / "state.json").read_text())
    try:
        weights = load_file(str(version.path / "weights.safetensors"))
        return Detector.from_state(group, state, weights)
    except (SafetensorError, RuntimeError, KeyError, ValueError) as exc:
        raise ModelError(f"model {version.id} in {version.path} cannot be loaded ({exc}); "
                         "retrain with force_retrain") from None


def _rename_into_place(tmp: Path, root: Path, group: str, manifest: dict[str, Any]) -> ModelVersion:
    existing = list_versions(root.parent, group)
    number = (existing[-1].version if existing else 0) + 1
    while True:
        target = root / f"v{number:04d}"
        try:
            os.rename(tmp, target)  # fails if target exists: versions are never overwritten
            return ModelVersion(group, number, target, manifest)
        except OSError:
            if not target.exists():
                raise
            number += 1


def _group_dict(group: GroupConfig) -> dict[str, Any]:
    """The group's config as stored with a model: the source URL's password is masked."""
    data = dataclasses.asdict(group)
    url = data.get("source", {}).get("url")
    if url:
        from tsad.storage.engine import describe

        data["source"]["url"] = describe(url)
    return data


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
