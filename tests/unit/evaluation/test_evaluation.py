"""Evaluation harness: metrics on hand-made cases, the SKAB loader, baselines and protocols."""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tsad.cli import main
from tsad.errors import DataError
from tsad.evaluation import (Confusion, EventCounts, FileOutput, Protocol, Row, average_precision,
                             confusion, evaluate_methods, event_counts, format_files_table,
                             format_markdown, format_table, load_labelled_dir, merge_rows,
                             read_series, to_json)
from tsad.evaluation.kinds import add_kinds, by_kind, format_kinds_markdown, read_kinds
from tsad.evaluation.baselines import FlagAll, PcaT2Q, Persistence, RollingZScore

CHANNELS = ["a", "b", "c"]


def write_skab(path: Path, frame: pd.DataFrame, labels: np.ndarray | None, crlf: bool = False) -> None:
    out = frame.copy()
    out.index = out.index.strftime("%Y-%m-%d %H:%M:%S")
    out.index.name = "datetime"
    if labels is not None:
        out["anomaly"] = labels.astype(float)
        out["changepoint"] = np.r_[0.0, np.diff(labels.astype(float)) != 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, sep=";", lineterminator="\r\n" if crlf else "\n")


def plant(n: int, seed: int, anomaly: slice | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Two correlated channels and a noisy one; the anomaly breaks the correlation of ``b``."""
    rng = np.random.default_rng(seed)
    drive = np.cumsum(rng.normal(0, 0.1, n)) * 0.2 + np.sin(np.arange(n) / 15)
    data = np.stack([drive, 2 * drive, rng.normal(0, 1, n)], axis=1) + rng.normal(0, 0.05, (n, 3))
    labels = np.zeros(n, dtype=bool)
    if anomaly is not None:
        data[anomaly, 1] = -data[anomaly, 1] + 1.0
        labels[anomaly] = True
    index = pd.date_range("2020-03-09 10:00:00", periods=n, freq="1s", name="timestamp")
    return pd.DataFrame(data, index=index, columns=CHANNELS), labels


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i, (folder, name) in enumerate([("valve1", "0.csv"), ("valve1", "10.csv"), ("valve2/deep", "2.csv")]):
        frame, labels = plant(700, seed=i, anomaly=slice(500, 620))
        write_skab(root / folder / name, frame, labels, crlf=(i == 0))
    write_skab(root / "anomaly-free" / "anomaly-free.csv", plant(1500, seed=9)[0], None)
    return root


def test_confusion_and_ratios_by_hand() -> None:
    c = confusion(np.array([1, 1, 1, 0, 0, 0, 0, 0], bool), np.array([1, 1, 0, 1, 0, 0, 0, 0], bool))
    assert c == Confusion(tp=2, fp=1, fn=1, tn=4)
    assert c.f1 == pytest.approx(2 / (2 + 1))
    assert (c.far, c.mar) == (pytest.approx(20.0), pytest.approx(100 / 3))
    assert (c + c).tp == 4 and math.isnan(Confusion().f1)


def test_event_counts_by_hand() -> None:
    labels = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0], bool)
    # flagged events: [1] overlaps the first label, [3..5] overlaps the second (one flagged row
    # inside is enough), [9] and [13] overlap nothing; the label at 11 is missed
    flags = np.array([0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1], bool)
    e = event_counts(labels, flags)
    assert e == EventCounts(labelled=3, found=2, flagged=4, false=2)
    assert e.missed == 1 and e.f1 == pytest.approx(2 / (2 + (1 + 2) / 2))
    assert event_counts(labels, labels) == EventCounts(3, 3, 3, 0)
    assert (e + e).false == 4 and math.isnan(EventCounts().f1)
    nothing = event_counts(np.zeros(5, bool), np.zeros(5, bool))
    assert nothing == EventCounts() and math.isnan(nothing.f1)
    assert event_counts(np.zeros(4, bool), np.ones(4, bool)) == EventCounts(0, 0, 1, 1)


def test_average_precision_by_hand() -> None:
    y = np.array([0, 0, 1, 1], bool)
    assert average_precision(np.array([0.1, 0.4, 0.35, 0.8]), y) == pytest.approx(5 / 6)
    assert average_precision(np.array([0.0, 0.0, 1.0, 1.0]), y) == 1.0
    assert average_precision(np.ones(4), y) == 0.5  # ties are one threshold: the positive share
    assert average_precision(np.array([np.nan, 0.0, 1.0, 2.0]), y) == 1.0  # NaN ranks lowest
    assert math.isnan(average_precision(np.ones(3), np.zeros(3, bool)))


def test_average_precision_matches_scikit_learn_with_ties_nan_and_inf() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(12)
    compared = 0
    for _ in range(400):
        n = int(rng.integers(1, 80))
        y = rng.random(n) < rng.uniform(0.05, 0.6)
        if not y.any():
            continue
        levels = int(rng.integers(1, 6))  # few distinct values: many ties
        s = rng.integers(0, levels, n).astype(float) if rng.random() < 0.7 else rng.normal(size=n)
        assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
        # NaN is the lowest score, all NaNs tied: as if they were one value below every other
        nan, top = rng.random(n) < 0.25, rng.random(n) < 0.1
        odd = np.where(nan, np.nan, np.where(top & ~nan, np.inf, s))
        oracle = np.where(nan, s.min() - 1, np.where(top & ~nan, s.max() + 1, s))
        assert average_precision(odd, y) == pytest.approx(average_precision_score(y, oracle),
                                                          abs=1e-12)
        shuffled = rng.permutation(n)  # ties make no row order luckier than another
        assert average_precision(odd[shuffled], y[shuffled]) == pytest.approx(
            average_precision(odd, y), abs=1e-12)
        compared += 1
    assert compared > 300


def test_average_precision_edge_cases() -> None:
    from sklearn.metrics import average_precision_score

    y = np.array([0, 1, 0, 1, 1, 0], bool)
    for constant in (np.full(6, 3.0), np.full(6, np.nan), np.full(6, np.inf)):
        assert average_precision(constant, y) == 0.5 == average_precision_score(y, np.ones(6))
    assert average_precision(np.array([np.nan, np.nan, 1.0]), np.array([1, 0, 0], bool)) == \
        pytest.approx(average_precision_score([1, 0, 0], [0.0, 0.0, 1.0]))  # 1/3, not 1/2 or 1
    # NaN tied with -inf, both below 0 (NaN ranked below -inf would give the -inf positive 1/2)
    assert average_precision(np.array([np.nan, -np.inf, 0.0]), np.array([0, 1, 0], bool)) == \
        pytest.approx(1 / 3)
    assert math.isnan(average_precision(np.array([0.2, 0.9]), np.zeros(2, bool)))  # documented
    assert math.isnan(average_precision(np.zeros(0), np.zeros(0, bool)))
    assert average_precision(np.array([0.3]), np.array([True])) == 1.0
    assert average_precision(np.array([0.1, np.nan]), np.ones(2, bool)) == 1.0
    with pytest.raises(ValueError, match="1-D of one length"):
        average_precision(np.zeros(3), np.zeros(2, bool))


def test_loader_finds_labelled_files_at_any_depth_in_natural_order(dataset: Path) -> None:
    files = load_labelled_dir(dataset)
    assert [f.name for f in files] == ["valve1/0.csv", "valve1/10.csv", "valve2/deep/2.csv"]
    first = files[0]
    assert list(first.frame.columns) == CHANNELS  # datetime, anomaly, changepoint are not channels
    assert str(first.frame.index.tz) == "UTC" and first.frame.index.name == "timestamp"
    assert first.labels.dtype == bool and first.labels.sum() == 120
    normal = read_series(dataset / "anomaly-free" / "anomaly-free.csv", require_labels=False)
    assert not normal.labels.any() and len(normal.frame) == 1500


def test_loader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no CSV file with a 'anomaly' column"):
        load_labelled_dir(tmp_path)
    frame, labels = plant(10, seed=0)
    write_skab(tmp_path / "bad.csv", frame.iloc[::-1], labels)
    with pytest.raises(DataError, match=r"bad\.csv: timestamps .* must strictly increase"):
        load_labelled_dir(tmp_path)
    labels = labels.astype(float)
    labels[3] = 2.0
    write_skab(tmp_path / "bad.csv", frame, labels)
    with pytest.raises(DataError, match=r"bad\.csv: column 'anomaly' must hold only 0 and 1"):
        load_labelled_dir(tmp_path)


def test_baselines_on_known_anomalies() -> None:
    frame, labels = plant(1000, seed=3, anomaly=slice(700, 800))
    pca = PcaT2Q().fit(frame.iloc[:400])
    scores, flags = pca.score(frame.iloc[400:])
    assert average_precision(scores, labels[400:]) > 0.9  # Q sees the broken correlation
    assert flags[labels[400:]].mean() > 0.8
    spiky = frame.copy()
    spiky.iloc[600, 2] += 20
    p_scores, p_flags = Persistence().fit(frame.iloc[:400]).score(spiky.iloc[400:])
    assert np.isnan(p_scores[0]) and p_flags[200] and np.nanargmax(p_scores) in (200, 201)
    assert FlagAll().fit(frame).score(frame)[1].all()


def test_per_file_protocol_sums_counts_over_test_rows(dataset: Path) -> None:
    files = load_labelled_dir(dataset)
    (row,) = evaluate_methods(files, [FlagAll()], Protocol(train_rows=400))
    assert row.total == Confusion(tp=3 * 120, fp=3 * 180, fn=0, tn=0)
    assert row.auc_pr == pytest.approx(120 / 300)
    assert [f.name for f in row.files] == ["valve1/0.csv", "valve1/10.csv", "valve2/deep/2.csv"]
    assert all(f.confusion == Confusion(tp=120, fp=180) and f.train_rows == 400 for f in row.files)
    # flagging everything is one event per file, and it overlaps that file's labelled segment
    assert row.events == EventCounts(labelled=3, found=3, flagged=3, false=0)
    with pytest.raises(DataError, match="nothing would be left to score"):
        evaluate_methods(files, [FlagAll()], Protocol(train_rows=700))


def test_train_file_protocol_fits_once_and_scores_every_row(dataset: Path) -> None:
    fits: list[int] = []

    class Counting(FlagAll):
        def fit(self, train: pd.DataFrame) -> FlagAll:
            fits.append(len(train))
            return self

    normal = read_series(dataset / "anomaly-free" / "anomaly-free.csv", require_labels=False)
    (row,) = evaluate_methods(load_labelled_dir(dataset), [Counting()], Protocol(train_file=normal))
    assert fits == [1500] and row.total.tp + row.total.fp == 3 * 700
    assert [len(o.scores) for o in row.outputs] == [700] * 3 and row.outputs[0].flags.all()
    merged = merge_rows([row], [row])
    assert merged[0].total.tp == 2 * row.total.tp and len(merged[0].auc_prs) == 6
    assert len(merged[0].outputs) == 6


class Pattern:
    """Flags fixed rows of each scored frame (to check per-file and event figures by hand)."""

    name = "pattern"

    def __init__(self, flagged: dict[int, list[int]]) -> None:
        self.flagged = flagged  # scored-row count -> flagged rows
        self.calls = 0

    def fit(self, train: pd.DataFrame) -> Pattern:
        return self

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        flags = np.zeros(len(frame), dtype=bool)
        flags[self.flagged[len(frame)]] = True
        return flags.astype(float), flags


def test_reports_per_file_and_pooled_with_events() -> None:
    long, long_labels = plant(600, seed=1, anomaly=slice(450, 550))  # 200 scored, label 50..149
    short, short_labels = plant(500, seed=2, anomaly=slice(420, 440))  # 100 scored, label 20..39
    files = [load_series(long, long_labels, "long.csv"), load_series(short, short_labels, "s.csv")]
    # long: one event inside the label (found) and two false ones; short: the label missed
    pattern = Pattern({200: [10, 11, 60, 61, 62, 190], 100: [80]})
    rows = evaluate_methods(files, [FlagAll(), pattern])
    row = rows[1]
    assert [f.events for f in row.files] == [EventCounts(1, 1, 3, 2), EventCounts(1, 0, 1, 1)]
    assert row.events == EventCounts(labelled=2, found=1, flagged=4, false=3)
    assert [f.confusion for f in row.files] == [Confusion(3, 3, 97, 97), Confusion(0, 1, 20, 79)]
    assert row.total == Confusion(3, 4, 117, 176)

    table = format_table(rows, title="t")
    assert "flag everything" in table and "AUC-PR" in table and "false ev" in table
    assert re.search(r"pattern .* 1/2 +3 +0\.333 +2 ", table)  # found/labelled, false, event F1
    per_file = format_files_table(rows).splitlines()
    assert per_file[0] == "per file" and len(per_file) == 2 + 2 * 2
    assert per_file[2].startswith("long.csv  flag everything") and " 1/1 " in per_file[2]
    assert per_file[3].startswith(" " * len("long.csv") + "  pattern") and " 1/1 " in per_file[3]
    assert per_file[5].startswith(" " * len("long.csv") + "  pattern") and " 0/1 " in per_file[5]
    assert format_markdown(rows).count("\n") == 3 and "| 1/2 | 3 |" in format_markdown(rows)

    data = json.loads(to_json(rows))
    assert set(data["rows"][0]) >= {"detector", "f1", "far", "mar", "auc_pr", "events_found",
                                    "events_missed", "false_events", "event_f1", "per_file"}
    assert data["rows"][0]["far"] == 100.0 and data["rows"][0]["mar"] == 0.0
    pooled, (first, second) = data["rows"][1], data["rows"][1]["per_file"]
    assert (pooled["events_found"], pooled["events_missed"], pooled["false_events"]) == (1, 1, 3)
    assert first["file"] == "long.csv" and first["train_rows"] == 400
    assert (first["events_found"], first["false_events"], first["tp"]) == (1, 2, 3)
    assert (second["events_missed"], second["false_events"], second["f1"]) == (1, 1, 0.0)


def load_series(frame: pd.DataFrame, labels: np.ndarray,  # type: ignore[no-untyped-def]
                name: str = "mem"):
    from tsad.evaluation import LabelledSeries

    return LabelledSeries(name, frame.tz_localize("UTC"), labels)


def quick_config(folder: Path) -> str:
    """A config file with one small, fast group ``quick``."""
    config = {"groups": [{"name": "quick", "channels": ["unused"],
                          "source": {"kind": "files", "path": "{date}.csv"},
                          "window": {"length": 8, "stride": 1},
                          "model": {"kind": "dense", "hidden": 8, "latent": 2, "epochs": 3},
                          "threshold": {"smoothing_seconds": 5}}]}
    (folder / "tsad.yaml").write_text(yaml.safe_dump(config))
    return str(folder / "tsad.yaml")


def test_cli_evaluate_prints_json_with_tsad_first(dataset: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_THREADS", "1")
    code = main(["--config", quick_config(tmp_path), "evaluate", str(dataset),
                 "--group", "quick", "--format", "json", "--train-rows", "0.6"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    names = [r["detector"] for r in data["rows"]]
    assert names[0] == "tsad dense (group quick)" and names[1:] == [
        "flag everything", "PCA T²+Q", "persistence x[t]=x[t-1]", "rolling z-score (events)"]
    assert all(0 <= r["far"] <= 100 and 0 <= r["mar"] <= 100 for r in data["rows"])
    assert data["rows"][0]["files"] == 3
    per_file = data["rows"][0]["per_file"]
    assert [f["file"] for f in per_file] == ["valve1/0.csv", "valve1/10.csv", "valve2/deep/2.csv"]
    assert all(f["events_labelled"] == 1 and f["train_rows"] == 420 for f in per_file)
    assert "first 60 % of its rows" in data["protocol"]
    assert sum(f["tp"] for f in per_file) == data["rows"][0]["tp"]


def test_simulated_dataset_is_labelled_in_skab_format(tmp_path: Path) -> None:
    from tsad.evaluation.simulated import write_simulated

    groups = write_simulated(tmp_path, train_days=1, test_days=1, seed=3)
    assert [g.name for g in groups] == ["pumps", "boiler"]
    for g in groups:
        normal = read_series(g.train_file, require_labels=False)
        (day,) = load_labelled_dir(g.labelled_dir)
        assert list(day.frame.columns) == list(normal.frame.columns)
        assert len(normal.frame) == len(day.frame) == 1440
        assert 0 < day.labels.mean() < 0.5  # 2-3 injected anomalies, minutes to hours long
        kinds = read_kinds(g.kinds_file)[day.name]
        np.testing.assert_array_equal(kinds != "", day.labels)
        assert set(kinds[day.labels]) <= {"spike", "level_shift", "stuck", "correlation_break",
                                          "noise"}


def test_results_per_kind_by_hand() -> None:
    kinds = {"d1.csv": np.array(["", "", "spike", "", "stuck", "stuck"], dtype=object),
             "d2.csv": np.array(["", "spike", "", ""], dtype=object)}
    row = Row("x", outputs=[
        FileOutput("d1.csv", np.array([0.1, 0.2, 0.9, 0.3, 0.25, 0.05]),
                   np.array([0, 0, 1, 0, 1, 0], bool)),
        FileOutput("d2.csv", np.array([0.5, 0.4, 0.1, 0.2]), np.array([1, 0, 0, 0], bool))])
    result = by_kind(row, kinds)
    assert list(result) == ["spike", "stuck"]
    # spike: ranked first in d1 (AP 1), second in d2 (AP 1/2); 1 of its 2 rows flagged
    assert result["spike"].auc_pr == pytest.approx(0.75) and result["spike"].recall == 0.5
    # stuck in d1, without the spike row: scores 0.25 (2nd of 5) and 0.05 (last): AP (1/2 + 2/5) / 2
    assert result["stuck"].auc_pr == pytest.approx((1 / 2 + 2 / 5) / 2)
    assert result["stuck"].recall == 0.5
    total = by_kind(row, kinds)
    add_kinds(total, result)
    assert total["spike"].rows == 4 and len(total["spike"].auc_prs) == 4
    table = format_kinds_markdown(["x"], [result])
    assert "| spike | 0.75 / 0.50 |" in table


def random_walks(root: Path, files: int = 2, n: int = 600) -> None:
    """Univariate random walks with a jump: repeating the last reading is the best predictor."""
    for i in range(files):
        x = np.cumsum(np.random.default_rng(i).normal(0, 1, n))
        labels = np.zeros(n, dtype=bool)
        labels[450:470] = True
        x[450:470] += 30
        index = pd.date_range("2020-01-01", periods=n, freq="1s", name="timestamp")
        write_skab(root / f"walk{i}.csv", pd.DataFrame({"x": x}, index=index), labels)


def test_real_training_warnings_name_the_file_and_detector(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tsad.config import DetectorConfig, ModelConfig, WindowConfig
    from tsad.evaluation import evaluate

    monkeypatch.setenv("TSAD_THREADS", "1")
    random_walks(tmp_path)
    settings = DetectorConfig(name="walks", channels=["x"], window=WindowConfig(length=8, stride=1),
                              model=ModelConfig(kind="dense", hidden=4, latent=1, epochs=2))
    with caplog.at_level(logging.WARNING):
        evaluate(tmp_path, settings=settings, baselines=False)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("not below the persistence baseline" in m for m in warned)
    assert all(m.startswith(("walk0.csv, tsad dense", "walk1.csv, tsad dense")) for m in warned)
    assert {m.split(",")[0] for m in warned} == {"walk0.csv", "walk1.csv"}


class Talkative(FlagAll):
    """Logs, warns and maybe fails while fitting and scoring."""

    name = "talkative"

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on  # raise while scoring a frame of this many rows

    def fit(self, train: pd.DataFrame) -> Talkative:
        logging.getLogger("tsad.model.training").warning("fit on %d rows: 100%% odd", len(train))
        warnings.warn("a fitting warning", RuntimeWarning, stacklevel=1)
        return self

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if len(frame) == self.fail_on:
            raise ValueError("cannot score this")
        logging.getLogger("tsad.detection").info("scoring")
        warnings.warn("a scoring warning", UserWarning, stacklevel=1)
        return super().score(frame)


def test_every_log_line_warning_and_error_names_the_file(dataset: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    files = load_labelled_dir(dataset)
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_methods(files, [Talkative()], Protocol(train_rows=400))
    logged = [r.getMessage() for r in caplog.records if r.name != "tsad.evaluation.protocol"]
    assert logged == [m for f in ("valve1/0.csv", "valve1/10.csv", "valve2/deep/2.csv")
                      for m in (f"{f}, talkative: fit on 400 rows: 100% odd",
                                f"{f}, talkative: scoring")]
    assert [(w.category, str(w.message)) for w in caught] == [
        (c, f"{f}, talkative: a {what} warning") for f in ("valve1/0.csv", "valve1/10.csv",
                                                            "valve2/deep/2.csv")
        for c, what in ((RuntimeWarning, "fitting"), (UserWarning, "scoring"))]
    assert caught[0].filename == __file__  # the origin is kept, so warning filters still apply

    with pytest.raises(ValueError, match=r"^valve1/0\.csv, talkative: cannot score this$"), \
            warnings.catch_warnings(record=True):
        evaluate_methods(files, [Talkative(fail_on=300)], Protocol(train_rows=400))
    caplog.clear()
    normal = read_series(dataset / "anomaly-free" / "anomaly-free.csv", require_labels=False)
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_methods(files, [Talkative()], Protocol(train_file=normal))
    (fitted,) = [r.getMessage() for r in caplog.records]  # fitted once: on the training file
    assert fitted.startswith(f"{normal.name}, talkative: fit on 1500 rows")
    logging.getLogger("tsad.model.training").warning("outside")
    assert caplog.records[-1].getMessage() == "outside"


def test_train_rows_as_a_fraction_of_each_file(tmp_path: Path) -> None:
    from tsad.evaluation.protocol import parse_train_rows

    for i, n in enumerate((600, 1000)):
        frame, labels = plant(n, seed=i, anomaly=slice(n - 100, n - 50))
        write_skab(tmp_path / f"{n}.csv", frame, labels)
    files = load_labelled_dir(tmp_path)
    (row,) = evaluate_methods(files, [FlagAll()], Protocol(train_rows=0.25))
    assert [(f.name, f.train_rows) for f in row.files] == [("600.csv", 150), ("1000.csv", 250)]
    assert row.total.tp + row.total.fp == 450 + 750
    assert "first 25 % of its rows" in Protocol(train_rows=0.25).describe()
    assert (parse_train_rows("400"), parse_train_rows("0.15"), parse_train_rows("1e-1")) == \
        (400, 0.15, 0.1)
    assert isinstance(parse_train_rows("400"), int)
    for bad in ("0", "-3", "1.0", "1.5", "400.0", "nan", "inf", "0.0", "abc", ""):
        with pytest.raises(ValueError, match=r"^--train-rows '.*': expected a row count"):
            parse_train_rows(bad)
    with pytest.raises(ValueError, match="train_rows must be"):
        Protocol(train_rows=True)
    with pytest.raises(DataError, match=r"600\.csv: 600 rows, a share of 0\.001 .* no row"):
        evaluate_methods(files, [FlagAll()], Protocol(train_rows=0.001))


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "ten"])
def test_cli_bad_train_rows_is_one_line_exit_2(dataset: Path, tmp_path: Path, value: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", quick_config(tmp_path), "evaluate", str(dataset),
                 f"--train-rows={value}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"tsad evaluate: error: --train-rows '{value}': expected a row count (an "
                          "integer >= 1, e.g. 400) or a share of each file's rows")


def test_rolling_z_score_window_is_chosen_on_training_rows_per_channel() -> None:
    from tsad.config import EventConfig
    from tsad.evaluation.baselines import ROLLING_WINDOWS

    rng = np.random.default_rng(5)
    n = 2000
    walk = np.cumsum(rng.normal(0, 1, n))  # its recent past predicts it: a short window
    steady = 10 + rng.normal(0, 1, n)  # iid around a level: the longest window allowed
    index = pd.date_range("2021-01-01", periods=n, freq="1min", name="timestamp")
    frame = pd.DataFrame({"walk": walk, "steady": steady}, index=index)
    fitted = RollingZScore().fit(frame.iloc[:800])
    assert fitted.windows[0] <= 20 and fitted.windows[1] == max(w for w in ROLLING_WINDOWS
                                                                 if w <= 800 // 4)
    assert fitted.events == EventConfig()
    # a 30-row level shift of the steady channel (in the test rows) is one event; the walk's
    # ordinary moves raise (almost) no false event
    test = frame.iloc[800:].copy()
    test.iloc[600:630, 1] += 6
    scores, flags = fitted.score(test)
    labels = np.zeros(len(test), dtype=bool)
    labels[600:630] = True
    assert len(scores) == len(test) and np.isfinite(scores).all()  # continues from training rows
    events = event_counts(labels, flags)
    assert events.found == 1 and events.false <= 2
    assert flags[600:603].all()
    # the same fit with other test rows: nothing about the test rows went into the fit
    assert RollingZScore().fit(frame.iloc[:800]).threshold == fitted.threshold


def test_rolling_z_score_is_given_the_events_rule() -> None:
    from tsad.config import EventConfig

    rng = np.random.default_rng(8)
    x = rng.normal(0, 1, 1200)
    x[1000] += 12  # one reading: one flagged row
    frame = pd.DataFrame({"x": x}, index=pd.date_range("2021-01-01", periods=1200, freq="1s"))
    strict = RollingZScore().fit(frame.iloc[:600])  # tsad's default: events of >= 3 points
    blips = RollingZScore(EventConfig(min_points=1, merge_gap=0)).fit(frame.iloc[:600])
    assert not strict.score(frame.iloc[600:])[1][400]
    assert blips.score(frame.iloc[600:])[1][400]
    assert strict.score(frame.iloc[600:])[0][400] > 8  # its score still ranks the spike first
    with pytest.raises(DataError, match="at least 8 training rows"):
        RollingZScore().fit(frame.iloc[:5])


def test_evaluate_lists_the_rolling_z_score_with_tsads_events_rule(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    import tsad.evaluation
    from tsad.config import EventConfig, load_config

    monkeypatch.setenv("TSAD_THREADS", "1")
    random_walks(tmp_path / "data")
    config = yaml.safe_load(Path(quick_config(tmp_path)).read_text())
    config["groups"][0]["events"] = {"min_points": 1, "merge_gap": 0}
    (tmp_path / "tsad.yaml").write_text(yaml.safe_dump(config))
    group = load_config(tmp_path / "tsad.yaml").group("quick")
    given: list[EventConfig] = []

    class Spy(RollingZScore):
        def __init__(self, events: EventConfig | None = None) -> None:
            given.append(events)
            super().__init__(events)

    monkeypatch.setattr(tsad.evaluation, "RollingZScore", Spy)
    rows = tsad.evaluation.evaluate(tmp_path / "data", settings=group)
    assert given == [group.events] and group.events.min_points == 1
    assert rows[-1].detector == "rolling z-score (events)"
    # each jump is one flagged row (the window then holds it): kept by this group's rule only
    assert rows[-1].events.found == 2
