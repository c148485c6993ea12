"""Config: unknown keys and wrong types are rejected with the key's path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tsad.config import TsadConfig, from_dict, load_config
from tsad.errors import ConfigError

from conftest import REPO  # noqa: E402


def minimal() -> dict:
    return {"groups": [{"name": "pumps", "channels": ["a", "b"],
                        "source": {"kind": "sql", "url": "sqlite:///h.db", "table": "readings"}}]}


def test_embedded_defaults_load_and_round_trip() -> None:
    config = load_config(REPO / "tsad.yaml")
    assert [g.name for g in config.groups] == ["pumps", "boiler"]
    assert Path(config.models_dir).is_absolute()
    again = from_dict(TsadConfig, config.to_dict())
    assert again == config


@pytest.mark.parametrize("patch,message", [
    (lambda d: d["groups"][0].update(chanels=["a"]), r"groups\[0\]\.chanels: unknown key"),
    (lambda d: d["groups"][0].update(model={"kind": "transformer"}), r"groups\[0\]\.model\.kind: expected one of"),
    (lambda d: d["groups"][0].update(window={"length": "64"}), r"groups\[0\]\.window\.length: expected an integer"),
    (lambda d: d["groups"][0].update(window={"length": 8, "stride": 16}), r"'stride' must be between"),
    (lambda d: d["groups"][0]["source"].update(table="x; DROP TABLE y"), r"plain identifier"),
    (lambda d: d["groups"][0].pop("channels"), r"groups\[0\]\.channels: required key is missing"),
    (lambda d: d.update(site_timezone="Mars/Olympus"), r"not an IANA time zone"),
    (lambda d: d["groups"][0].update(model={"hidden": 8, "latent": 16}), r"bottleneck"),
])
def test_invalid_config_names_the_key(patch, message: str) -> None:
    data = minimal()
    patch(data)
    with pytest.raises(ConfigError, match=message):
        from_dict(TsadConfig, data)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump({**minimal(), "sites": 3}))
    with pytest.raises(ConfigError, match=rf"{file}: sites: unknown key"):
        load_config(file)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_relative_paths_anchor_at_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TSAD_DATA_DIR", raising=False)
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump({**minimal(), "data_dir": "${TSAD_DATA_DIR:-lake}"}))
    config = load_config(file)
    assert config.data_dir == str(tmp_path / "lake")
    assert config.groups[0].source.url == f"sqlite:///{tmp_path}/h.db"
