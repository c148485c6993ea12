"""tsad: nightly anomaly detection for industrial sensor fleets with PyTorch autoencoders.

Importing ``tsad`` or any of its subpackages is cheap: torch and pandas load only when a name
that needs them is first used (each subpackage's ``__init__`` names its public API and imports
it lazily, ``lazy_exports``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__version__ = "0.1.0"


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports each public name of ``package`` from
    its submodule (``homes[name]``) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
