"""Training: per-epoch checkpoints let a killed training resume to the same weights, and a
checkpoint never leaks into a different training."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from tsad.config import ModelConfig
from tsad.model.networks import build_network
from tsad.model.training import checkpoint_dir, train

LENGTH = 16
CFG = ModelConfig(kind="conv1d", hidden=8, latent=2, epochs=4, batch_size=32, patience=10)
KEY = "pumps:2024-01-01:2024-01-07"

CHILD = """
import os, signal, sys
import numpy as np, torch
from tsad.config import ModelConfig
from tsad.model.networks import build_network
from tsad.model.training import train
series, train_starts, val_starts = (np.load(f"{{sys.argv[1]}}/{{f}}.npy") for f in "stv")
cfg = ModelConfig(**eval(sys.argv[2]))
torch.manual_seed(0)
net = build_network(cfg, series.shape[1], {length})
def die(epoch, report):
    if epoch == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: like an OOM kill
train(net, series, train_starts, val_starts, {length}, cfg, torch.device("cpu"),
      checkpoint_key={key!r}, on_epoch=die)
""".format(length=LENGTH, key=KEY)


@pytest.fixture
def data(tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    monkeypatch.setenv("TSAD_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("TSAD_THREADS", "1")  # tiny batches: threads only add barriers
    rng = np.random.default_rng(0)
    t = np.arange(800)[:, None]
    series = (np.sin(t / 7 + np.arange(3)) + 0.1 * rng.standard_normal((800, 3))).astype(np.float32)
    starts = np.arange(len(series) - LENGTH + 1)
    split = 640
    return series, starts[starts + LENGTH <= split], starts[starts >= split]


def _fit(data: tuple[np.ndarray, np.ndarray, np.ndarray], cfg: ModelConfig = CFG,
         key: str | None = KEY) -> tuple[torch.nn.Module, object]:
    series, train_starts, val_starts = data
    torch.manual_seed(0)
    net = build_network(cfg, series.shape[1], LENGTH)
    report = train(net, series, train_starts, val_starts, LENGTH, cfg, torch.device("cpu"),
                   checkpoint_key=key)
    return net, report


def _kill_during_epoch_3(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    for name, array in zip(("s", "t", "v"), data):
        np.save(tmp_path / f"{name}.npy", array)
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), repr(dataclasses.asdict(CFG))],
        env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(list(checkpoint_dir().glob("*.pt"))) == 1


def test_killed_training_resumes_to_the_same_weights(data, tmp_path: Path) -> None:
    reference, reference_report = _fit(data, key=None)
    _kill_during_epoch_3(data, tmp_path)
    resumed, report = _fit(data)
    assert report.resumed_from_epoch == 2 and report.epochs_run == CFG.epochs
    np.testing.assert_allclose(report.train_losses, reference_report.train_losses, rtol=1e-6)
    np.testing.assert_allclose(report.val_losses, reference_report.val_losses, rtol=1e-6)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    assert not list(checkpoint_dir().glob("*")), "the checkpoint is deleted once training succeeds"


def test_checkpoint_is_plain_state_and_never_leaks_into_another_run(data, tmp_path: Path) -> None:
    _kill_during_epoch_3(data, tmp_path)
    (path,) = checkpoint_dir().glob("*.pt")
    state = torch.load(path, weights_only=True)  # state dicts and numbers only: no pickled code
    assert state["epoch"] == 2 and set(state["net"]) == set(state["best"])
    assert len(state["report"]["train_losses"]) == 2
    _, other_config = _fit(data, dataclasses.replace(CFG, learning_rate=1e-3))
    assert other_config.resumed_from_epoch == 0
    _, other_key = _fit(data, key="pumps:2024-01-02:2024-01-08")
    assert other_key.resumed_from_epoch == 0
    assert list(checkpoint_dir().glob("*.pt")) == [path]  # the killed run's, untouched


def test_unreadable_checkpoint_is_ignored(data) -> None:
    from tsad.model.training import checkpoint_path

    series, train_starts, val_starts = data
    torch.manual_seed(0)
    net = build_network(CFG, series.shape[1], LENGTH)
    path = checkpoint_path(KEY, net, series, train_starts, val_starts, LENGTH, CFG)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half-written")
    _, report = _fit(data)
    assert report.resumed_from_epoch == 0 and report.epochs_run == CFG.epochs
    assert not path.exists()
