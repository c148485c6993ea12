"""A group's units of work: the whole group, or its channel shards (``groups[].shards``).

A large group is split into channel shards so that each trains a smaller model of its own (own
scaler, threshold and registry folder ``models/<group>/sNN/vNNNN``) and the shards train and
score in parallel. Shards are numbered from 1 in the order ``ShardConfig.split`` gives; a group
without ``shards``, or whose split yields one shard, is one unit with shard ``None`` and keeps
today's layout (``models/<group>/vNNNN``). Imports nothing heavy: the DAG's tasks call it.
"""

from __future__ import annotations

import dataclasses

from tsad.config.detector_config import DetectorConfig
from tsad.config.schema import GroupConfig
from tsad.errors import ConfigError


def shard_channels(group: GroupConfig) -> dict[int | None, list[str]]:
    """Each unit's channels, by shard number (``{None: group.channels}`` when unsharded)."""
    if group.shards is None:
        return {None: list(group.channels)}
    parts = group.shards.split(list(group.channels))
    if len(parts) == 1:
        return {None: list(group.channels)}
    return {number: part for number, part in enumerate(parts, start=1)}


def shard_numbers(group: GroupConfig) -> list[int | None]:
    """The group's units: ``[None]``, or ``[1, 2, ...]`` for a sharded group."""
    return list(shard_channels(group))


def unit_group(group: GroupConfig, shard: int | None) -> GroupConfig:
    """The config a unit's model is trained with: the group itself, or the group restricted to
    the shard's channels (same name, window, model and threshold settings; no ``shards``)."""
    units = shard_channels(group)
    if shard not in units:
        raise ConfigError(f"group {group.name!r} has no shard {shard!r}; its units are "
                          f"{[unit_label(group.name, s) for s in units]} (was the config changed "
                          "during the run?)")
    if shard is None:
        return group
    return dataclasses.replace(group, channels=units[shard], shards=None)


def unit_detector_config(group: GroupConfig, shard: int | None) -> DetectorConfig:
    """What shapes a unit's model: the group's detector settings on the unit's channels."""
    unit = unit_group(group, shard)
    return unit.detector_config(name=unit_label(group.name, shard))


def shard_folder(shard: int) -> str:
    """The registry folder of a shard under its group: ``s01``, ``s02``, ..."""
    return f"s{shard:02d}"


def unit_label(group: str, shard: int | None) -> str:
    """How logs and the Airflow UI name a unit: ``pumps`` or ``pumps/s01``."""
    return group if shard is None else f"{group}/{shard_folder(shard)}"
