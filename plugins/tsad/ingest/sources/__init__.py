"""Where a group's raw readings come from: one class per ``source.kind``, chosen by name.

``sql`` (:mod:`.sql`) reads a table, ``files`` (:mod:`.files`) the day's dropped CSV or Parquet
file. Every module of this package is imported here, so a new kind is one new module holding one
:class:`Source` subclass (see :mod:`.base`).
"""

from __future__ import annotations

import importlib
import pkgutil

from tsad.ingest.sources.base import (MISSING_TEXT, RawRows, Source, check_source, needed_columns,
                                      require_columns, source_class, source_for, source_kinds)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MISSING_TEXT", "RawRows", "Source", "check_source", "needed_columns",
           "require_columns", "source_class", "source_for", "source_kinds"]
