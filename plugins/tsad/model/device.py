"""The one place that decides where torch runs, and with how many CPU threads.

``TSAD_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``) overrides; otherwise CUDA when present, else CPU.
A model trained on a GPU worker is saved from CPU tensors, so any worker can load it.

``TSAD_THREADS`` overrides the CPU thread count; otherwise it is the number of cores this process
may run on (its affinity mask, which containers and task runners narrow), not the machine's total,
except for small per-op work (training steps of a few dozen windows): below
``VALUES_PER_THREAD`` values per step, extra threads only add synchronisation (measured on 2
cores: batch 32 x 64 x 30 trains no faster on 2 threads than on 1, and 8x slower when idle OpenMP
threads sleep), so such work gets one thread per ``VALUES_PER_THREAD`` values, at least one.
"""

from __future__ import annotations

import os

import torch

VALUES_PER_THREAD = 1 << 16  # input values per op below which another thread does not pay


def resolve_device(preference: str | None = None) -> torch.device:
    """Pick the device: explicit preference, then ``$TSAD_DEVICE``, then CUDA if available."""
    choice = preference or os.environ.get("TSAD_DEVICE", "auto")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"TSAD_DEVICE={choice!r} asks for CUDA but no CUDA device is visible")
    return device


def cpu_threads() -> int:
    """Threads for torch on CPU: ``$TSAD_THREADS``, else the cores in this process's affinity."""
    configured = os.environ.get("TSAD_THREADS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise RuntimeError(f"TSAD_THREADS={configured!r} must be a positive integer")
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def use_cpu_threads(values_per_op: int | None = None) -> int:
    """Set torch's intra-op threads (only when it differs) and return it: ``cpu_threads()``,
    fewer for ops of fewer than ``VALUES_PER_THREAD`` values per thread (not under TSAD_THREADS)."""
    threads = cpu_threads()
    if values_per_op is not None and not os.environ.get("TSAD_THREADS", "").strip():
        threads = max(1, min(threads, values_per_op // VALUES_PER_THREAD))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
