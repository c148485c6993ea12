#!/usr/bin/env python
"""tsad throughput benchmark: one command, one table, every ratio measured in the same run.

    .venv/bin/python bench/throughput.py            # full run (~15 min on 2 idle cores)
    .venv/bin/python bench/throughput.py --quick    # a few minutes, still prints every ratio
    .venv/bin/python bench/throughput.py --device cuda   # add the GPU rows on a CUDA machine

References, implemented in ``bench/references.py`` and timed interleaved with tsad (medians of
``--repeats``):
  tutorial   Python-loop windowing + ``np.stack`` (stride 1), the same trained model in eval mode,
             each timestamp scored by the window ending at it;
  pyod       PyOD's ``AutoEncoder`` on flattened stride-1 windows (``pip install -e '.[bench]'``);
  limits     fp32 matmul FLOP/s at the thread count tsad uses, and pyarrow's Parquet read of the
             same file.
Workloads: 30 channels x 100k and 1M timesteps (window 64, tsad's default stride and model), and
1,000 channels x 86,400 timesteps (a day at 1 Hz) in groups of 50. Peak RSS is measured in child
processes (``VmHWM``, reset after a warm-up scoring whose ``VmRSS`` is the constant: interpreter,
torch, model). Synthetic plant data (``bench/plant.py``) with labelled anomalies gives AUC-PR
beside every speed ratio. Each section below is one function taking the shared set-up
(``bench/workload.py``) and returning its rows and JSON results; ``main`` prints them in order.
Timings, FLOPs, memory and the table: ``bench/measure.py``; the GPU rows: ``bench/gpu.py``.
"""

from __future__ import annotations

# OpenMP's wait policy is left as the environment has it (unset: torch's default, idle threads
# spin a while), as tsad runs in production; one row compares ACTIVE and PASSIVE in fresh
# processes. PASSIVE suits workers shared with other busy processes (bench/README.md).

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from gpu import gpu_rows  # noqa: E402
from measure import (Section, Table, flops_per_window, machine, matmul_flops,  # noqa: E402
                     median_time, mem_available_gb, model_rate, peak_rss, rss_child)
from plant import CHANNELS, LENGTH, auc_pr, channel_names, plant, write_plant  # noqa: E402
from references import pyod_fit, pyod_score, tutorial  # noqa: E402
from tsad.config import DetectorConfig, ModelConfig, WindowConfig  # noqa: E402
from tsad.model.detector import Detector  # noqa: E402
from tsad.model.device import use_cpu_threads  # noqa: E402
from tsad.model.networks import autoencoder_of, build_detector_network, build_network  # noqa: E402
from tsad.model.scaling import ChannelScaler  # noqa: E402
from tsad.model.score_rule import ScoreRule  # noqa: E402
from tsad.model.thresholds import make_threshold  # noqa: E402
from tsad.model.training import train  # noqa: E402
from workload import DAY_CHANNELS, DAY_GROUP, DAY_STEPS, PROFILES, Setup, kinds, prepare  # noqa: E402


def e2e_rows(s: Setup) -> Section:
    """Machine limits and tsad, interleaved: the Parquet read, the errors, the score rule."""
    print("\n== end to end scoring, 30 channels (Parquet -> per-timestamp scores) ==")
    rows, results = [], {}
    for n, path in s.files.items():
        values = n * CHANNELS
        t_read, t_raw, t_rule, out = [], [], [], None
        for _ in range(s.repeats):
            began = time.perf_counter()
            pq.read_table(path, columns=s.names)
            t_read.append(time.perf_counter() - began)
            began = time.perf_counter()  # score_partition(detector, path), timed in its two parts
            raw = s.raw(path)
            t_raw.append(time.perf_counter() - began)
            began = time.perf_counter()
            out = s.detector.postprocess(raw, inplace=True)
            t_rule.append(time.perf_counter() - began)
            del raw
        t_read_m, t_raw_m, t_rule_m = (float(np.median(t)) for t in (t_read, t_raw, t_rule))
        t_tsad_m = float(np.median(np.add(t_raw, t_rule)))
        quality = auc_pr(out.aggregate, s.labels[n])
        rows += [
            (f"tsad e2e {n:,} x {CHANNELS}: values/s", f"{values / t_tsad_m / 1e6:.1f} M",
             f"{t_tsad_m:.2f}s = errors {t_raw_m:.2f}s + score rule {t_rule_m:.2f}s; "
             f"{len(out.window_starts) / t_tsad_m:,.0f} windows/s; AUC-PR {quality:.3f}"),
            (f"tsad streamed errors only {n:,} x {CHANNELS}: values/s",
             f"{values / t_raw_m / 1e6:.1f} M",
             "tsad.model.streaming.score_parquet, no score rule"),
            (f"pyarrow Parquet read {n:,} x {CHANNELS}: values/s",
             f"{values / t_read_m / 1e6:.0f} M",
             f"tsad e2e = {t_read_m / t_tsad_m:.1%} of the read rate")]
        results[f"tsad_{n}"] = {"seconds": t_tsad_m, "values_per_s": values / t_tsad_m,
                                "errors_seconds": t_raw_m, "rule_seconds": t_rule_m,
                                "windows": len(out.window_starts), "auc_pr": quality,
                                "read_seconds": t_read_m}
    return rows, results


def other_kind_rows(s: Setup) -> Section:
    """The other model kinds, same workload and rule (fresh weights: the same work per window)."""
    rows, path = [], s.files[s.large_n]
    for kind in kinds(s, "conv1d", "dense"):
        if kind == s.group.model.kind:
            continue
        torch.manual_seed(0)
        net = build_detector_network(ModelConfig(kind=kind), CHANNELS, LENGTH).eval()
        seconds, _ = median_time(lambda: s.detector.postprocess(s.raw(path, net), inplace=True),
                                 s.half)
        rows.append((f"tsad e2e {s.large_n:,} x {CHANNELS} with {kind} "
                     f"(hidden {s.group.model.hidden})",
                     f"{s.large_n * CHANNELS / seconds / 1e6:.1f} M",
                     f"{seconds:.2f}s, speed only"))
    return rows, {}


def stride_rows(s: Setup) -> Section:
    """Longer strides: every timestamp stays covered; the work falls with the stride."""
    rows, path, stride = [], s.files[s.large_n], s.group.window.stride
    for other in (stride * 2, stride * 4):
        if other > LENGTH:
            continue
        seconds, out = median_time(lambda: s.detector.postprocess(
            s.raw(path, stride=other), inplace=True), s.half)
        rows.append((f"tsad e2e {s.large_n:,} x {CHANNELS}, stride {other} (default {stride})",
                     f"{s.large_n * CHANNELS / seconds / 1e6:.1f} M",
                     f"{seconds:.2f}s, AUC-PR {auc_pr(out.aggregate, s.labels[s.large_n]):.3f}"))
    return rows, {}


def omp_rows(s: Setup) -> Section:
    """OpenMP waiting: spinning (torch's default) vs sleeping, in fresh processes, interleaved."""
    spin, sleep = [], []
    for _ in range(s.half):
        for policy, into in (("ACTIVE", spin), ("PASSIVE", sleep)):
            into.append(peak_rss(["tsad", str(s.model_dir), str(s.warmup),
                                  str(s.files[s.large_n])], {"OMP_WAIT_POLICY": policy})["seconds"])
    values = s.large_n * CHANNELS
    return [(f"tsad e2e {s.large_n:,} x {CHANNELS}, OMP_WAIT_POLICY=ACTIVE (spin)",
             f"{values / np.median(spin) / 1e6:.1f} M",
             "PASSIVE in the same conditions: %.1f M" % (values / np.median(sleep) / 1e6))], {}


def tutorial_rows(s: Setup) -> Section:
    """The tutorial pipeline (same model), interleaved with tsad, AUC-PR on the same rows."""
    print("\n== tutorial pipeline (Python loop + np.stack, stride 1, same model) ==")
    rows, results = [], {}
    net, scaler = s.detector.network_, s.detector.scaler_
    for n, path in s.files.items():
        fits = mem_available_gb() > 1.6 * n * LENGTH * CHANNELS * 4 / 2**30
        timed = min(n, s.profile["tutorial_cap"] or n) if fits else min(n, s.small_n)
        t_tut, t_ts, scores = [], [], None
        for _ in range(1 if n == s.large_n else s.half):
            began = time.perf_counter()
            scores = tutorial(net, path, s.names, scaler, timed)
            t_tut.append(time.perf_counter() - began)
            began = time.perf_counter()
            out = s.tsad(path)
            t_ts.append(time.perf_counter() - began)
        rate_tut = timed / float(np.median(t_tut))
        rate_tsad = n / float(np.median(t_ts))
        q_tut = auc_pr(scores, s.labels[n][:timed])
        q_tsad = auc_pr(out.aggregate[:timed], s.labels[n][:timed])
        scope = "" if timed == n else (f" (tutorial timed on the first {timed:,} rows, rate "
                                       "scaled: it is linear in n)")
        rows += [(f"tutorial {n:,} x {CHANNELS}: values/s", f"{rate_tut * CHANNELS / 1e6:.2f} M",
                  f"AUC-PR {q_tut:.3f} on its rows{scope}"),
                 (f"tsad / tutorial, {n:,} x {CHANNELS}", f"{rate_tsad / rate_tut:.1f}x",
                  f"tsad AUC-PR {q_tsad:.3f} vs {q_tut:.3f} on the same rows")]
        results[f"tutorial_{n}"] = {"rows_timed": timed, "values_per_s": rate_tut * CHANNELS,
                                    "ratio": rate_tsad / rate_tut, "auc_pr": q_tut,
                                    "tsad_auc_pr": q_tsad}
    return rows, results


def pyod_rows(s: Setup) -> Section:
    """PyOD's AutoEncoder on flattened stride-1 windows, interleaved with tsad."""
    small_n, labels = s.small_n, s.labels[s.small_n]
    print(f"\n== PyOD AutoEncoder on flattened windows (stride 1), {small_n:,} x 30 ==")
    try:
        began = time.perf_counter()
        model = pyod_fit(s.train_raw, epochs=s.profile["pyod_epochs"],
                         max_windows=s.profile["pyod_windows"])
    except ImportError:
        return [("tsad / pyod", "not measured", "pyod missing: pip install -e '.[bench]'")], {}
    fit_s = time.perf_counter() - began
    path, t_py, t_ts, scores = s.files[small_n], [], [], None
    for _ in range(s.half):
        began = time.perf_counter()
        scores = pyod_score(model, path, s.names)
        t_py.append(time.perf_counter() - began)
        began = time.perf_counter()
        out = s.tsad(path)
        t_ts.append(time.perf_counter() - began)
    ratio = float(np.median(t_py)) / float(np.median(t_ts))
    q_py, q_tsad = auc_pr(scores, labels), auc_pr(out.aggregate, labels)
    rows = [(f"pyod {small_n:,} x 30: timesteps scored/s", f"{small_n / np.median(t_py):,.0f}",
             f"AUC-PR {q_py:.3f}; fit {fit_s:.0f}s"),
            ("tsad / pyod, timesteps scored/s", f"{ratio:.1f}x",
             f"tsad AUC-PR {q_tsad:.3f} vs {q_py:.3f}")]
    return rows, {"pyod": {"ratio": ratio, "auc_pr": q_py, "tsad_auc_pr": q_tsad,
                           "fit_seconds": fit_s}}


def flops_rows(s: Setup, e2e_windows: float) -> Section:
    """Model FLOPs per window and the matmul limit, interleaved; ``e2e_windows``: windows/s of
    the large e2e workload, all steps."""
    print("\n== model FLOPs vs measured fp32 matmul FLOP/s (threads = %d) ==" % s.threads)
    rows, results, default = [], {}, s.group.model.kind
    for kind in kinds(s, "conv1d", "dense"):
        cfg = ModelConfig(kind=kind)
        model = autoencoder_of(s.detector.network_ if kind == default
                               else build_detector_network(cfg, CHANNELS, LENGTH).eval())
        flops = flops_per_window(model, CHANNELS)
        peaks, rates = [], []
        for _ in range(s.repeats):
            peaks.append(matmul_flops())
            rates.append(model_rate(model, CHANNELS))
        peak, rate = float(np.median(peaks)), float(np.median(rates))
        rows += [(f"{kind} (hidden {cfg.hidden}, latent {cfg.latent}): FLOPs/window",
                  f"{flops / 1e3:,.0f} k",
                  f"forward {rate:,.0f} windows/s = {flops * rate / 1e9:.0f} GFLOP/s"),
                 (f"{kind}: fraction of measured matmul FLOP/s", f"{flops * rate / peak:.0%}",
                  f"matmul {peak / 1e9:.0f} GFLOP/s fp32, {s.threads} threads")]
        if kind == default:
            rows.append((f"{kind}: e2e fraction ({s.large_n:,} workload, all steps)",
                         f"{flops * e2e_windows / peak:.0%}",
                         f"{e2e_windows:,.0f} windows/s end to end"))
        results[f"flops_{kind}"] = {"flops_per_window": flops, "windows_per_s": rate,
                                    "matmul": peak}
    return rows, results


def day_rows(s: Setup) -> Section:
    """1,000 channels x one day at 1 Hz, in groups of 50: default model and score rule per group
    (freshly initialised networks: the work per window is the same as a trained one's)."""
    print("\n== 1,000 channels x 86,400 timesteps in groups of %d ==" % DAY_GROUP)
    day_steps = s.profile["day_steps"]
    detectors = []
    for g in range(DAY_CHANNELS // DAY_GROUP):
        path = s.work / f"day-{g:02d}.parquet"
        write_plant(path, day_steps, DAY_GROUP, seed=100 + g, anomalies=False)
        config = DetectorConfig(name=f"g{g:02d}", sampling_seconds=1,
                                channels=channel_names(DAY_GROUP),
                                window=WindowConfig(length=LENGTH))
        raw, _ = plant(5_000, DAY_GROUP, seed=200 + g, anomalies=False)
        torch.manual_seed(g)
        index = pd.date_range("2024-01-01", periods=len(raw), freq="1s", tz="UTC")
        rule = ScoreRule.for_training(config.threshold, 1, index, LENGTH)
        network = build_detector_network(config.model, DAY_GROUP, LENGTH).eval()
        detectors.append((path, Detector(config, ChannelScaler.fit(raw), network,
                                         make_threshold(config.threshold), rule)))
    seconds, _ = median_time(lambda: [d.score_partition(p) for p, d in detectors], s.half)
    values = day_steps * DAY_CHANNELS
    return [(f"tsad e2e {DAY_CHANNELS} x {day_steps:,} ({len(detectors)} groups): values/s",
             f"{values / seconds / 1e6:.1f} M",
             f"{seconds:.1f}s" + ("" if day_steps == DAY_STEPS else " (part of a day)"))], \
        {"day": {"steps": day_steps, "seconds": seconds, "values_per_s": values / seconds}}


def training_rows(s: Setup) -> Section:
    """One epoch of stride-1 windows over 1M x 30, default settings but the kind."""
    rows, results = [], {}
    for kind in kinds(s, "conv1d"):
        n_epoch = s.profile["epoch_n"] if kind == "conv1d" else min(s.profile["epoch_n"], 100_000)
        cfg = ModelConfig(kind=kind, epochs=1)
        print(f"\n== training, {kind} (batch {cfg.batch_size}), one epoch ==")
        series = s.detector.scaler_.transform(plant(n_epoch, CHANNELS, seed=4, anomalies=False)[0])
        split = int(n_epoch * 0.8)
        starts = np.arange(n_epoch - LENGTH + 1)
        torch.manual_seed(0)
        model = build_network(cfg, CHANNELS, LENGTH)
        report = train(model, series, starts[starts + LENGTH <= split], starts[starts >= split],
                       LENGTH, cfg, torch.device("cpu"))
        per_1m = report.seconds * 1_000_000 / n_epoch
        scaled = "" if n_epoch == 1_000_000 else f" (scaled from {n_epoch:,} rows)"
        rows.append((f"training s/epoch, {kind}, 1M x 30 (stride-1 windows, batch "
                     f"{cfg.batch_size})", f"{per_1m:.0f} s",
                     f"{split:,} windows in {report.seconds:.1f}s{scaled}"))
        results[f"train_epoch_1m_seconds_{kind}"] = per_1m
    return rows, results


def rss_row(s: Setup, what: str, kind: str, path: Path, n: int, *extra: str) -> Section:
    """One child process's peak RSS, as a multiple of the raw float32 readings + the constant."""
    raw_mb = n * CHANNELS * 4 / 2**20
    rss = peak_rss([kind, str(s.model_dir), str(s.warmup), str(path), *extra])
    ratio = (rss["peak_mb"] - rss["base_mb"]) / raw_mb
    return [(what, f"{rss['peak_mb']:,.0f} MB",
             f"= {ratio:.2f}x raw float32 ({raw_mb:,.0f} MB) + {rss['base_mb']:,.0f} MB")], \
        {f"rss_{kind}_{n}" + "_".join(extra): {**rss, "raw_f32_mb": raw_mb, "ratio": ratio}}


def rss_rows(s: Setup) -> Section:
    """Peak RSS of each scoring path and the tutorial, in child processes."""
    print("\n== peak RSS (child processes; constant = RSS after a warm-up scoring of 20k rows) ==")
    large_n, big_n, large = s.large_n, s.profile["rss_big"], s.files[s.large_n]
    big = s.work / f"test-{big_n}.parquet"
    write_plant(big, big_n, CHANNELS, seed=5, anomalies=False)
    parts: list[Section] = []
    for n, path in ((large_n, large), (big_n, big)):
        need_gb = 4 * n * CHANNELS * 4 / 2**30 + 1  # errors and rule: ~3x raw float32
        if mem_available_gb() > need_gb:
            parts.append(rss_row(s, f"tsad peak RSS {n:,} x 30 (streamed + score rule)", "tsad",
                                 path, n))
        else:
            parts.append(([(f"tsad peak RSS {n:,} x 30 (streamed + score rule)", "skipped",
                            f"would need ~{need_gb:.0f} GB; {mem_available_gb():.0f} GB "
                            "available")], {}))
        parts.append(rss_row(s, f"tsad peak RSS {n:,} x 30 (streamed errors only)", "tsad-raw",
                             path, n))
    parts += [
        rss_row(s, f"tsad peak RSS {large_n:,} x 30, errors only, window 256", "tsad-raw", large,
                large_n, "256"),
        rss_row(s, f"in-memory path peak RSS {large_n:,} x 30 (read_partition + "
                "Detector.score)", "in-memory", large, large_n),
        rss_row(s, f"tutorial peak RSS {s.small_n:,} x 30", "tutorial", s.files[s.small_n],
                s.small_n)]
    return [row for rows, _ in parts for row in rows], \
        {key: value for _, results in parts for key, value in results.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes; every ratio still printed")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    parser.add_argument("--device", default="cpu", help="'cuda' adds the GPU rows")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (sets TSAD_THREADS; default: the affinity mask)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.rss_child:  # measure.peak_rss runs this script again as its child
        rss_child(args.rss_child)
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = PROFILES[mode]
    repeats = args.repeats or profile["repeats"]
    if args.threads:
        os.environ["TSAD_THREADS"] = str(args.threads)
    threads = use_cpu_threads()
    info = machine()
    print(f"tsad throughput benchmark ({mode}), {info['date']}")
    print(f"  {info['cpu']}, nproc {info['nproc']}, torch threads {threads}, "
          f"OMP_WAIT_POLICY={info['omp_wait_policy']}, "
          "load %.2f %.2f %.2f" % info["load_before"])
    work = args.workdir or Path(tempfile.mkdtemp(prefix="tsad-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    table = Table()
    results: dict[str, Any] = {"machine": info, "mode": mode, "repeats": repeats}

    s = prepare(profile, repeats, threads, work)
    model = s.group.model
    results["model"] = {"kind": model.kind, "hidden": model.hidden, "latent": model.latent,
                        "length": LENGTH, "stride": s.group.window.stride}

    def run(section: Section) -> None:
        table.extend(section[0])
        results.update(section[1])

    for section in (e2e_rows, other_kind_rows, stride_rows, omp_rows, tutorial_rows, pyod_rows):
        run(section(s))
    large = results[f"tsad_{s.large_n}"]
    run(flops_rows(s, large["windows"] / large["seconds"]))
    for section in (day_rows, training_rows, rss_rows):
        run(section(s))
    cpu_rates = {kind: results[f"flops_{kind}"]["windows_per_s"]
                 for kind in kinds(s, "conv1d", "dense")}
    run(gpu_rows(s, args.device, cpu_rates, results["train_epoch_1m_seconds_conv1d"]))

    info["load_after"] = os.getloadavg()
    results["table"] = table.rows
    print("\n" + table.markdown())
    print("\nload average after: %.2f %.2f %.2f" % info["load_after"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
