"""The throughput benchmark's GPU rows, measured with ``--device cuda`` on a CUDA machine.

Each model kind's forward windows/s against measured bf16 matmul FLOP/s and the CPU's rate from
the same run, and one conv1d training epoch; without a GPU the two rows say "not measured".
"""

from __future__ import annotations

import numpy as np
import torch

from measure import Section, flops_per_window, matmul_flops, model_rate
from plant import CHANNELS, LENGTH, plant
from tsad.config import ModelConfig
from tsad.model.networks import autoencoder_of, build_detector_network, build_network
from tsad.model.training import train
from workload import Setup, kinds


def gpu_rows(s: Setup, device: str, cpu_rates: dict[str, float], cpu_epoch_s: float) -> Section:
    """Windows/s, fraction of measured bf16 matmul FLOP/s, GPU/CPU ratios, a training epoch;
    ``cpu_rates``: forward windows/s per kind on the CPU, ``cpu_epoch_s``: its conv1d epoch."""
    print("\n== GPU ==")
    if not (device.startswith("cuda") and torch.cuda.is_available()):
        note = "no GPU lent: run `python bench/throughput.py --device cuda` on one"
        return [("GPU windows/s per model, fraction of bf16 matmul FLOP/s, GPU/CPU",
                 "not measured", note),
                ("GPU training s/epoch, conv1d, 1M x 30", "not measured", note)], {}
    name = torch.cuda.get_device_name()
    peak = matmul_flops("cuda", torch.bfloat16, 8192)
    rows, results = [(f"GPU bf16 matmul ({name})", f"{peak / 1e12:.0f} TFLOP/s",
                      "measured, 8192^3")], {}
    for kind in kinds(s, "conv1d", "dense"):
        net = autoencoder_of(
            build_detector_network(ModelConfig(kind=kind), CHANNELS, LENGTH).eval())
        flops = flops_per_window(net, CHANNELS)
        rate = model_rate(net, CHANNELS, device="cuda", seconds=3.0, batch=65536, amp=True)
        rows.append((f"GPU {kind} windows/s (bf16 autocast, batch 65536)", f"{rate:,.0f}",
                     f"{flops * rate / peak:.1%} of bf16 matmul; GPU/CPU "
                     f"{rate / cpu_rates[kind]:.0f}x (CPU {s.threads} threads fp32)"))
        results[f"gpu_{kind}"] = {"windows_per_s": rate, "fraction": flops * rate / peak}
    n = 1_000_000
    series = s.detector.scaler_.transform(plant(n, CHANNELS, seed=4, anomalies=False)[0])
    starts = np.arange(n - LENGTH + 1)
    cfg = ModelConfig(kind="conv1d", epochs=1)
    torch.manual_seed(0)
    model = build_network(cfg, CHANNELS, LENGTH).cuda()
    report = train(model, series, starts[starts + LENGTH <= 800_000], starts[starts >= 800_000],
                   LENGTH, cfg, torch.device("cuda"))
    rows.append((f"GPU training s/epoch, conv1d, 1M x 30 (batch {cfg.batch_size}, bf16 autocast)",
                 f"{report.seconds:.1f} s", f"CPU/GPU {cpu_epoch_s / report.seconds:.0f}x"))
    results["gpu"] = {"name": name, "bf16_matmul": peak, "train_epoch_seconds": report.seconds}
    return rows, results
