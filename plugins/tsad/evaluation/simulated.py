"""A labelled dataset from tsad's plant simulator, written in the SKAB file format.

Data not used to choose tsad's defaults: for each sensor group of the embedded demo config, a
normal file of ``train_days`` clean days, then one labelled file per following day, each with the
simulator's 2-3 injected anomalies (spikes, level shifts, stuck sensors, correlation breaks,
noise bursts) marked in the ``anomaly`` column. Evaluate each group with the train-file protocol.
Each row's anomaly kind ("" = normal) is in ``kinds.json`` beside the labelled folder, for
results per kind (``tsad.evaluation.kinds``).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from tsad.config import DEFAULT_CONFIG, SourceConfig, load_config
from tsad.evaluation.datasets import LABEL_COLUMN, SEPARATOR

START = date(2026, 1, 1)


@dataclasses.dataclass(frozen=True)
class SimulatedGroup:
    """Where one group's files are: its normal training file and its folder of labelled days."""

    name: str
    train_file: Path
    labelled_dir: Path
    kinds_file: Path  # {labelled file name: [kind of each row, "" when normal]}


def write_simulated(out_dir: str | Path, train_days: int = 7, test_days: int = 6,
                    seed: int = 0) -> list[SimulatedGroup]:
    """Simulate every demo group and write ``{out_dir}/{group}/normal.csv`` and ``labelled/``."""
    from tsad.evaluation.simulator import simulate

    out = Path(out_dir)
    base = load_config(DEFAULT_CONFIG)
    test = [START + timedelta(days=train_days + i) for i in range(test_days)]
    with tempfile.TemporaryDirectory(prefix="tsad-sim-") as tmp:
        groups = [dataclasses.replace(g, source=SourceConfig(
            kind="files", layout="wide", format="parquet",
            path=f"{tmp}/{g.name}/{{date}}.parquet")) for g in base.groups]
        config = dataclasses.replace(base, groups=groups)
        injected = simulate(config, START, train_days + test_days, test, seed=seed)
        result = []
        for group in groups:
            days = [START + timedelta(days=i) for i in range(train_days + test_days)]
            frames = {d: _read_day(Path(tmp) / group.name / f"{d.isoformat()}.parquet")
                      for d in days}
            folder = out / group.name
            (folder / "labelled").mkdir(parents=True, exist_ok=True)
            normal = pd.concat([frames[d] for d in days[:train_days]])
            _write(normal, None, folder / "normal.csv")
            kinds: dict[str, list[str]] = {}
            for d in test:
                frame = frames[d]
                kind = np.full(len(frame), "", dtype=object)
                for a in injected:
                    if a.group == group.name:
                        start, end = pd.Timestamp(a.start), pd.Timestamp(a.end)
                        kind[(frame.index >= start) & (frame.index < end)] = a.kind
                _write(frame, kind != "", folder / "labelled" / f"{d.isoformat()}.csv")
                kinds[f"{d.isoformat()}.csv"] = kind.tolist()
            (folder / "kinds.json").write_text(json.dumps(kinds))
            result.append(SimulatedGroup(group.name, folder / "normal.csv", folder / "labelled",
                                         folder / "kinds.json"))
    return result


def _read_day(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    index = pd.DatetimeIndex(frame.pop("timestamp"), name="timestamp")
    frame.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return frame


def _write(frame: pd.DataFrame, labels: np.ndarray | None, path: Path) -> None:
    out = frame.copy()
    out.index = out.index.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
    out.index.name = "datetime"
    if labels is not None:
        out[LABEL_COLUMN] = labels.astype(float)
    out.to_csv(path, sep=SEPARATOR)
