"""Progress bars: drawn on terminals only, fed by real training epochs through the epoch hook."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch

from tsad.config import ModelConfig
from tsad.progress import Bar, enabled, training_progress
from tsad.model.training import train


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_on_a_terminal_and_stays_silent_elsewhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tty = Tty()
    with Bar(4, "days", stream=tty) as bar:
        bar.update(1, "2026-11-10 pumps")
        bar.update(3)
    out = tty.getvalue()
    assert "days [" in out and "1/4  25%" in out and "4/4 100%" in out and out.endswith("\n")
    assert "2026-11-10 pumps" in out

    pipe = io.StringIO()
    with Bar(2, "days", stream=pipe) as bar:
        bar.update(2)
    assert pipe.getvalue() == ""
    monkeypatch.setenv("TSAD_PROGRESS", "0")
    assert not enabled(Tty())


def test_training_reports_every_epoch_to_the_bar_and_logs_epoch_lines(
        caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    series = rng.normal(size=(200, 2)).astype(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    cfg = ModelConfig(kind="dense", hidden=2, latent=1, epochs=3, batch_size=32, patience=5)
    tty = Tty()
    with caplog.at_level(logging.INFO, logger="tsad.model.training"), training_progress(stream=tty):
        train(net, series, np.arange(0, 120), np.arange(150, 190), 1, cfg, torch.device("cpu"))
    out = tty.getvalue()
    assert "training [" in out and "3/3 100%" in out and "training epoch 3/3" in out
    # what an Airflow task log shows instead of a bar (no terminal there)
    assert [r.getMessage()[:9] for r in caplog.records if r.getMessage().startswith("epoch")] \
        == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]

    outer = Bar(1, "days", stream=Tty())
    with training_progress(outer):
        train(net, series, np.arange(0, 120), np.arange(150, 190), 1, cfg, torch.device("cpu"))
    assert outer.note.startswith("training epoch 3/3, validation loss")
