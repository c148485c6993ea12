"""Progress for long work outside Airflow: a bar for multi-day CLI runs and one per training.

Bars draw on a terminal only (stderr is a TTY and ``TSAD_PROGRESS`` is not ``0``); in a pipe, a
file or an Airflow task they stay silent, and the task log gets the training's per-epoch lines
from ``tsad.model.training``'s logger instead. Standard library only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


def enabled(stream: TextIO) -> bool:
    """Whether bars should draw on ``stream``."""
    if os.environ.get("TSAD_PROGRESS", "").strip() == "0":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Bar:
    """``label [#####.....] 3/10 30% 0:12 note``, redrawn in place on one line."""

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None,
                 show: bool | None = None, width: int = 24) -> None:
        self.total, self.label, self.width = max(int(total), 0), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.show = enabled(self.stream) if show is None else show
        self.done, self.note = 0, ""
        self._began = time.monotonic()
        self._drawn = False

    def __enter__(self) -> Bar:
        self._draw()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self.note = note or self.note
        self._draw()

    def write(self, line: str) -> None:
        """Print a line above the bar (the bar is redrawn under it)."""
        if self.show and self._drawn:
            self.stream.write("\r\x1b[2K")
        print(line, file=sys.stdout if self.stream is sys.stderr else self.stream, flush=True)
        self._draw()

    def close(self) -> None:
        if self.show and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
            self.show = False

    def render(self) -> str:
        share = self.done / self.total if self.total else 0.0
        filled = int(round(share * self.width))
        elapsed = int(time.monotonic() - self._began)
        note = f" {self.note}" if self.note else ""
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done}/{self.total} {share:4.0%} {elapsed // 60}:{elapsed % 60:02d}{note}")

    def _draw(self) -> None:
        if self.show:
            self.stream.write("\r\x1b[2K" + self.render())
            self.stream.flush()
            self._drawn = True


@contextmanager
def training_progress(bar: Bar | None = None, *, stream: TextIO | None = None,
                      show: bool | None = None) -> Iterator[None]:
    """Inside the block, every training reports its epochs (via ``training.epoch_hook``): as the
    note of ``bar`` (one line for a multi-day run), else on a bar of its own."""
    from tsad.model import training

    own: list[Bar] = []

    def hook(epoch: int, epochs: int, report: Any) -> None:
        note = (f"training epoch {epoch}/{epochs}, validation loss "
                f"{report.val_losses[-1]:.4f}")
        if bar is not None:
            bar.note = note
            bar._draw()  # noqa: SLF001 - same module
            return
        if not own or epoch <= own[-1].done:
            if own:
                own[-1].close()
            own.append(Bar(epochs, "training", stream=stream, show=show))
            own[-1].done = epoch - 1
        own[-1].update(epoch - own[-1].done, note)

    token = training.epoch_hook.set(hook)
    try:
        yield
    finally:
        training.epoch_hook.reset(token)
        for b in own:
            b.close()
