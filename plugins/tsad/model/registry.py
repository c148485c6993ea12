"""The model registry: one immutable folder per version under ``{models_dir}/{group}/vNNNN``.

A sharded group (``groups[].shards``, see ``tsad.config.shards``) keeps one registry per shard,
``{models_dir}/{group}/sNN/vNNNN``, with ids ``group/sNN/vNNNN``; its manifest names the shard.

A version holds the detector's own files (``Detector.save``: ``config.json``, the
``DetectorConfig`` it was trained with, which holds nothing of the source; ``weights.safetensors``;
``state.json``) and ``manifest.json`` (sha256 of each file, training range, code version). It is
written to a temporary folder and renamed into place, so a killed training never leaves half a
version (its temporary folder is removed by the next publish on the same host); it is never
overwritten; loading verifies every checksum, checks that the model's channels are the group's,
and never unpickles anything.

``models_dir`` may be an object storage URL (``s3://bucket/tsad/models``, see ``tsad.fs``). There
is no rename there, so a version is published by first *claiming* its number with a conditional
write of ``vNNNN/.claim`` (S3 ``If-None-Match: *``: exactly one publisher can create it; a loser
takes the next number), then uploading the files, ``manifest.json`` last. Readers only see
versions with a manifest, so a version appears whole or not at all; a publisher killed midway
leaves a claimed number without a manifest, which is skipped and never reused. Loading downloads
the files to a temporary folder and verifies them as for a local version.
"""

from __future__ import annotations

import hashlib
import logging
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

from tsad import __version__, fs
from tsad.config import DetectorConfig, TrainingConfig
from tsad.config.shards import shard_folder
from tsad.errors import ModelError, TsadError
from tsad.model.detector import CONFIG_FILE, STATE_FILE, WEIGHTS_FILE, Detector

log = logging.getLogger(__name__)
VERSION_DIR = re.compile(r"^v(\d{4,})$")
#: What a manifest must hold for tsad to select and load the version.
MANIFEST_KEYS = ("group", "training_start", "training_end", "config_sha256", "files",
                 "threshold", "threshold_strategy", "created_at")
SHARD_DIR = re.compile(r"^s(\d{2,})$")
FILES = (CONFIG_FILE, WEIGHTS_FILE, STATE_FILE)
TMP_PREFIX = ".tmp-"
CLAIM = ".claim"


@dataclass(frozen=True)
class ModelVersion:
    """A published version, as described by its manifest."""

    group: str
    version: int
    path: fs.Location  # a Path, or a URL string when the registry is in object storage
    manifest: dict[str, Any]
    shard: int | None = None  # a sharded group's shard number (``tsad.config.shards``)

    @property
    def owner(self) -> str:
        """Whose model this is: the group, or ``group/sNN`` for a shard's model (the
        ``model_version.sensor_group`` it is recorded under)."""
        return self.group if self.shard is None else f"{self.group}/{shard_folder(self.shard)}"

    @property
    def id(self) -> str:
        return f"{self.owner}/v{self.version:04d}"

    @property
    def training_end(self) -> date:
        return date.fromisoformat(self.manifest["training_end"])

    @property
    def manifest_sha256(self) -> str:
        return hashlib.sha256(fs.read_bytes(fs.location(self.path, "manifest.json"))).hexdigest()

    def read_json(self, name: str) -> Any:
        """One of the version's JSON files (``config.json``, ``state.json``, ``manifest.json``)."""
        return json.loads(fs.read_bytes(fs.location(self.path, name)))


def _parts(group: str, shard: int | None) -> tuple[str, ...]:
    """The registry folder of a group (or of one of its shards) below ``models_dir``."""
    return (group,) if shard is None else (group, shard_folder(shard))


def list_versions(models_dir: str | Path, group: str,
                  shard: int | None = None) -> list[ModelVersion]:
    """Published versions of ``group`` (or of its ``shard``), oldest first (temporary folders
    and, for the group, its shards' folders are ignored). A version whose manifest cannot be
    read is skipped with a warning naming the file: the next retrain publishes a good one."""
    if fs.is_remote(models_dir):
        root: fs.Location = str(fs.location(models_dir, *_parts(group, shard)))
        manifests = fs.glob(str(root), "v*/manifest.json")
    else:
        root = Path(fs.location(models_dir)).joinpath(*_parts(group, shard))
        manifests = sorted(root.glob("v*/manifest.json")) if root.is_dir() else []
    versions = []
    for file in manifests:
        folder = fs.parent(file)
        match = VERSION_DIR.match(fs.name(folder))
        if match is None:
            continue
        try:
            manifest = read_manifest(file)
        except ModelError as exc:
            log.warning("%s; skipping that version", exc)
            continue
        versions.append(ModelVersion(group, int(match.group(1)), folder, manifest, shard))
    return sorted(versions, key=lambda v: v.version)


def read_manifest(file: fs.Location) -> dict[str, Any]:
    """A version's manifest, checked to hold what tsad reads from it; ModelError naming the
    file when it is corrupt or incomplete."""
    try:
        manifest = json.loads(fs.read_bytes(file))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {file} is not valid JSON ({exc})") from None
    missing = [k for k in MANIFEST_KEYS if not isinstance(manifest, dict) or k not in manifest]
    if missing:
        raise ModelError(f"model manifest {file} lacks {missing}")
    try:
        date.fromisoformat(manifest["training_end"])
    except (TypeError, ValueError):
        raise ModelError(f"model manifest {file}: training_end {manifest['training_end']!r} "
                         "is not a date") from None
    return manifest


def version_at(model_path: str | Path) -> ModelVersion:
    """The published version stored at ``model_path`` (a ``ModelVersion.path``, as a string).

    Its manifest says whose it is (group, and shard for a shard's model), so a group named like
    a shard folder (``s01``) is never mistaken for one.
    """
    folder = fs.location(model_path)
    match = VERSION_DIR.match(fs.name(folder))
    manifest_file = fs.location(folder, "manifest.json")
    if match is None or not fs.is_file(manifest_file):
        raise ModelError(f"no published model version at {model_path}; run ensure_model first")
    manifest = read_manifest(manifest_file)
    shard = manifest.get("shard")
    return ModelVersion(str(manifest["group"]), int(match.group(1)), folder, manifest,
                        None if shard is None else int(shard))


def select_version(models_dir: str | Path, group: str, day: date,
                   shard: int | None = None) -> ModelVersion | None:
    """The newest version trained only on days before ``day`` and not rejected by its
    promotion check (``tsad.model.promotion``): re-runs and backfills stay stable."""
    usable = [v for v in list_versions(models_dir, group, shard)
              if v.training_end < day and not is_rejected(v)]
    return usable[-1] if usable else None


def is_rejected(version: ModelVersion) -> bool:
    """Whether the version lost its promotion check against the model it would replace."""
    promotion = (version.manifest.get("metrics") or {}).get("promotion") or {}
    return promotion.get("promoted") is False


def rejected_for(models_dir: str | Path, group: str, day: date,
                 shard: int | None = None) -> ModelVersion | None:
    """A version trained for ``day`` and rejected: the day has tried, and keeps its model."""
    tried = [v for v in list_versions(models_dir, group, shard)
             if is_rejected(v) and v.manifest.get("trained_for") == day.isoformat()]
    return tried[-1] if tried else None


def retrain_reason(version: ModelVersion | None, config: DetectorConfig,
                   training: TrainingConfig, day: date, force: bool = False) -> str | None:
    """Why a new model is needed for ``day``, or None to reuse ``version``."""
    if force:
        return "force_retrain requested"
    if version is None:
        return "no model trained before this day"
    age = (day - version.training_end).days
    if age > training.max_model_age_days:
        return (f"model {version.id} is {age} days old "
                f"(max_model_age_days={training.max_model_age_days})")
    if version.manifest.get("config_sha256") != config.fingerprint():
        return f"the group's model settings changed since {version.id}"
    history = (version.manifest.get("metrics") or {}).get("history") or {}
    trained_for = version.manifest.get("trained_for")
    if history.get("provisional") and trained_for and day.isoformat() > trained_for:
        return (f"model {version.id} is provisional (trained on {len(history.get('days', []))} "
                f"of {training.days} days): retrain with the history there is now")
    return None


def publish(models_dir: str | Path, detector: Detector, training_start: date,
            training_end: date, created_by_run: str, *, group: str,
            shard: int | None = None, trained_for: date | None = None) -> ModelVersion:
    """Write ``detector`` as the next version of ``group`` (or of the group's ``shard``: the
    detector is then trained on the shard's channels), atomically; returns the new version.
    ``trained_for`` is the data day whose run trained it (kept in the manifest)."""
    parts = _parts(group, shard)
    if fs.is_remote(models_dir):
        with fs.local_scratch("tsad-model-") as scratch:
            manifest = _write_version(Path(scratch), detector, training_start, training_end,
                                      created_by_run, group, shard, trained_for)
            return _publish_remote(Path(scratch), str(fs.location(models_dir, *parts)),
                                   group, manifest, shard)
    root = Path(fs.location(models_dir)).joinpath(*parts)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(root)
    tmp = root / f"{TMP_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        manifest = _write_version(tmp, detector, training_start, training_end, created_by_run,
                                  group, shard, trained_for)
        fs.fsync_dir(tmp)
        return _rename_into_place(tmp, Path(fs.location(models_dir)), group, manifest, shard)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_version(tmp: Path, detector: Detector, training_start: date, training_end: date,
                   created_by_run: str, group: str, shard: int | None = None,
                   trained_for: date | None = None) -> dict[str, Any]:
    """Write a version's files into the local folder ``tmp``; returns its manifest."""
    files = detector.save(tmp)
    manifest = {
        "group": group,
        "detector_kind": detector.config.model.kind,
        "training_start": training_start.isoformat(),
        "training_end": training_end.isoformat(),
        "config_sha256": detector.config.fingerprint(),
        "code_version": __version__,
        "created_by_run": created_by_run,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "threshold": detector.threshold,
        "threshold_strategy": detector.config.threshold.strategy,
        "metrics": detector.metrics_,
        "files": {name: _sha256(tmp / name) for name in files},
    }
    if shard is not None:  # an unsharded group's manifest keeps its keys as they were
        manifest["shard"] = shard
    if trained_for is not None:
        manifest["trained_for"] = trained_for.isoformat()
    fs.write_json(tmp / "manifest.json", manifest)
    return manifest


def _publish_remote(local: Path, root: str, group: str, manifest: dict[str, Any],
                    shard: int | None = None) -> ModelVersion:
    """Claim the next free number with a conditional write, upload the files, manifest last."""
    taken = [int(m.group(1)) for url in fs.glob(root, "v*/*")
             if (m := VERSION_DIR.match(fs.name(fs.parent(url))))]
    number = max(taken, default=0) + 1
    token = f"{_host()}-{os.getpid()}-{uuid.uuid4().hex}".encode()
    while not fs.write_bytes(fs.location(root, f"v{number:04d}", CLAIM), token, create_only=True):
        number += 1  # another publisher holds this number
    target = str(fs.location(root, f"v{number:04d}"))
    for name in (*FILES, "manifest.json"):  # the manifest last: it makes the version visible
        fs.upload(local / name, str(fs.location(target, name)))
    return ModelVersion(group, number, target, manifest, shard)


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


def load_detector(version: ModelVersion, channels: list[str] | None = None) -> Detector:
    """Rebuild a detector from a version after checking every file against the manifest.

    ``channels`` (the group's current channels) must be the ones the model was trained on. A
    version in object storage is downloaded to a temporary folder and checked there.
    """
    if not fs.is_remote(version.path):
        return _load_from(version, Path(version.path), channels)
    with fs.local_scratch("tsad-load-") as scratch:
        folder = Path(scratch)
        for name in FILES:  # only known names: a manifest cannot make us write elsewhere
            remote = fs.location(version.path, name)
            if fs.is_file(remote):
                fs.download(str(remote), folder / name)
        return _load_from(version, folder, channels)


def _load_from(version: ModelVersion, folder: Path, channels: list[str] | None) -> Detector:
    """Verify and load the version's files found in the local ``folder`` (errors name the
    version's own location)."""
    from safetensors import SafetensorError

    manifest_path = fs.location(version.path, "manifest.json")
    if not version.manifest.get("files"):
        raise ModelError(f"model {version.id}: manifest {manifest_path} lists no "
                         "files; retrain with force_retrain")
    for name, expected in version.manifest.get("files", {}).items():
        file, shown = folder / name, fs.location(version.path, name)
        if not file.is_file():
            raise ModelError(
                f"model {version.id}: file {shown} is missing; retrain with force_retrain")
        if _sha256(file) != expected:
            raise ModelError(
                f"model {version.id}: {shown} does not match its manifest checksum (tampered or "
                "corrupt); do not use it: retrain with force_retrain")
    if set(version.manifest.get("files", {})) != set(FILES):
        raise ModelError(f"model {version.id}: manifest {manifest_path} is incomplete")
    try:
        detector = Detector.load(folder)
    except (SafetensorError, RuntimeError, KeyError, ValueError, TsadError) as exc:
        raise ModelError(f"model {version.id} in {version.path} cannot be loaded ({exc}); "
                         "retrain with force_retrain") from None
    if channels is not None and list(channels) != detector.channels:
        raise ModelError(
            f"model {version.id} was trained on channels {detector.channels}, but group "
            f"{version.owner!r} now has {list(channels)}; retrain (force_retrain) after a "
            "channel change")
    return detector


def _rename_into_place(tmp: Path, models_dir: Path, group: str, manifest: dict[str, Any],
                       shard: int | None = None) -> ModelVersion:
    root = models_dir.joinpath(*_parts(group, shard))
    existing = list_versions(models_dir, group, shard)
    number = (existing[-1].version if existing else 0) + 1
    while True:
        target = root / f"v{number:04d}"
        try:
            os.rename(tmp, target)  # fails if target exists: versions are never overwritten
            return ModelVersion(group, number, target, manifest, shard)
        except OSError:
            if not target.exists():
                raise
            number += 1


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
