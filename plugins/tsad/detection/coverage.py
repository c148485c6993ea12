"""How much of a group's day could be scored, and what that makes the run's status.

A window holding a missing reading is not scored (``tsad.windows.valid_starts``), so a dead
channel, an all-NaN day or a day shorter than one window scores nothing, and a patchy day scores
a part. Such a day must not look like a quiet ``ok`` day:

- ``no_data``: no window of any unit could be scored;
- ``partial``: more than ``MAX_SKIPPED_SHARE`` of the day's windows were skipped, or a channel
  has no reading at all (a shard of a sharded group scored without it);
- else the run is ``ok`` (or ``sustained``, ``tsad.detection.day_records``).

The run's message names the channels with missing readings and the share of windows skipped,
and counts the implausible readings that scoring clipped (``tsad.model.plausibility``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsad.detection.unit_scores import UnitScores
from tsad.model.plausibility import PLAUSIBLE_Z

#: A day with more than this share of its windows skipped (missing readings) is ``partial``.
MAX_SKIPPED_SHARE = 0.5
_NAMED = 5  # channels named in a message, most missing first


@dataclass(frozen=True)
class Coverage:
    """A group-day's scoring coverage: status (``ok``, ``partial`` or ``no_data``), what the
    run's message says about it ("" when nothing), and the count of clipped readings."""

    status: str
    message: str
    implausible_values: int


def coverage(units: list[UnitScores]) -> Coverage:
    """The coverage of a group-day's unit scores (module docstring)."""
    scored = sum(u.n_windows for u in units)
    possible = sum(u.possible_windows for u in units)
    rows = len(units[0].timestamps) if units else 0
    missing = {name: count for u in units for name, count in u.missing.items()}
    dead = [name for name, count in missing.items() if rows and count >= rows]
    skipped = 1.0 - scored / possible if possible else 1.0
    parts = []
    if scored == 0:
        status = "no_data"
        if possible == 0:
            parts.append(f"no data: the day has {rows} row(s), fewer than one window")
        else:
            parts.append(f"no data: none of the day's {possible} windows could be scored "
                         "(every one holds a missing reading)")
    elif dead or skipped > MAX_SKIPPED_SHARE:
        status = "partial"
        parts.append(f"partial: {possible - scored} of {possible} windows "
                     f"({_share(possible - scored, possible)}) skipped for missing readings")
    else:
        status = "ok"
    if status != "ok" and rows:
        parts.append(_missing_channels(missing, dead, rows))
    implausible = _implausible(units)
    if implausible[1]:
        parts.append(implausible[1])
    return Coverage(status, "; ".join(p for p in parts if p), implausible[0])


def _missing_channels(missing: dict[str, int], dead: list[str], rows: int) -> str:
    """Which channels lack readings: those without any, then the most missing."""
    said = []
    if dead:
        said.append("no reading at all in channel(s) " + ", ".join(dead[:_NAMED])
                    + (f" and {len(dead) - _NAMED} more" if len(dead) > _NAMED else ""))
    patchy = sorted(((-count, name) for name, count in missing.items()
                     if 0 < count < rows))[:_NAMED]
    if patchy:
        said.append("missing readings in " + ", ".join(f"{name} ({_share(-count, rows)})"
                                                       for count, name in patchy))
    return "; ".join(said)


def _share(count: int, rows: int) -> str:
    """``count / rows`` as a percentage that never rounds to 0 % or 100 % when it is not."""
    share = count / rows
    return "<1%" if share < 0.01 else ">99%" if share > 0.99 else f"{share:.0%}"


def _implausible(units: list[UnitScores]) -> tuple[int, str]:
    """The count of clipped readings and the message part naming their channels."""
    found: dict[str, dict[str, Any]] = {name: info for u in units
                                        for name, info in u.implausible.items()}
    total = sum(int(info["count"]) for info in found.values())
    if not total:
        return 0, ""
    named = ", ".join(f"{name} ({info['count']}, first at {info['first']})"
                      for name, info in sorted(found.items()))
    return total, (f"{total} implausible reading(s) (beyond {PLAUSIBLE_Z:g} training standard "
                   f"deviations) clipped: {named}")
