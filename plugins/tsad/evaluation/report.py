"""The evaluation tables, pooled and per file, as text for people and as JSON for tools.

Point figures (F1, FAR %, MAR %, AUC-PR) sit beside event figures: labelled events found of
those there are, and false events (``tsad.evaluation.metrics`` says how events are counted).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from tsad.evaluation.metrics import Confusion, EventCounts
from tsad.evaluation.protocol import Row

_HEAD = (f"{'F1':>5}  {'FAR %':>6}  {'MAR %':>6}  {'AUC-PR':>6}  {'found':>9}  {'false ev':>8}  "
         f"{'ev F1':>5}")


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)


def _cells(c: Confusion, e: EventCounts, auc_pr: float) -> str:
    found = f"{e.found}/{e.labelled}"
    return (f"{_fmt(c.f1, '.3f'):>5}  {_fmt(c.far, '.2f'):>6}  {_fmt(c.mar, '.2f'):>6}  "
            f"{_fmt(auc_pr, '.3f'):>6}  {found:>9}  {e.false:>8}  {_fmt(e.f1, '.3f'):>5}")


def format_table(rows: Sequence[Row], title: str = "") -> str:
    """Pooled over all files, one line per detector: point figures, then events found of the
    labelled ones, false events and event F1, then files and seconds."""
    width = max([len("detector")] + [len(r.detector) for r in rows])
    lines = [title] if title else []
    lines.append(f"{'detector':<{width}}  {_HEAD}  {'files':>5}  {'seconds':>7}")
    for r in rows:
        lines.append(f"{r.detector:<{width}}  {_cells(r.total, r.events, r.auc_pr)}  "
                     f"{len(r.files):>5}  {r.seconds:>7.1f}")
    return "\n".join(lines)


def format_files_table(rows: Sequence[Row], title: str = "per file") -> str:
    """One line per (file, detector), files in evaluation order, the file named on its first."""
    names = [f.name for f in rows[0].files] if rows else []
    file_width = max([len("file")] + [len(n) for n in names])
    width = max([len("detector")] + [len(r.detector) for r in rows])
    lines = [title] if title else []
    lines.append(f"{'file':<{file_width}}  {'detector':<{width}}  {_HEAD}")
    for i, name in enumerate(names):
        for j, r in enumerate(rows):
            f = r.files[i]
            shown = name if j == 0 else ""
            lines.append(f"{shown:<{file_width}}  {r.detector:<{width}}  "
                         f"{_cells(f.confusion, f.events, f.auc_pr)}")
    return "\n".join(lines)


def format_markdown(rows: Sequence[Row]) -> str:
    """A Markdown table with the pooled figures (for README and docs)."""
    lines = ["| detector | F1 | FAR % | MAR % | AUC-PR | events found | false events | event F1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, e = r.total, r.events
        lines.append(f"| {r.detector} | {_fmt(c.f1, '.3f')} | {_fmt(c.far, '.2f')} | "
                     f"{_fmt(c.mar, '.2f')} | {_fmt(r.auc_pr, '.3f')} | {e.found}/{e.labelled} | "
                     f"{e.false} | {_fmt(e.f1, '.3f')} |")
    return "\n".join(lines)


def format_files_markdown(rows: Sequence[Row]) -> str:
    """A Markdown table with one line per (file, detector)."""
    lines = ["| file | detector | F1 | FAR % | MAR % | AUC-PR | events found | false events |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for i, name in enumerate([f.name for f in rows[0].files] if rows else []):
        for r in rows:
            f = r.files[i]
            c, e = f.confusion, f.events
            lines.append(f"| {name} | {r.detector} | {_fmt(c.f1, '.3f')} | {_fmt(c.far, '.2f')} | "
                         f"{_fmt(c.mar, '.2f')} | {_fmt(f.auc_pr, '.3f')} | "
                         f"{e.found}/{e.labelled} | {e.false} |")
    return "\n".join(lines)


def to_json(rows: Sequence[Row], **extra: object) -> str:
    """``{"rows": [{"detector", "f1", "far", "mar", "auc_pr", "events_found", "false_events",
    ..., "per_file": [{"file", the same figures}]}], ...extra}``; FAR, MAR in %."""
    return json.dumps({"rows": [r.to_dict() for r in rows], **extra}, indent=2)
