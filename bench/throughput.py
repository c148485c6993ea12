#!/usr/bin/env python
"""tsad throughput benchmark: one command, one table, every ratio measured in the same run.

    .venv/bin/python bench/throughput.py            # full run (~15 min on 2 idle cores)
    .venv/bin/python bench/throughput.py --quick    # a few minutes, still prints every ratio
    .venv/bin/python bench/throughput.py --device cuda   # add the GPU rows on a CUDA machine

References, implemented here and timed interleaved with tsad (medians of ``--repeats``):
  tutorial   Python-loop windowing + ``np.stack`` (stride 1), the same trained model in eval mode,
             each timestamp scored by the window ending at it;
  pyod       PyOD's ``AutoEncoder`` on flattened stride-1 windows (``pip install -e '.[bench]'``);
  limits     fp32 matmul FLOP/s at the thread count tsad uses, and pyarrow's Parquet read of the
             same file.
Workloads: 30 channels x 100k and 1M timesteps (window 64, tsad's default stride and model), and
1,000 channels x 86,400 timesteps (a day at 1 Hz) in groups of 50. Peak RSS is measured in child
processes (``VmHWM``, reset after a warm-up scoring whose ``VmRSS`` is the constant: interpreter,
torch, model). Synthetic plant data with labelled anomalies gives AUC-PR beside every speed ratio.
"""

from __future__ import annotations

import os

# OpenMP's wait policy is left as the environment has it (unset: torch's default, idle threads
# spin a while), as tsad runs in production; one row compares ACTIVE and PASSIVE in fresh
# processes. PASSIVE suits workers shared with other busy processes (bench/README.md).

import argparse  # noqa: E402
import json  # noqa: E402
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from tsad.config import DetectorConfig, ModelConfig, WindowConfig  # noqa: E402
from tsad.model.detector import Detector  # noqa: E402
from tsad.model.score_rule import ScoreRule  # noqa: E402
from tsad.model.device import use_cpu_threads  # noqa: E402
from tsad.model.networks import (autoencoder_of, build_detector_network,  # noqa: E402
                           build_network)
from tsad.model.scaling import ChannelScaler  # noqa: E402
from tsad.model.scoring import batch_windows  # noqa: E402
from tsad.model.streaming import score_parquet  # noqa: E402
from tsad.model.thresholds import make_threshold  # noqa: E402
from tsad.model.training import train  # noqa: E402
from tsad.windows import gather_windows  # noqa: E402

LENGTH = 64
CHANNELS = 30
DAY_CHANNELS, DAY_STEPS, DAY_GROUP = 1000, 86_400, 50
BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds
PROFILES: dict[str, dict[str, Any]] = {  # smoke: a seconds-long check that the script runs
    "full": {"n_train": 200_000, "epochs": 8, "small": 100_000, "large": 1_000_000,
             "tutorial_cap": None, "pyod_epochs": 10, "pyod_windows": 40_000,
             "day_steps": DAY_STEPS, "epoch_n": 1_000_000, "rss_big": 10_000_000, "repeats": 5},
    "quick": {"n_train": 50_000, "epochs": 3, "small": 100_000, "large": 1_000_000,
              "tutorial_cap": 100_000, "pyod_epochs": 3, "pyod_windows": 10_000,
              "day_steps": DAY_STEPS // 4, "epoch_n": 100_000, "rss_big": 3_000_000, "repeats": 3},
    "smoke": {"n_train": 5_000, "epochs": 1, "small": 10_000, "large": 30_000,
              "tutorial_cap": 10_000, "pyod_epochs": 1, "pyod_windows": 1_000,
              "day_steps": 2_000, "epoch_n": 10_000, "rss_big": 60_000, "repeats": 1},
}


# ---------------------------------------------------------------------------- synthetic plant

def plant(n: int, channels: int, seed: int, anomalies: bool,
          t0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Readings ``[n, channels]`` mixed from shared drivers (cycles, load regimes, a slow AR
    disturbance), plus labels of injected anomalies: spikes, level shifts, noise bursts, stuck
    sensors and correlation breaks."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(1000 + channels)  # a channel's character does not depend on seed
    t = np.arange(t0, t0 + n, dtype=np.float64)
    regime = np.repeat(rng.choice([0.15, 0.5, 0.9], size=n // 3000 + 2), 3000)[:n]
    load = lfilter([0.02], [1, -0.98], regime, zi=[0.98 * regime[0]])[0]
    drivers = np.stack([
        np.sin(2 * np.pi * t / 1440), np.sin(2 * np.pi * t / 97 + 1.0), load,
        lfilter([1.0], [1, -0.99], 0.05 * rng.standard_normal(n)),
        load * np.sin(2 * np.pi * t / 331 + 2.0)], axis=1)
    weights = mix.normal(size=(drivers.shape[1], channels))
    scale, offset = mix.uniform(0.5, 5, channels), mix.uniform(-10, 10, channels)
    noise = mix.uniform(0.02, 0.1, channels)
    x = (drivers @ weights + noise * rng.standard_normal((n, channels))) * scale + offset
    labels = np.zeros(n, dtype=bool)
    if anomalies:
        sd = x.std(axis=0)
        for _ in range(max(1, n // 4000)):
            kind = rng.integers(5)
            span = int(rng.integers(1, 4) if kind == 0 else rng.integers(30, 250))
            start = int(rng.integers(LENGTH, n - span - LENGTH))
            rows = slice(start, start + span)
            cols = rng.choice(channels, size=int(rng.integers(1, 4)), replace=False)
            if kind == 0:
                x[rows, cols] += rng.choice([-6, 6]) * sd[cols]
            elif kind == 1:
                x[rows, cols] += rng.choice([-2.5, 2.5]) * sd[cols]
            elif kind == 2:
                x[rows, cols] += 1.5 * sd[cols] * rng.standard_normal((span, len(cols)))
            elif kind == 3:
                x[rows, cols] = x[start, cols]
            else:
                x[rows, cols] = 2 * x[:, cols].mean(axis=0) - x[rows, cols]
            labels[rows] = True
    return x, labels


def write_plant(path: Path, n: int, channels: int, seed: int, anomalies: bool,
                chunk: int = 1 << 20) -> np.ndarray:
    """Write a partition-shaped Parquet file (``timestamp[us, UTC]`` + float64 channels) chunk by
    chunk (row groups of ``chunk`` rows, pyarrow's default size); returns the labels."""
    names = [f"c{j:04d}" for j in range(channels)]
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("timestamp", stamp)] + [(c, pa.float64()) for c in names])
    labels = []
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n, chunk):
            m = min(chunk, n - lo)
            x, lab = plant(m, channels, seed * 7919 + lo, anomalies, t0=lo)
            stamps = pa.array(BASE_US + (lo + np.arange(m)) * 1_000_000, type=stamp)
            columns = [stamps, *[pa.array(x[:, j]) for j in range(channels)]]
            writer.write_table(pa.table(columns, schema=schema))
            labels.append(lab)
    return np.concatenate(labels)


def channel_names(channels: int) -> list[str]:
    return [f"c{j:04d}" for j in range(channels)]


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of per-timestamp scores (NaN = never flagged, ranked last)."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    order = np.argsort(-s, kind="stable")
    hits = labels[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / max(hits.sum(), 1))


# ---------------------------------------------------------------------------- references

def tutorial(network: torch.nn.Module, path: Path, channels: list[str], scaler: ChannelScaler,
             rows: int | None = None, batch: int = 256) -> np.ndarray:
    """The tutorial pipeline: pandas read, a Python loop of window slices, ``np.stack``, then the
    model in eval mode; each timestamp gets the error of the window ending at it."""
    frame = pd.read_parquet(path, columns=channels)
    series = scaler.transform(frame.to_numpy()[:rows])
    windows = []
    for i in range(len(series) - LENGTH + 1):
        windows.append(series[i: i + LENGTH])
    x = np.stack(windows)
    network.eval()
    errors = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i: i + batch])
            errors.append(((network(xb) - xb) ** 2).mean(dim=(1, 2)).numpy())
    scores = np.full(len(series), np.nan)
    scores[LENGTH - 1:] = np.concatenate(errors)
    return scores


def pyod_fit(train_raw: np.ndarray, epochs: int, max_windows: int) -> Any:
    """PyOD's AutoEncoder (its defaults but epochs) on flattened training windows."""
    from pyod.models.auto_encoder import AutoEncoder

    step = max(1, (len(train_raw) - LENGTH + 1) // max_windows)
    flat = flat_windows(train_raw)[::step]
    model = AutoEncoder(epoch_num=epochs, verbose=0, random_state=0)
    model.fit(flat)
    return model


def flat_windows(raw: np.ndarray) -> np.ndarray:
    """Stride-1 windows flattened to ``[n - L + 1, L * c]`` (one copy, vectorised: fair to PyOD)."""
    view = np.lib.stride_tricks.sliding_window_view(raw, LENGTH, axis=0).transpose(0, 2, 1)
    return view.reshape(len(view), -1)


def pyod_score(model: Any, path: Path, channels: list[str]) -> np.ndarray:
    raw = pd.read_parquet(path, columns=channels).to_numpy()
    scores = np.full(len(raw), np.nan)
    scores[LENGTH - 1:] = model.decision_function(flat_windows(raw))
    return scores


# ---------------------------------------------------------------------------- measurements

def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return float(np.median(times)), out


def matmul_flops(device: str = "cpu", dtype: torch.dtype = torch.float32,
                 size: int = 2048) -> float:
    """Measured dense matmul FLOP/s (best of a short burst: the machine's attainable rate)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        if device != "cpu":
            torch.cuda.synchronize()
        began = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best


def flops_per_window(network: torch.nn.Module, channels: int) -> float:
    """Matmul/conv FLOPs of one window's forward pass: torch's counter, plus the recurrent
    layers it does not see (LSTM, LSTMCell: 2 x 4H x (I + H) per step), counted by hooks."""
    from torch.utils.flop_counter import FlopCounterMode

    recurrent = [0.0]

    def count(module: torch.nn.Module, args: tuple[Any, ...], _: Any) -> None:
        x, hidden, size = args[0], module.hidden_size, module.input_size
        rows = x.numel() // size  # batch x steps (LSTM) or batch (one LSTMCell step)
        per_row = 2 * 4 * hidden * (size + hidden)
        if isinstance(module, torch.nn.LSTM):  # later layers take the hidden state as input
            per_row += (module.num_layers - 1) * 2 * 4 * hidden * 2 * hidden
        recurrent[0] += per_row * rows

    hooks = [m.register_forward_hook(count) for m in network.modules()
             if isinstance(m, (torch.nn.LSTM, torch.nn.LSTMCell))]
    x = torch.randn(64, LENGTH, channels)
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            network(x)
    finally:
        for hook in hooks:
            hook.remove()
    return (counter.get_total_flops() + recurrent[0]) / 64


def model_rate(network: torch.nn.Module, channels: int, device: str = "cpu", seconds: float = 1.0,
               batch: int | None = None, amp: bool = False) -> float:
    """Windows/s of the forward pass alone at tsad's batch size and memory layout."""
    batch = batch or batch_windows(LENGTH, channels)
    data = torch.randn(batch * 8 + LENGTH, channels, device=device)
    x = gather_windows(data, torch.arange(0, batch * 8, 8, device=device), LENGTH)
    network = network.to(device).eval()
    with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
        network(x)
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            network(x)
            count += 1
        if device != "cpu":
            torch.cuda.synchronize()
        return count * batch / (time.perf_counter() - began)


def peak_rss(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run this script as a child that reports its RSS before and after the measured step."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", *args], capture_output=True,
                         text=True, check=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_child(argv: list[str]) -> None:
    """Child process: warm up on a small file, then run one scoring path on the big file."""
    kind, model_dir, small, big = argv[0], Path(argv[1]), Path(argv[2]), Path(argv[3])
    length = int(argv[4]) if len(argv) > 4 else LENGTH
    detector = Detector.load(model_dir)
    group = detector.config
    net, scaler, names = detector.network_, detector.scaler_, group.channels
    stride = group.window.stride
    if length != LENGTH:  # same model family, another window length (memory only)
        net, stride = build_detector_network(group.model, len(names), length).eval(), length // 8

    def run(path: Path) -> None:
        if kind == "tsad":  # Parquet -> streamed errors -> the detector's score rule
            detector.score_partition(path)
        elif kind == "tsad-raw":  # the streamed errors alone
            score_parquet(net, path, names, length, stride, scaler)
        elif kind == "in-memory":  # read_partition + Detector.score: the in-memory API
            frame = pd.read_parquet(path, columns=names)
            detector.score(frame)
        else:
            tutorial(net, path, names, scaler)

    if kind == "tutorial":
        tutorial(net, small, names, scaler, rows=2_000)  # warm-up small: its windows are the cost
    else:
        run(small)
    base = _status_kb("VmRSS")  # the constant: interpreter, libraries, model, warm caches
    try:  # reset the peak (VmHWM) so the warm-up does not count; ru_maxrss survives fork+exec
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    began = time.perf_counter()
    run(big)
    print(json.dumps({"base_mb": base / 1024, "peak_mb": _status_kb("VmHWM") / 1024,
                      "seconds": time.perf_counter() - began}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": platform.node(),
            "cpu": cpu, "nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "load_before": os.getloadavg()}


# ---------------------------------------------------------------------------- the run

class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))
        print(f"  {what:<58} {value:>22}  {note}", flush=True)

    def markdown(self) -> str:
        lines = ["| measurement | value | note |", "|---|---:|---|"]
        lines += [f"| {w} | {v} | {n} |" for w, v, n in self.rows]
        return "\n".join(lines)


def main() -> None:
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
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    P = PROFILES[mode]
    repeats = args.repeats or P["repeats"]
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

    # -- data
    n_train, small_n, large_n = P["n_train"], P["small"], P["large"]
    names = channel_names(CHANNELS)
    began = time.perf_counter()
    train_raw, _ = plant(n_train, CHANNELS, seed=1, anomalies=False)
    files = {n: work / f"test-{n}.parquet" for n in (small_n, large_n)}
    labels = {n: write_plant(path, n, CHANNELS, seed=2, anomalies=True)
              for n, path in files.items()}
    small = work / "warmup.parquet"
    write_plant(small, 20_000, CHANNELS, seed=3, anomalies=False)
    print(f"  data written in {time.perf_counter() - began:.0f}s under {work}")

    # -- the model: tsad's defaults (window 64), trained on normal data
    group = DetectorConfig(name="bench", channels=names, sampling_seconds=1,
                           window=WindowConfig(length=LENGTH), model=ModelConfig(epochs=P["epochs"]))
    stamps = pd.to_datetime(BASE_US + np.arange(n_train) * 1_000_000, unit="us", utc=True)
    index = pd.DatetimeIndex(stamps, name="timestamp")
    began = time.perf_counter()
    detector = Detector.fit(group, pd.DataFrame(train_raw, index=index, columns=names),
                            checkpoint=False)
    net, scaler, stride = detector.network_, detector.scaler_, group.window.stride
    model_cfg = group.model
    print(f"  trained {model_cfg.kind} (hidden {model_cfg.hidden}, latent {model_cfg.latent}, "
          f"stride {stride}) in {time.perf_counter() - began:.0f}s, "
          f"{detector.metrics_['epochs_run']} epochs")
    model_dir = work / "model"
    model_dir.mkdir(exist_ok=True)
    detector.save(model_dir)
    results["model"] = {"kind": group.model.kind, "hidden": group.model.hidden,
                        "latent": group.model.latent, "length": LENGTH, "stride": stride}

    def tsad(path: Path) -> Any:  # Parquet -> streamed errors -> the detector's score rule
        return detector.score_partition(path)

    # -- machine limits and tsad, interleaved
    print("\n== end to end scoring, 30 channels (Parquet -> per-timestamp scores) ==")
    for n, path in files.items():
        values = n * CHANNELS
        t_read, t_raw, t_rule, out = [], [], [], None
        for _ in range(repeats):
            began = time.perf_counter()
            pq.read_table(path, columns=names)
            t_read.append(time.perf_counter() - began)
            began = time.perf_counter()  # score_partition(detector, path), timed in its two parts
            raw = score_parquet(net, path, names, LENGTH, stride, scaler)
            t_raw.append(time.perf_counter() - began)
            began = time.perf_counter()
            out = detector.postprocess(raw, inplace=True)
            t_rule.append(time.perf_counter() - began)
            del raw
        t_read_m, t_raw_m, t_rule_m = (float(np.median(t)) for t in (t_read, t_raw, t_rule))
        t_tsad_m = float(np.median(np.add(t_raw, t_rule)))
        quality = auc_pr(out.aggregate, labels[n])
        table.add(f"tsad e2e {n:,} x {CHANNELS}: values/s", f"{values / t_tsad_m / 1e6:.1f} M",
                  f"{t_tsad_m:.2f}s = errors {t_raw_m:.2f}s + score rule {t_rule_m:.2f}s; "
                  f"{len(out.window_starts) / t_tsad_m:,.0f} windows/s; AUC-PR {quality:.3f}")
        table.add(f"tsad streamed errors only {n:,} x {CHANNELS}: values/s",
                  f"{values / t_raw_m / 1e6:.1f} M", "tsad.model.streaming.score_parquet, no score rule")
        table.add(f"pyarrow Parquet read {n:,} x {CHANNELS}: values/s",
                  f"{values / t_read_m / 1e6:.0f} M",
                  f"tsad e2e = {t_read_m / t_tsad_m:.1%} of the read rate")
        results[f"tsad_{n}"] = {"seconds": t_tsad_m, "values_per_s": values / t_tsad_m,
                                "errors_seconds": t_raw_m, "rule_seconds": t_rule_m,
                                "windows": len(out.window_starts), "auc_pr": quality,
                                "read_seconds": t_read_m}

    # -- the other model kinds, same workload and rule (fresh weights: the same work per window)
    path = files[large_n]
    for kind in dict.fromkeys(("conv1d", "dense", group.model.kind)):
        if kind == group.model.kind:
            continue
        torch.manual_seed(0)
        other_net = build_detector_network(ModelConfig(kind=kind), CHANNELS, LENGTH).eval()
        seconds, _ = median_time(lambda: detector.postprocess(
            score_parquet(other_net, path, names, LENGTH, stride, scaler), inplace=True),
            max(1, repeats // 2))
        table.add(f"tsad e2e {large_n:,} x {CHANNELS} with {kind} (hidden {group.model.hidden})",
                  f"{large_n * CHANNELS / seconds / 1e6:.1f} M", f"{seconds:.2f}s, speed only")

    # -- stride: every timestamp stays covered; the work falls with the stride
    path = files[large_n]
    for other in (stride * 2, stride * 4):
        if other > LENGTH:
            continue
        seconds, out = median_time(lambda: detector.postprocess(
            score_parquet(net, path, names, LENGTH, other, scaler), inplace=True),
            max(1, repeats // 2))
        table.add(f"tsad e2e {large_n:,} x {CHANNELS}, stride {other} (default {stride})",
                  f"{large_n * CHANNELS / seconds / 1e6:.1f} M",
                  f"{seconds:.2f}s, AUC-PR {auc_pr(out.aggregate, labels[large_n]):.3f}")

    # -- OpenMP waiting: spinning (torch's default) vs sleeping, in fresh processes, interleaved
    spin, sleep = [], []
    for _ in range(max(1, repeats // 2)):
        for policy, into in (("ACTIVE", spin), ("PASSIVE", sleep)):
            into.append(peak_rss(["tsad", str(model_dir), str(small), str(path)],
                                 {"OMP_WAIT_POLICY": policy})["seconds"])
    table.add(f"tsad e2e {large_n:,} x {CHANNELS}, OMP_WAIT_POLICY=ACTIVE (spin)",
              f"{large_n * CHANNELS / np.median(spin) / 1e6:.1f} M",
              "PASSIVE in the same conditions: %.1f M"
              % (large_n * CHANNELS / np.median(sleep) / 1e6))

    # -- the tutorial pipeline (same model), interleaved with tsad
    print("\n== tutorial pipeline (Python loop + np.stack, stride 1, same model) ==")
    for n, path in files.items():
        fits = mem_available_gb() > 1.6 * n * LENGTH * CHANNELS * 4 / 2**30
        rows = min(n, P["tutorial_cap"] or n) if fits else min(n, small_n)
        reps = 1 if n == large_n else max(1, repeats // 2)
        t_tut, t_ts, scores = [], [], None
        for _ in range(reps):
            began = time.perf_counter()
            scores = tutorial(net, path, names, scaler, rows)
            t_tut.append(time.perf_counter() - began)
            began = time.perf_counter()
            out = tsad(path)
            t_ts.append(time.perf_counter() - began)
        rate_tut = rows / float(np.median(t_tut))
        rate_tsad = n / float(np.median(t_ts))
        q_tut = auc_pr(scores, labels[n][:rows])
        q_tsad = auc_pr(out.aggregate[:rows], labels[n][:rows])
        scope = "" if rows == n else (f" (tutorial timed on the first {rows:,} rows, rate scaled:"
                                      " it is linear in n)")
        table.add(f"tutorial {n:,} x {CHANNELS}: values/s", f"{rate_tut * CHANNELS / 1e6:.2f} M",
                  f"AUC-PR {q_tut:.3f} on its rows{scope}")
        table.add(f"tsad / tutorial, {n:,} x {CHANNELS}", f"{rate_tsad / rate_tut:.1f}x",
                  f"tsad AUC-PR {q_tsad:.3f} vs {q_tut:.3f} on the same rows")
        results[f"tutorial_{n}"] = {"rows_timed": rows, "values_per_s": rate_tut * CHANNELS,
                                    "ratio": rate_tsad / rate_tut, "auc_pr": q_tut,
                                    "tsad_auc_pr": q_tsad}

    # -- PyOD
    print(f"\n== PyOD AutoEncoder on flattened windows (stride 1), {small_n:,} x 30 ==")
    try:
        began = time.perf_counter()
        pyod_model = pyod_fit(train_raw, epochs=P["pyod_epochs"], max_windows=P["pyod_windows"])
        fit_s = time.perf_counter() - began
        path = files[small_n]
        t_py, t_ts = [], []
        scores = None
        for _ in range(max(1, repeats // 2)):
            began = time.perf_counter()
            scores = pyod_score(pyod_model, path, names)
            t_py.append(time.perf_counter() - began)
            began = time.perf_counter()
            out = tsad(path)
            t_ts.append(time.perf_counter() - began)
        ratio = float(np.median(t_py)) / float(np.median(t_ts))
        q_py, q_tsad = auc_pr(scores, labels[small_n]), auc_pr(out.aggregate, labels[small_n])
        table.add(f"pyod {small_n:,} x 30: timesteps scored/s", f"{small_n / np.median(t_py):,.0f}",
                  f"AUC-PR {q_py:.3f}; fit {fit_s:.0f}s")
        table.add("tsad / pyod, timesteps scored/s", f"{ratio:.1f}x",
                  f"tsad AUC-PR {q_tsad:.3f} vs {q_py:.3f}")
        results["pyod"] = {"ratio": ratio, "auc_pr": q_py, "tsad_auc_pr": q_tsad,
                           "fit_seconds": fit_s}
    except ImportError:
        table.add("tsad / pyod", "not measured", "pyod missing: pip install -e '.[bench]'")

    # -- FLOPs and the matmul limit, interleaved
    print("\n== model FLOPs vs measured fp32 matmul FLOP/s (threads = %d) ==" % threads)
    e2e_windows = results[f"tsad_{large_n}"]["windows"] / results[f"tsad_{large_n}"]["seconds"]
    for kind in dict.fromkeys(("conv1d", "dense", group.model.kind)):
        cfg = ModelConfig(kind=kind)
        model = autoencoder_of(net if kind == group.model.kind
                           else build_detector_network(cfg, CHANNELS, LENGTH).eval())
        flops = flops_per_window(model, CHANNELS)
        peaks, rates = [], []
        for _ in range(repeats):
            peaks.append(matmul_flops())
            rates.append(model_rate(model, CHANNELS))
        peak, rate = float(np.median(peaks)), float(np.median(rates))
        table.add(f"{kind} (hidden {cfg.hidden}, latent {cfg.latent}): FLOPs/window",
                  f"{flops / 1e3:,.0f} k",
                  f"forward {rate:,.0f} windows/s = {flops * rate / 1e9:.0f} GFLOP/s")
        table.add(f"{kind}: fraction of measured matmul FLOP/s", f"{flops * rate / peak:.0%}",
                  f"matmul {peak / 1e9:.0f} GFLOP/s fp32, {threads} threads")
        if kind == group.model.kind:
            table.add(f"{kind}: e2e fraction ({large_n:,} workload, all steps)",
                      f"{flops * e2e_windows / peak:.0%}",
                      f"{e2e_windows:,.0f} windows/s end to end")
        results[f"flops_{kind}"] = {"flops_per_window": flops, "windows_per_s": rate,
                                    "matmul": peak}

    # -- 1,000 channels x one day at 1 Hz, in groups of 50: default model and score rule per group
    # (freshly initialised networks: the work per window is the same as a trained one's)
    print("\n== 1,000 channels x 86,400 timesteps in groups of %d ==" % DAY_GROUP)
    day_steps = P["day_steps"]
    detectors = []
    for g in range(DAY_CHANNELS // DAY_GROUP):
        path = work / f"day-{g:02d}.parquet"
        write_plant(path, day_steps, DAY_GROUP, seed=100 + g, anomalies=False)
        day_group = DetectorConfig(name=f"g{g:02d}", sampling_seconds=1,
                                   channels=channel_names(DAY_GROUP),
                                   window=WindowConfig(length=LENGTH))
        raw, _ = plant(5_000, DAY_GROUP, seed=200 + g, anomalies=False)
        torch.manual_seed(g)
        index = pd.date_range("2024-01-01", periods=len(raw), freq="1s", tz="UTC")
        rule = ScoreRule.for_training(day_group.threshold, 1, index, LENGTH)
        network = build_detector_network(day_group.model, DAY_GROUP, LENGTH).eval()
        detectors.append((path, Detector(day_group, ChannelScaler.fit(raw), network,
                                         make_threshold(day_group.threshold), rule)))
    seconds, _ = median_time(lambda: [d.score_partition(p) for p, d in detectors],
                             max(1, repeats // 2))
    values = day_steps * DAY_CHANNELS
    table.add(f"tsad e2e {DAY_CHANNELS} x {day_steps:,} ({len(detectors)} groups): values/s",
              f"{values / seconds / 1e6:.1f} M",
              f"{seconds:.1f}s" + ("" if day_steps == DAY_STEPS else " (part of a day)"))
    results["day"] = {"steps": day_steps, "seconds": seconds, "values_per_s": values / seconds}

    # -- training: one epoch of stride-1 windows over 1M x 30, default settings but the kind
    kinds = dict.fromkeys(("conv1d", group.model.kind))
    for kind in kinds:
        n_epoch = P["epoch_n"] if kind == "conv1d" else min(P["epoch_n"], 100_000)
        cfg = ModelConfig(kind=kind, epochs=1)
        print(f"\n== training, {kind} (batch {cfg.batch_size}), one epoch ==")
        series = scaler.transform(plant(n_epoch, CHANNELS, seed=4, anomalies=False)[0])
        split = int(n_epoch * 0.8)
        starts = np.arange(n_epoch - LENGTH + 1)
        torch.manual_seed(0)
        model = build_network(cfg, CHANNELS, LENGTH)
        report = train(model, series, starts[starts + LENGTH <= split], starts[starts >= split],
                       LENGTH, cfg, torch.device("cpu"))
        per_1m = report.seconds * 1_000_000 / n_epoch
        scaled = "" if n_epoch == 1_000_000 else f" (scaled from {n_epoch:,} rows)"
        table.add(f"training s/epoch, {kind}, 1M x 30 (stride-1 windows, batch {cfg.batch_size})",
                  f"{per_1m:.0f} s", f"{split:,} windows in {report.seconds:.1f}s{scaled}")
        results[f"train_epoch_1m_seconds_{kind}"] = per_1m

    # -- peak RSS, in child processes
    print("\n== peak RSS (child processes; constant = RSS after a warm-up scoring of 20k rows) ==")
    sizes = [large_n, P["rss_big"]]
    big = work / f"test-{sizes[1]}.parquet"
    write_plant(big, sizes[1], CHANNELS, seed=5, anomalies=False)

    def rss_row(what: str, kind: str, path: Path, n: int, *extra: str) -> None:
        raw_mb = n * CHANNELS * 4 / 2**20
        rss = peak_rss([kind, str(model_dir), str(small), str(path), *extra])
        ratio = (rss["peak_mb"] - rss["base_mb"]) / raw_mb
        table.add(what, f"{rss['peak_mb']:,.0f} MB",
                  f"= {ratio:.2f}x raw float32 ({raw_mb:,.0f} MB) + {rss['base_mb']:,.0f} MB")
        results[f"rss_{kind}_{n}" + "_".join(extra)] = {**rss, "raw_f32_mb": raw_mb, "ratio": ratio}

    for n, path in ((sizes[0], files[large_n]), (sizes[1], big)):
        need_gb = 4 * n * CHANNELS * 4 / 2**30 + 1  # errors and rule: ~3x raw float32
        if mem_available_gb() > need_gb:
            rss_row(f"tsad peak RSS {n:,} x 30 (streamed + score rule)", "tsad", path, n)
        else:
            table.add(f"tsad peak RSS {n:,} x 30 (streamed + score rule)", "skipped",
                      f"would need ~{need_gb:.0f} GB; {mem_available_gb():.0f} GB available")
        rss_row(f"tsad peak RSS {n:,} x 30 (streamed errors only)", "tsad-raw", path, n)
    rss_row(f"tsad peak RSS {large_n:,} x 30, errors only, window 256", "tsad-raw", files[large_n],
            large_n, "256")
    rss_row(f"in-memory path peak RSS {large_n:,} x 30 (read_partition + Detector.score)",
            "in-memory", files[large_n], large_n)
    rss_row(f"tutorial peak RSS {small_n:,} x 30", "tutorial", files[small_n], small_n)

    # -- GPU
    print("\n== GPU ==")
    if args.device.startswith("cuda") and torch.cuda.is_available():
        gpu_rows(table, results, group, scaler, threads)
    else:
        for what in ("GPU windows/s per model, fraction of bf16 matmul FLOP/s, GPU/CPU",
                     "GPU training s/epoch, conv1d, 1M x 30"):
            table.add(what, "not measured",
                      "no GPU lent: run `python bench/throughput.py --device cuda` on one")

    info["load_after"] = os.getloadavg()
    results["table"] = table.rows
    print("\n" + table.markdown())
    print("\nload average after: %.2f %.2f %.2f" % info["load_after"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def gpu_rows(table: Table, results: dict[str, Any], group: DetectorConfig, scaler: ChannelScaler,
             threads: int) -> None:
    """Windows/s, fraction of measured bf16 matmul FLOP/s, GPU/CPU ratios, a training epoch."""
    name = torch.cuda.get_device_name()
    peak = matmul_flops("cuda", torch.bfloat16, 8192)
    table.add(f"GPU bf16 matmul ({name})", f"{peak / 1e12:.0f} TFLOP/s", "measured, 8192^3")
    for kind in dict.fromkeys(("conv1d", "dense", group.model.kind)):
        net = autoencoder_of(
            build_detector_network(ModelConfig(kind=kind), CHANNELS, LENGTH).eval())
        flops = flops_per_window(net, CHANNELS)
        rate = model_rate(net, CHANNELS, device="cuda", seconds=3.0, batch=65536, amp=True)
        cpu_rate = results[f"flops_{kind}"]["windows_per_s"]
        table.add(f"GPU {kind} windows/s (bf16 autocast, batch 65536)", f"{rate:,.0f}",
                  f"{flops * rate / peak:.1%} of bf16 matmul; GPU/CPU {rate / cpu_rate:.0f}x "
                  f"(CPU {threads} threads fp32)")
        results[f"gpu_{kind}"] = {"windows_per_s": rate, "fraction": flops * rate / peak}
    n = 1_000_000
    series = scaler.transform(plant(n, CHANNELS, seed=4, anomalies=False)[0])
    starts = np.arange(n - LENGTH + 1)
    cfg = ModelConfig(kind="conv1d", epochs=1)
    torch.manual_seed(0)
    model = build_network(cfg, CHANNELS, LENGTH).cuda()
    report = train(model, series, starts[starts + LENGTH <= 800_000], starts[starts >= 800_000],
                   LENGTH, cfg, torch.device("cuda"))
    table.add(f"GPU training s/epoch, conv1d, 1M x 30 (batch {cfg.batch_size}, bf16 autocast)",
              f"{report.seconds:.1f} s",
              f"CPU/GPU {results['train_epoch_1m_seconds_conv1d'] / report.seconds:.0f}x")
    results["gpu"] = {"name": name, "bf16_matmul": peak, "train_epoch_seconds": report.seconds}


if __name__ == "__main__":
    main()
