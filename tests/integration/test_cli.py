"""The ``tsad`` console script: the nightly steps without a scheduler, and its error messages."""

from __future__ import annotations

import argparse
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
    assert err.startswith("tsad run: error:") and "historian.db" in err

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


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


def _walk(parser: argparse.ArgumentParser, path: str = "tsad"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, f"{path} {name}")


def test_every_command_and_option_has_help_for_a_plant_team() -> None:
    from tsad.cli import _parser

    undocumented = []
    for path, parser in _walk(_parser()):
        if path != "tsad" and not (parser.description or "").strip():
            undocumented.append(f"{path}: no description")
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                undocumented.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert undocumented == []
    top = _parser().format_help()
    assert "``" not in top and "examples:" in top and "YYYY-MM-DD" in top


@pytest.mark.parametrize(("argv", "named"), [
    (["run", "--day", "2026-13-01"], ["'2026-13-01'", "month must be in 1..12", "YYYY-MM-DD"]),
    (["events", "--from", "11/08/2026"], ["'11/08/2026'", "YYYY-MM-DD"]),
    (["run", "--day", "2026-03-05", "--to", "2026-03-01"], ["--to 2026-03-01", "--day 2026-03-05"]),
    (["events", "--from", "2026-03-05", "--to", "2026-03-01"], ["--to 2026-03-01", "--from"]),
    (["events", "--group", "pumpz"], ["'pumpz'", "pumps", "boiler"]),
    (["run", "--day", "2026-03-04", "--group", "pumpz"], ["'pumpz'"]),
    (["simulate", "--start", "2026-03-01", "--days", "0"], ["--days", "'0'"]),
    (["evaluate", "/nowhere", "--group", "pumpz"], ["'pumpz'"]),
    (["frobnicate"], ["'frobnicate'", "run", "events"]),
])
def test_bad_input_exits_2_with_one_line_naming_it(
        argv: list[str], named: list[str], plant_config_file: Path,
        capsys: pytest.CaptureFixture) -> None:
    assert _exit_code(["--config", str(plant_config_file), *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("tsad"), lines[0]
    assert all(n in lines[0] for n in named), lines[0]
    assert captured.out == ""  # never "no events" for a typo


def test_init_scaffolds_once_and_keeps_an_edited_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from tsad.config import load_config

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TSAD_CONFIG", raising=False)
    monkeypatch.delenv("AIRFLOW__CORE__DAGS_FOLDER", raising=False)
    home = tmp_path / "home"
    config, dag = home / "tsad" / "tsad.yaml", home / "dags" / "tsad_nightly.py"
    assert main(["init"]) == 0
    assert f"written  {config}" in capsys.readouterr().out
    assert [g.name for g in load_config(config).groups] == ["pumps", "boiler"]
    assert "nightly_dag()" in dag.read_text()
    config.write_text(config.read_text() + "\n# edited by the plant\n")
    assert main(["init"]) == 0
    assert f"kept     {config}" in capsys.readouterr().out
    assert config.read_text().endswith("# edited by the plant\n")
    assert main(["init", "--force"]) == 0
    assert "edited" not in config.read_text()


def test_config_check_tries_every_connection_and_names_what_fails(
        plant_config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = ["--config", str(plant_config_file)]
    assert main([*cfg, "config", "check"]) == 2  # no historian yet
    out = capsys.readouterr().out
    assert "ok     config: 2 groups: pumps, boiler" in out
    assert "FAILED group pumps source:" in out and "historian.db does not exist" in out

    assert main([*cfg, "simulate", "--start", "2026-03-01", "--days", "1"]) == 0
    assert main([*cfg, "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main([*cfg, "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "ok     records database:" in out and "schema current" in out
    assert "ok     group boiler source: table boiler_readings" in out

    data = yaml.safe_load(plant_config_file.read_text())
    data["groups"][1]["source"]["table"] = "boiler_readingz"
    data["groups"][0]["alerts"] = {"email_conn_id": "no_such_smtp", "email_to": ["ops@x.example"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["--config", str(bad), "config", "check"]) == 2
    out = capsys.readouterr().out
    assert "FAILED group boiler source: no table 'boiler_readingz'" in out
    assert "FAILED group pumps email (no_such_smtp):" in out and "no_such_smtp" in out
