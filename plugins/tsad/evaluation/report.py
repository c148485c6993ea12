"""The evaluation table, as text for people and as JSON for tools."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from tsad.evaluation.protocol import Row


def _fmt(x: float, spec: str) -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)


def format_table(rows: Sequence[Row], title: str = "") -> str:
    """Aligned columns: detector, F1, FAR %, MAR %, AUC-PR, files, seconds."""
    width = max([len("detector")] + [len(r.detector) for r in rows])
    lines = [title] if title else []
    lines.append(f"{'detector':<{width}}  {'F1':>5}  {'FAR %':>6}  {'MAR %':>6}  {'AUC-PR':>6}  "
                 f"{'files':>5}  {'seconds':>7}")
    for r in rows:
        c = r.total
        lines.append(f"{r.detector:<{width}}  {_fmt(c.f1, '.3f'):>5}  {_fmt(c.far, '.2f'):>6}  "
                     f"{_fmt(c.mar, '.2f'):>6}  {_fmt(r.auc_pr, '.3f'):>6}  {len(r.auc_prs):>5}  "
                     f"{r.seconds:>7.1f}")
    return "\n".join(lines)


def format_markdown(rows: Sequence[Row]) -> str:
    """A Markdown table with the same figures (for README and docs)."""
    lines = ["| detector | F1 | FAR % | MAR % | AUC-PR |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        c = r.total
        lines.append(f"| {r.detector} | {_fmt(c.f1, '.3f')} | {_fmt(c.far, '.2f')} | "
                     f"{_fmt(c.mar, '.2f')} | {_fmt(r.auc_pr, '.3f')} |")
    return "\n".join(lines)


def to_json(rows: Sequence[Row], **extra: object) -> str:
    """``{"rows": [{"detector", "f1", "far", "mar", "auc_pr", ...}], ...extra}``; FAR, MAR in %."""
    return json.dumps({"rows": [r.to_dict() for r in rows], **extra}, indent=2)
