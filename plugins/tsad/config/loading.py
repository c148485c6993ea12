"""Loading a config: YAML in, typed and validated dataclasses out, every error with its key path.

``from_dict`` builds any config dataclass from plain data, rejecting unknown keys and wrong types
by their full path (``groups[0].model.kind``); ``load_config`` reads the YAML file, expands
``${VAR:-default}`` and anchors relative paths at the file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import reprlib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from tsad.config.schema import GroupConfig, TsadConfig
from tsad.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# ---------------------------------------------------------------- generic typed loading

T = typing.TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from plain data, rejecting unknown keys and wrong types by path.

    A dataclass with ``EXTRA_KEYS = "field"`` takes the keys it does not know into that field
    (a mapping) and checks them itself (``ThresholdConfig``: a strategy's own parameters)."""
    where = path or "<root>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields), key=str)
    extra = getattr(cls, "EXTRA_KEYS", None)
    if unknown and extra:
        collected = {**data.get(extra, {}), **{str(k): data[k] for k in unknown}}
        data = {**{k: v for k, v in data.items() if k in fields}, extra: collected}
    elif unknown:
        raise ConfigError(f"{_join(path, str(unknown[0]))}: unknown key; expected one of "
                          f"{sorted(fields)}{_did_you_mean(str(unknown[0]), fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(path, name)}: required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _did_you_mean(key: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {list(allowed)}, got {_shown(value)}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {_shown(value)}")
        _, value_tp = typing.get_args(tp)
        return {str(k): _coerce(value_tp, v, _join(path, str(k))) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_shown(value)}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(item_tp, v, _join(path, i)) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_shown(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_shown(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_shown(value)}")
        return _expand_env(value, path)
    raise ConfigError(f"{path}: unsupported type {tp}")  # pragma: no cover - a bug in tsad


def _shown(value: Any, limit: int = 60) -> str:
    """A value for an error message: its repr, cut short (a YAML alias can expand to megabytes)."""
    shown = reprlib.Repr()
    shown.maxstring = shown.maxother = limit
    shown.maxlist = shown.maxdict = 6
    shown.maxlevel = 2
    return shown.repr(value)


def _expand_env(value: str, path: str) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` so one file serves laptops and containers."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set and has no default")

    return _ENV_REF.sub(replace, value)


# ---------------------------------------------------------------- files and paths

_CHECKOUT = Path(__file__).resolve().parents[3]  # the repository root, in a source checkout
_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "tsad.yaml"  # in the wheel too
# The embedded demo defaults: tsad.yaml of a source checkout, else the packaged copy.
DEFAULT_CONFIG = _CHECKOUT / "tsad.yaml" if (_CHECKOUT / "pyproject.toml").is_file() else _TEMPLATE


def installed_config_path() -> Path:
    """Where ``tsad init`` puts the config of an installed tsad: ``$AIRFLOW_HOME/tsad/tsad.yaml``
    (``~/airflow`` when AIRFLOW_HOME is unset, as Airflow itself does)."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "tsad" / "tsad.yaml"


def config_path() -> Path:
    """The config file in force: ``$TSAD_CONFIG``; else, in a source checkout, its ``tsad.yaml``;
    else (pip-installed) ``$AIRFLOW_HOME/tsad/tsad.yaml``."""
    if os.environ.get("TSAD_CONFIG"):
        return Path(os.environ["TSAD_CONFIG"])
    if DEFAULT_CONFIG != _TEMPLATE:
        return DEFAULT_CONFIG
    return installed_config_path()


def load_config(path: str | Path | None = None) -> TsadConfig:
    """Load and validate a YAML config; relative paths are made absolute against its folder."""
    from tsad.config.yaml_reader import read_yaml

    file = Path(path) if path is not None else config_path()
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found; set TSAD_CONFIG, pass --config, or "
                          "write one with `tsad init`")
    raw = read_yaml(file)
    try:
        config = from_dict(TsadConfig, raw)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    return resolve_paths(config, file.resolve().parent)


def resolve_paths(config: TsadConfig, base: Path) -> TsadConfig:
    """Anchor relative directories and SQLite files at ``base`` (the config file's folder)."""

    def anchor(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else str(base / p)

    def anchor_url(url: str | None) -> str | None:
        if url and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rest = url[len("sqlite:///"):]
            if rest and not rest.startswith(":memory:"):
                return "sqlite:///" + str(base / rest)
        return url

    groups = []
    for g in config.groups:
        src = dataclasses.replace(
            g.source,
            url=anchor_url(g.source.url),
            path=anchor(g.source.path) if g.source.path else None,
        )
        groups.append(dataclasses.replace(g, source=src))
    return dataclasses.replace(
        config,
        groups=groups,
        database=dataclasses.replace(config.database, url=anchor_url(config.database.url)),
        data_dir=anchor(config.data_dir),
        models_dir=anchor(config.models_dir),
    )


def group_config_from_dict(data: dict[str, Any]) -> GroupConfig:
    """Rebuild a group's config from its stored JSON (model versions keep theirs)."""
    return from_dict(GroupConfig, data, "group")
