"""The one place that decides where torch runs.

``TSAD_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``) overrides; otherwise CUDA when present, else CPU.
A model trained on a GPU worker is saved from CPU tensors, so any worker can load it.
"""

from __future__ import annotations

import os

import torch


def resolve_device(preference: str | None = None) -> torch.device:
    """Pick the device: explicit preference, then ``$TSAD_DEVICE``, then CUDA if available."""
    choice = preference or os.environ.get("TSAD_DEVICE", "auto")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"TSAD_DEVICE={choice!r} asks for CUDA but no CUDA device is visible")
    return device
