"""Errors a plant's data team sees: each names the file, table, column, day or key at fault."""

from __future__ import annotations


class TsadError(Exception):
    """Base class: a problem the operator can fix; the message says what and how."""


class ConfigError(TsadError):
    """The config file has an unknown key, a wrong type or an impossible value."""


class SourceError(TsadError):
    """The source system (SQL table or dropped files) is missing data or unreadable."""


class DataError(TsadError):
    """The data was read but cannot be used as is (empty day, missing channel, bad values)."""


class ModelError(TsadError):
    """A model version is missing, tampered with, or does not fit the data."""


class WarmingUp(TsadError):
    """A new deployment has fewer days of history than ``training.min_days``: nothing to train
    on yet. Not a failure: the day's run is recorded as ``warming_up``."""
