"""One PNG per anomaly event: what an engineer opens first when investigating it.

The picture shows the event's top contributing channels (readings and the model's reconstruction)
around the event, and the anomaly score against the threshold, with the event shaded. Files live
next to the partitions, ``{data_dir}/plots/group={group}/date={YYYY-MM-DD}/event-{n}-{tag}.png``
with ``n`` the event's 1-based position in time order and ``tag`` a short hash of what the picture
shows (the event, its model version). Plots follow the committed records: a run draws its plots
before its records transaction, under names no other content shares, and removes the
partition's other plots only after the commit (``remove_other_plots``), so a run killed or
failed before the commit leaves the previous rows and the plots they name untouched, while a
re-run that finds the same events writes the same names and bytes. When ``data_dir`` is object storage (``tsad.fs``) they are
rendered in a local temporary folder, uploaded there, and their URLs returned.

matplotlib is imported inside the functions (Agg canvas, no pyplot, no global state): importing
this module costs nothing and works in threads and forked task processes.
"""

from __future__ import annotations

import hashlib
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


def event_plot_path(data_dir: str | Path, group: str, day: date, number: int,
                    tag: str = "") -> Path:
    """The file of the ``number``-th event (1-based, time order) of a partition whose picture
    is tagged ``tag`` (``picture_tag``)."""
    if number < 1:
        raise ValueError(f"event numbers start at 1, got {number}")
    suffix = f"-{tag}" if tag else ""
    return plot_dir(data_dir, group, day) / f"event-{number}{suffix}.png"


def picture_tag(event: Any, model_version: str) -> str:
    """A short hash of what an event's picture shows: another event or model, another name."""
    shown = (event.start.isoformat(), event.end.isoformat(), event.peak_time.isoformat(),
             repr(float(event.severity)), repr(event.top_channels), model_version)
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:10]


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
    height = 1.7 * k + 2.4
    fig = Figure(figsize=(9, height), dpi=PLOT_DPI)  # fixed margins: a constrained layout
    FigureCanvasAgg(fig)  # draws every figure twice and took a third of a plot's time
    fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.45 / height, bottom=0.55 / height,
                        hspace=0.25)
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
    from tsad import fs

    out = Path(path)
    with fs.atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return out


def neighbourhood(n: int, start: int, stop: int, window_length: int) -> tuple[int, int]:
    """Index range ``[lo, hi)`` around event rows ``[start, stop)``: the event plus context."""
    pad = max(3 * (stop - start), 4 * window_length, MIN_PAD_POINTS)
    return max(0, start - pad), min(n, stop + pad)


def plot_events(detectors: Sequence[Any], frame: Any, scores: Any, events: Sequence[Any], *,
                data_dir: str | Path, group: str, day: date, model_version: str) -> list[str]:
    """Render one PNG per event (``tsad.detection.events.Event``) and return their paths, in
    event order. ``detectors`` (``tsad.model.Detector``) own disjoint channels (a group's, or its
    shards'): each reconstructs its own; ``frame`` holds their readings. Nothing is removed."""
    from tsad import fs

    if fs.is_remote(data_dir):
        remote = str(fs.location(data_dir, "plots", f"group={group}", f"date={day.isoformat()}"))
        with fs.local_scratch("tsad-plots-") as scratch:
            local = plot_events(detectors, frame, scores, events, data_dir=scratch, group=group,
                                day=day, model_version=model_version)
            urls = [f"{remote}/{Path(p).name}" for p in local]
            for path, url in zip(local, urls, strict=True):
                fs.upload(Path(path), url)
        return urls
    if not events:
        return []
    owner = {name: d for d in detectors for name in d.channels}
    times = scores.timestamps.tz_convert("UTC").tz_localize(None).to_numpy()
    length = max(d.config.window.length for d in detectors)
    paths = []
    for number, event in enumerate(events, start=1):
        start = int(scores.timestamps.get_loc(event.start))
        stop = int(scores.timestamps.get_loc(event.end)) + 1
        lo, hi = neighbourhood(len(times), start, stop, length)
        top = [name for name, _ in event.top_channels if name in owner] or [next(iter(owner))]
        readings = frame[top].to_numpy(dtype=np.float64)[lo:hi]
        recon = np.column_stack([_reconstructed(owner[name], frame, name, lo, hi) for name in top])
        title = (f"{group} {day.isoformat()} event {number}: severity {event.severity:.1f}, "
                 f"peak {event.peak_time:%H:%M} UTC, model {model_version}")
        picture = EventPicture(
            title=title, timestamps=times[lo:hi], channels=top, readings=readings,
            reconstruction=recon, score=scores.aggregate[lo:hi],
            threshold=float(event.threshold), event_start=times[start], event_end=times[stop - 1])
        path = event_plot_path(data_dir, group, day, number, picture_tag(event, model_version))
        paths.append(str(render(picture, path)))
    return paths


def _reconstructed(detector: Any, frame: Any, channel: str, lo: int, hi: int) -> np.ndarray:
    """``channel``'s reconstruction on rows [lo, hi) by the detector that owns it."""
    raw = frame[detector.channels].to_numpy(dtype=np.float64)[lo:hi]
    return detector.reconstruct(raw)[:, detector.channels.index(channel)]


def remove_other_plots(data_dir: str | Path, group: str, day: date, keep: Sequence[str]) -> None:
    """Remove the partition's plots that are not in ``keep`` (the committed rows' plot paths):
    an earlier run's, or those of a run that failed before its commit."""
    from tsad import fs

    kept = {Path(str(k)).name for k in keep if k}
    if fs.is_remote(data_dir):
        remote = str(fs.location(data_dir, "plots", f"group={group}", f"date={day.isoformat()}"))
        for url in fs.glob(remote, "event-*.png"):
            if fs.name(url) not in kept:
                fs.remove(url)
        return
    directory = plot_dir(data_dir, group, day)
    for stale in directory.glob("event-*.png") if directory.is_dir() else []:
        if stale.name not in kept:
            stale.unlink(missing_ok=True)
