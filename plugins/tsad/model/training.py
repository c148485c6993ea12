"""The training loop: windows are gathered batch by batch from one series tensor, never all at once.

Early stopping watches the validation windows (the last part of the training range, never seen by
the optimiser); the best epoch's weights are kept.

A checkpoint (model, optimiser, early-stopping state and the shuffling generator: state dicts and
plain numbers only, loaded with ``weights_only=True``) is written atomically after every epoch
when a ``checkpoint_key`` is given, so a killed training resumes at the next epoch and ends with
the same weights as an uninterrupted one. It is deleted once training succeeds. On CUDA the
series is copied once through pinned memory and the forward pass runs under autocast (bf16 where
supported, else fp16 with a gradient scaler).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tsad import fs
from tsad.config import ModelConfig
from tsad.errors import ModelError
from tsad.model.device import use_cpu_threads
from tsad.windows import gather_windows

log = logging.getLogger(__name__)
#: Called as ``hook(epoch, epochs, report)`` after every epoch of any training in this context
#: (``tsad.progress`` sets it for progress bars); the ``on_epoch`` argument is per call.
epoch_hook: ContextVar[Callable[[int, int, TrainingReport], None] | None] = ContextVar(
    "tsad_epoch_hook", default=None)


@dataclass
class TrainingReport:
    """What happened during training, for the model's metadata and the task log."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from_epoch: int = 0


def checkpoint_dir() -> Path:
    """Where unfinished trainings keep their checkpoints: ``$TSAD_WORK_DIR/checkpoints``, else
    ``tsad-work-<uid>/checkpoints`` in the temporary folder, private to this user.

    A checkpoint's weights become a published model when training resumes from it, so the
    folder must be this user's alone: it is created with mode 0700, and a folder (or a parent
    tsad made) owned by another user or writable by others is refused rather than trusted."""
    configured = os.environ.get("TSAD_WORK_DIR")
    root = (Path(configured) if configured
            else Path(tempfile.gettempdir()) / f"tsad-work-{os.getuid()}")
    folder = root / "checkpoints"
    for path in (root, folder):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            raise ModelError(
                f"checkpoint folder {path} is not private to this user (owner uid "
                f"{info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}, "
                f"{'a symlink' if stat.S_ISLNK(info.st_mode) else 'a folder'}): another user "
                "could plant weights there; remove it or set TSAD_WORK_DIR to a private folder")
    return folder


def checkpoint_path(key: str, net: nn.Module, series: np.ndarray, train_starts: np.ndarray,
                    val_starts: np.ndarray, length: int, cfg: ModelConfig) -> Path:
    """The checkpoint file of this exact training: key plus a fingerprint of model, config, data.

    Anything that changes the run (config, architecture, data sample, window split) changes
    the name, so a stale checkpoint is never resumed into a different training.
    """
    digest = hashlib.sha256()
    digest.update(repr((key, sorted(asdict(cfg).items()), type(net).__name__, length,
                        [(k, tuple(v.shape)) for k, v in net.state_dict().items()],
                        series.shape, len(train_starts), len(val_starts))).encode())
    step = max(1, len(series) // 4096)
    digest.update(np.ascontiguousarray(series[::step]).tobytes())
    every = max(1, len(train_starts) // 4096)
    digest.update(np.ascontiguousarray(train_starts[::every]).tobytes())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:80]
    return checkpoint_dir() / f"{slug}-{digest.hexdigest()[:20]}.pt"


def mean_loss(net: nn.Module, series: torch.Tensor, starts: torch.Tensor, length: int,
              batch_size: int) -> float:
    """Mean squared reconstruction error over the given windows."""
    net.eval()
    total = torch.zeros((), dtype=torch.float64, device=series.device)
    with torch.inference_mode(), _autocast(series.device):
        for chunk in torch.split(starts, batch_size):
            windows = gather_windows(series, chunk, length)
            total += ((net(windows).float() - windows) ** 2).mean().double() * len(chunk)
    return float(total) / max(len(starts), 1)


def train(
    net: nn.Module,
    series: np.ndarray,
    train_starts: np.ndarray,
    val_starts: np.ndarray,
    length: int,
    cfg: ModelConfig,
    device: torch.device,
    *,
    checkpoint_key: str | None = None,
    on_epoch: Callable[[int, TrainingReport], None] | None = None,
) -> TrainingReport:
    """Fit ``net`` in place on scaled ``series [n, c]``; returns the report, best weights loaded.

    ``checkpoint_key`` (e.g. group and training range) turns on per-epoch checkpoints and resume;
    ``on_epoch(epoch, report)`` is called after each epoch's checkpoint is written.
    """
    report = TrainingReport()
    began = time.perf_counter()
    if device.type == "cpu":  # small steps run best on fewer threads (tsad.model.device)
        use_cpu_threads(cfg.batch_size * length * series.shape[1])
    data = _to_device(series, device)
    train_idx = torch.from_numpy(np.asarray(train_starts, dtype=np.int64)).to(device)
    val_idx = torch.from_numpy(np.asarray(val_starts, dtype=np.int64)).to(device)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=_amp_dtype(device) == torch.float16)
    best_state = initial_state = copy.deepcopy(net.state_dict())
    stale, first_epoch = 0, 1
    ckpt = (checkpoint_path(checkpoint_key, net, series, train_starts, val_starts, length, cfg)
            if checkpoint_key else None)
    if ckpt is not None and ckpt.is_file():
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            net.load_state_dict(state["net"])
            optimiser.load_state_dict(state["optimiser"])
            scaler.load_state_dict(state["scaler"])
            generator.set_state(state["generator"])
            best_state = state["best"]
            stale, first_epoch = int(state["stale"]), int(state["epoch"]) + 1
            report = TrainingReport(**state["report"])
            report.resumed_from_epoch = first_epoch - 1
            log.info("resuming training from %s after epoch %d", ckpt, first_epoch - 1)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring unreadable checkpoint %s (%s): training from scratch", ckpt, exc)
            net.load_state_dict(initial_state)
            optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
            generator.manual_seed(cfg.seed)
            best_state, stale, first_epoch = copy.deepcopy(initial_state), 0, 1
            report = TrainingReport()
    for epoch in range(first_epoch, cfg.epochs + 1):
        if report.epochs_run and stale >= cfg.patience:
            break  # a checkpoint written just before an early stop
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
        running = torch.zeros((), dtype=torch.float64, device=device)
        for chunk in torch.split(order, cfg.batch_size):
            windows = gather_windows(data, chunk, length)
            with _autocast(device):
                loss = ((net(windows).float() - windows) ** 2).mean()
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            running += loss.detach().double() * len(chunk)
        val_loss = mean_loss(net, data, val_idx, length, cfg.batch_size * 4)
        report.train_losses.append(float(running) / max(len(order), 1))
        report.val_losses.append(val_loss)
        report.epochs_run = epoch
        log.info("epoch %d/%d: train loss %.4f, validation loss %.4f",
                 epoch, cfg.epochs, report.train_losses[-1], val_loss)
        if val_loss < report.best_val_loss - 1e-6:
            report.best_val_loss, report.best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
        if ckpt is not None:
            _save(ckpt, {"epoch": epoch, "net": net.state_dict(),
                         "optimiser": optimiser.state_dict(),
                         "scaler": scaler.state_dict(), "generator": generator.get_state(),
                         "best": best_state, "stale": stale,
                         "report": _report_state(report, time.perf_counter() - began)})
        if on_epoch is not None:
            on_epoch(epoch, report)
        if (hook := epoch_hook.get()) is not None:
            hook(epoch, cfg.epochs, report)
        if stale >= cfg.patience:
            log.info("early stop: no validation improvement for %d epochs", cfg.patience)
            break
    net.load_state_dict(best_state)
    net.eval()
    report.seconds += time.perf_counter() - began
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)
    return report


def _to_device(series: np.ndarray, device: torch.device) -> torch.Tensor:
    """The scaled series as one float32 tensor on ``device`` (through pinned memory on CUDA)."""
    host = torch.from_numpy(np.ascontiguousarray(series, dtype=np.float32))
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA only: bf16 where the GPU has it, else fp16. CPU stays float32."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device) -> Any:
    dtype = _amp_dtype(device)
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)


def _report_state(report: TrainingReport, elapsed: float) -> dict[str, Any]:
    """The report as plain data, its seconds including this process's time so far."""
    state = asdict(report)
    state["seconds"] = report.seconds + elapsed
    return state


def _save(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` of a checkpoint, atomically (``tsad.fs.atomic_output``)."""
    with fs.atomic_output(path) as tmp:
        torch.save(state, tmp)
