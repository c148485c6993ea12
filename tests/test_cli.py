"""The ``tsad`` console script: the nightly steps without a scheduler, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tsad.cli import main


def test_simulate_run_and_show_events(plant_config_file: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = ["--config", str(plant_config_file)]
    assert main([*cfg, "simulate", "--start", "2026-03-01", "--days", "5",
                 "--anomaly-day", "2026-03-05"]) == 0
    assert "anomalies injected" in capsys.readouterr().out

    assert main([*cfg, "run", "--day", "2026-03-04", "--to", "2026-03-05"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4  # 2 days x 2 groups
    assert "(trained)" in out[0] and "(loaded)" in out[2]

    assert main([*cfg, "events", "--from", "2026-03-05", "--to", "2026-03-05", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert events and all(e["partition_date"] == "2026-03-05" for e in events)


def test_errors_are_one_line_naming_the_cause(plant_config_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    cfg = ["--config", str(plant_config_file)]
    # no historian yet: the source is missing
    assert main([*cfg, "run", "--day", "2026-03-04", "--group", "pumps"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsad: error:") and "historian.db" in err

    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(plant_config_file.read_text())
    data["groups"][0]["model"]["kind"] = "cnn"
    bad.write_text(yaml.safe_dump(data))
    assert main(["--config", str(bad), "events"]) == 2
    assert "groups[0].model.kind" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main([*cfg, "run", "--day", "2026-02-30"])
    assert exit_info.value.code == 2
    assert "2026-02-30" in capsys.readouterr().err
