"""The training loop: windows are gathered batch by batch from one series tensor, never all at once.

Early stopping watches the validation windows (the last part of the training range, never seen by
the optimiser); the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tsad.config import ModelConfig

log = logging.getLogger(__name__)


@dataclass
class TrainingReport:
    """What happened during training, for the model's metadata and the task log."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def gather(series: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Windows ``[len(starts), length, c]`` gathered from ``series [n, c]`` (one batch only)."""
    return series[starts[:, None] + torch.arange(length, device=series.device)]


def mean_loss(net: nn.Module, series: torch.Tensor, starts: torch.Tensor, length: int,
              batch_size: int) -> float:
    """Mean squared reconstruction error over the given windows."""
    net.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for chunk in torch.split(starts, batch_size):
            windows = gather(series, chunk, length)
            total += float(((net(windows) - windows) ** 2).mean()) * len(chunk)
            count += len(chunk)
    return total / max(count, 1)


def train(
    net: nn.Module,
    series: np.ndarray,
    train_starts: np.ndarray,
    val_starts: np.ndarray,
    length: int,
    cfg: ModelConfig,
    device: torch.device,
) -> TrainingReport:
    """Fit ``net`` in place on scaled ``series [n, c]``; returns the report, best weights loaded."""
    report = TrainingReport()
    began = time.perf_counter()
    data = torch.from_numpy(np.ascontiguousarray(series)).to(device)
    train_idx = torch.from_numpy(train_starts).to(device)
    val_idx = torch.from_numpy(val_starts).to(device)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    best_state = copy.deepcopy(net.state_dict())
    stale = 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(device)]
        running, seen = 0.0, 0
        for chunk in torch.split(order, cfg.batch_size):
            windows = gather(data, chunk, length)
            loss = ((net(windows) - windows) ** 2).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            running += float(loss.detach()) * len(chunk)
            seen += len(chunk)
        val_loss = mean_loss(net, data, val_idx, length, cfg.batch_size * 4)
        report.train_losses.append(running / max(seen, 1))
        report.val_losses.append(val_loss)
        report.epochs_run = epoch
        log.info("epoch %d/%d: train loss %.4f, validation loss %.4f",
                 epoch, cfg.epochs, report.train_losses[-1], val_loss)
        if val_loss < report.best_val_loss - 1e-6:
            report.best_val_loss, report.best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                log.info("early stop: no validation improvement for %d epochs", cfg.patience)
                break
    net.load_state_dict(best_state)
    net.eval()
    report.seconds = time.perf_counter() - began
    return report
