"""Event plots: reconstruction on the event's neighbourhood, and the PNG files themselves."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tsad.config import DetectorConfig, EventConfig, WindowConfig
from tsad.detection.events import find_events
from tsad.detection.plots import (event_plot_path, neighbourhood, picture_tag, plot_events,
                                  remove_other_plots)
from tsad.model.detector import Detector
from tsad.model.scaling import ChannelScaler
from tsad.model.scoring import Scores
from tsad.model.thresholds import FixedThreshold

DAY = date(2026, 11, 10)
CHANNELS = ["flow", "pressure", "temp"]


class Halve(torch.nn.Module):
    """A 'network' whose reconstruction is known: half of its (scaled) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


def detector(raw: np.ndarray, network: torch.nn.Module,
             channels: list[str] = CHANNELS) -> Detector:
    """A real Detector around a network whose output is known."""
    config = DetectorConfig(name="pumps", channels=channels,
                            window=WindowConfig(length=8, stride=2))
    return Detector(config, ChannelScaler.fit(raw), network, FixedThreshold(1.0))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_reconstruct_inverse_scales_window_outputs_and_leaves_gaps_nan() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal([10.0, 3.0, 80.0], [1.0, 0.2, 5.0], size=(64, 3))
    raw[30, 1] = np.nan  # windows containing it are skipped
    det = detector(raw, torch.nn.Identity())
    identity = det.reconstruct(raw)
    covered = np.isfinite(identity).all(axis=1)
    assert not covered[30] and covered[:23].all() and covered[39:].all()
    np.testing.assert_allclose(identity[covered], raw[covered], rtol=1e-5)  # float32 network

    halved = detector(raw, Halve()).reconstruct(raw)
    expected = (raw - det.scaler_.mean) * 0.5 + det.scaler_.mean  # scaled * 0.5, inverse-scaled
    np.testing.assert_allclose(halved[covered], expected[covered], rtol=1e-5)


def test_neighbourhood_pads_and_clips() -> None:
    assert neighbourhood(1000, 500, 510, window_length=8) == (440, 570)  # MIN_PAD_POINTS
    assert neighbourhood(1000, 500, 600, window_length=8) == (200, 900)  # 3x the event
    assert neighbourhood(100, 5, 10, window_length=32) == (0, 100)


def synthetic_day(n: int = 288) -> tuple[pd.DataFrame, Scores, list]:
    index = pd.date_range("2026-11-10", periods=n, freq="5min", tz="UTC", name="timestamp")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), index=index, columns=CHANNELS)
    per_channel = np.full((n, 3), 0.1)
    per_channel[100:110, 0] = 3.0  # flow leads the first event
    per_channel[200:204, 2] = 5.0  # temp leads the second
    aggregate = per_channel.mean(axis=1)
    scores = Scores(index, np.arange(0, n - 8, 2), per_channel[: (n - 8) // 2], per_channel,
                    aggregate)
    events = find_events(index, aggregate, per_channel, CHANNELS, 0.5,
                         EventConfig(min_points=2, merge_gap=3, top_channels=2))
    return frame, scores, events


def test_plot_events_writes_one_png_per_event_under_names_of_its_content(tmp_path: Path) -> None:
    frame, scores, events = synthetic_day()
    assert len(events) == 2
    det = detector(frame.to_numpy(), torch.nn.Identity())
    paths = plot_events([det], frame, scores, events, data_dir=tmp_path, group="pumps",
                        day=DAY, model_version="pumps/v0001")
    tags = [picture_tag(e, "pumps/v0001") for e in events]
    assert paths == [str(event_plot_path(tmp_path, "pumps", DAY, i, t))
                     for i, t in zip((1, 2), tags, strict=True)]
    assert paths[0].endswith(f"plots/group=pumps/date=2026-11-10/event-1-{tags[0]}.png")
    width, height = png_size(Path(paths[0]))
    assert width == 9 * 80 and height > 400  # one panel per top channel + the score panel
    first = Path(paths[0]).read_bytes()
    again = plot_events([det], frame, scores, events, data_dir=tmp_path, group="pumps",
                        day=DAY, model_version="pumps/v0001")
    # deterministic: a re-run that finds the same events writes the same names and bytes
    assert again == paths and Path(paths[0]).read_bytes() == first
    other = plot_events([det], frame, scores, events, data_dir=tmp_path, group="pumps",
                        day=DAY, model_version="pumps/v0002")
    assert not set(other) & set(paths)  # another model's picture never replaces this one


def test_shards_reconstruct_their_own_channels_in_one_picture(tmp_path: Path) -> None:
    """Two detectors owning disjoint channels (a sharded group): each top channel is drawn
    with its own shard's reconstruction."""
    frame, scores, events = synthetic_day()
    raw = frame.to_numpy()
    left = detector(raw[:, :2], torch.nn.Identity(), CHANNELS[:2])
    right = detector(raw[:, 2:], Halve(), CHANNELS[2:])
    paths = plot_events([left, right], frame, scores, events, data_dir=tmp_path,
                        group="pumps", day=DAY, model_version="pumps/s01/v0001")
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)


def test_plots_the_committed_rows_do_not_name_are_removed(tmp_path: Path) -> None:
    frame, scores, events = synthetic_day()
    det = detector(frame.to_numpy(), torch.nn.Identity())
    old = plot_events([det], frame, scores, events, data_dir=tmp_path, group="pumps", day=DAY,
                      model_version="v1")
    new = plot_events([det], frame, scores, events, data_dir=tmp_path, group="pumps", day=DAY,
                      model_version="v2")
    assert all(Path(p).is_file() for p in old + new)  # drawing removes nothing
    remove_other_plots(tmp_path, "pumps", DAY, new)
    assert [Path(p).exists() for p in old + new] == [False, False, True, True]
    remove_other_plots(tmp_path, "pumps", DAY, [])  # a run without events: none kept
    assert not any(Path(p).exists() for p in new)
    assert plot_events([det], frame, scores, [], data_dir=tmp_path, group="pumps", day=DAY,
                       model_version="v") == []
    with pytest.raises(ValueError, match="start at 1"):
        event_plot_path(tmp_path, "pumps", DAY, 0)


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, tsad.detection.plots; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
