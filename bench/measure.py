"""The throughput benchmark's measurements: timings, FLOPs, memory, the machine, the table.

Peak RSS is measured in a child process (``bench/throughput.py --rss-child``) so that one
measurement's memory never counts in another's.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from plant import LENGTH
from references import tutorial
from tsad.model.detector import Detector
from tsad.model.networks import build_detector_network
from tsad.model.scoring import batch_windows
from tsad.model.streaming import score_parquet
from tsad.windows import gather_windows

Row = tuple[str, str, str]  # what, value, note
Section = tuple[list[Row], dict[str, Any]]  # a section's table rows and its JSON results
SCRIPT = Path(__file__).with_name("throughput.py")  # the entry point the RSS child runs


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last call's result."""
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
    """Run the benchmark as a child that reports its RSS before and after the measured step."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--rss-child", *args], capture_output=True,
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
    """Memory the kernel could give now, to skip a measurement that would swap."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def machine() -> dict[str, Any]:
    """What the figures were measured on, printed first and stored in the JSON."""
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


class Table:
    """The rows measured so far, each printed as it is added, and as markdown at the end."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))
        print(f"  {what:<58} {value:>22}  {note}", flush=True)

    def extend(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.add(*row)

    def markdown(self) -> str:
        lines = ["| measurement | value | note |", "|---|---:|---|"]
        lines += [f"| {w} | {v} | {n} |" for w, v, n in self.rows]
        return "\n".join(lines)
