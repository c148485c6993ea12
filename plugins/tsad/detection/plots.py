"""One PNG per anomaly event: what an engineer opens first when investigating it.

The picture shows the event's top contributing channels (readings and the model's reconstruction)
around the event, and the anomaly score against the threshold, with the event shaded. Files live
next to the partitions, ``{data_dir}/plots/group={group}/date={YYYY-MM-DD}/event-{n}.png`` with
``n`` the event's 1-based position in time order, so a re-run overwrites them. When ``data_dir``
is object storage (``tsad.fs``) they are rendered in a local temporary folder, uploaded there, and
their URLs returned.

matplotlib is imported inside the functions (Agg canvas, no pyplot, no global state): importing
this module costs nothing and works in threads and forked task processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

PLOT_DPI = 80
MIN_PAD_POINTS = 60  # points of context on each side, at least
LOG_SCALE_RATIO = 20.0  # score axis goes logarithmic when the peak exceeds this x threshold


def plot_dir(data_dir: str | Path, group: str, day: date) -> Path:
    """Where a partition's event plots live."""
    return Path(data_dir) / "plots" / f"group={group}" / f"date={day.isoformat()}"


def event_plot_path(data_dir: str | Path, group: str, day: date, number: int) -> Path:
    """The deterministic file of the ``number``-th event (1-based, time order) of a partition."""
    if number < 1:
        raise ValueError(f"event numbers start at 1, got {number}")
    return plot_dir(data_dir, group, day) / f"event-{number}.png"


@dataclass(frozen=True)
class EventPicture:
    """Everything one plot shows, as plain arrays (UTC timestamps, raw units)."""

    title: str
    timestamps: np.ndarray  # [n] datetime64 (UTC, naive)
    channels: list[str]  # the plotted (top) channels
    readings: np.ndarray  # [n, len(channels)]
    reconstruction: np.ndarray  # [n, len(channels)], NaN where no window covered
    score: np.ndarray  # [n] aggregate anomaly score
    threshold: float
    event_start: np.datetime64
    event_end: np.datetime64


def render(picture: EventPicture, path: str | Path) -> Path:
    """Write ``picture`` as a PNG (atomically: a reader never sees half a file)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    k = len(picture.channels)
    fig = Figure(figsize=(9, 1.7 * k + 2.4), dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(k + 1, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(picture.title, fontsize=10)
    t = picture.timestamps
    for ax, name, j in zip(axes, picture.channels, range(k), strict=False):
        ax.plot(t, picture.readings[:, j], color="#1f77b4", lw=1.0, label="reading")
        ax.plot(t, picture.reconstruction[:, j], color="#ff7f0e", lw=1.0, ls="--",
                label="reconstruction")
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    if k:
        axes[0].legend(loc="upper left", fontsize=7, frameon=False, ncols=2)
    score_ax = axes[-1]
    score = np.where(np.isfinite(picture.score), picture.score, np.nan)
    score_ax.plot(t, score, color="#444444", lw=1.0, label="anomaly score")
    score_ax.axhline(picture.threshold, color="#d62728", lw=1.0, ls=":", label="threshold")
    finite = score[np.isfinite(score)]
    if finite.size and finite.max() > LOG_SCALE_RATIO * picture.threshold and finite.min() > 0:
        score_ax.set_yscale("log")
    score_ax.set_ylabel("score", fontsize=8)
    score_ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=2)
    score_ax.tick_params(labelsize=7)
    locator = AutoDateLocator()
    score_ax.xaxis.set_major_locator(locator)
    score_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    score_ax.set_xlabel("time (UTC)", fontsize=8)
    for ax in axes:
        ax.axvspan(picture.event_start, picture.event_end, color="#d62728", alpha=0.15, lw=0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png", metadata={"Software": None})
    os.replace(tmp, out)
    return out


def neighbourhood(n: int, start: int, stop: int, window_length: int) -> tuple[int, int]:
    """Index range ``[lo, hi)`` around event rows ``[start, stop)``: the event plus context."""
    pad = max(3 * (stop - start), 4 * window_length, MIN_PAD_POINTS)
    return max(0, start - pad), min(n, stop + pad)


def reconstruct(detector: Any, raw: np.ndarray) -> np.ndarray:
    """The detector's reconstruction of ``raw [n, c]`` (all its channels), in raw units.

    Each point is the mean of the network's outputs over the windows covering it (the scoring
    rule, applied to outputs instead of errors); NaN where no gap-free window covers a point.
    """
    import torch

    from tsad.windows import PointAccumulator, valid_starts, window_starts, window_view

    length, stride = detector.group.window.length, detector.group.window.stride
    scaled = detector.scaler_.transform(raw)
    n, c = scaled.shape
    sums = PointAccumulator(n, c)
    starts = valid_starts(scaled, window_starts(n, length, stride), length)
    if len(starts):
        windows = torch.from_numpy(np.ascontiguousarray(window_view(scaled, length)[starts]))
        detector.network_.eval()
        with torch.inference_mode():
            outputs = detector.network_(windows).numpy().astype(np.float64)
        sums.add(starts, outputs)
    return detector.scaler_.inverse(sums.result())


def plot_events(detector: Any, frame: Any, scores: Any, events: Sequence[Any], *,
                data_dir: str | Path, group: str, day: date, model_version: str) -> list[str]:
    """Render one PNG per event (``tsad.detection.events.Event``) and return their paths, in event order.

    Plots left over from an earlier run of the partition that had more events are removed.
    """
    from tsad import fs

    if fs.is_remote(data_dir):
        remote = str(fs.location(data_dir, "plots", f"group={group}", f"date={day.isoformat()}"))
        for stale in fs.glob(remote, "event-*.png"):
            fs.remove(stale)
        with fs.local_scratch("tsad-plots-") as scratch:
            local = plot_events(detector, frame, scores, events, data_dir=scratch, group=group,
                                day=day, model_version=model_version)
            urls = [f"{remote}/{Path(p).name}" for p in local]
            for path, url in zip(local, urls, strict=True):
                fs.upload(Path(path), url)
        return urls
    directory = plot_dir(data_dir, group, day)
    if directory.is_dir():
        for stale in directory.glob("event-*.png"):
            stale.unlink()
    if not events:
        return []
    channels = list(detector.channels)
    raw = frame[channels].to_numpy(dtype=np.float64)
    times = scores.timestamps.tz_convert("UTC").tz_localize(None).to_numpy()
    paths = []
    for number, event in enumerate(events, start=1):
        start = int(scores.timestamps.get_loc(event.start))
        stop = int(scores.timestamps.get_loc(event.end)) + 1
        lo, hi = neighbourhood(len(raw), start, stop, detector.group.window.length)
        recon = reconstruct(detector, raw[lo:hi])
        top = [name for name, _ in event.top_channels] or channels[:1]
        cols = [channels.index(name) for name in top]
        title = (f"{group} {day.isoformat()} event {number}: severity {event.severity:.1f}, "
                 f"peak {event.peak_time:%H:%M} UTC, model {model_version}")
        picture = EventPicture(
            title=title, timestamps=times[lo:hi], channels=top, readings=raw[lo:hi][:, cols],
            reconstruction=recon[:, cols], score=scores.aggregate[lo:hi],
            threshold=float(event.threshold),
            event_start=times[start], event_end=times[stop - 1])
        paths.append(str(render(picture, event_plot_path(data_dir, group, day, number))))
    return paths
