"""tsad as an installed Airflow extension: build the wheel, install it into a fresh virtual
environment (no plugins folder, no source checkout), scaffold with ``tsad init``, check with
``tsad config check`` and parse the DAG; Airflow finds the plugin and the provider through
their entry points.

Nothing is downloaded: the wheel is built without build isolation and installed with
``--no-deps``; the fresh environment sees the main environment's packages (Airflow, torch, ...)
through a ``.pth`` file, except tsad's own, so the tsad imported is the wheel's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from conftest import REPO  # noqa: E402

PARSE = r"""
import json, os, sys
import tsad
from airflow.dag_processing.dagbag import DagBag
from airflow import plugins_manager
from airflow.providers_manager import ProvidersManager

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
plugins, plugin_errors = plugins_manager._get_plugins()
manager = ProvidersManager()
print(json.dumps({
    "tsad_file": tsad.__file__,
    "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dag_ids),
    "tasks": sorted(bag.dags["tsad_nightly"].task_ids) if "tsad_nightly" in bag.dags else [],
    "plugins": [p.name for p in plugins],
    "plugin_errors": {str(k): str(v) for k, v in plugin_errors.items()},
    "providers": sorted(manager.providers),
    "notifications": sorted(manager.notification),
}))
"""


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, \
        f"{argv}: {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _sources(tmp: Path) -> Path:
    """The files a wheel is built from, copied so the build leaves the checkout untouched."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "plugins" / "tsad", src / "plugins" / "tsad",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return src


def _main_packages_without_tsad(tmp: Path) -> Path:
    """The main environment's site-packages as links, minus tsad's editable install (whose
    metadata would register tsad's entry points a second time)."""
    farm = tmp / "main-site-packages"
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.lower().startswith(("tsad", "__editable__.tsad")) or entry.suffix == ".pth":
            continue
        (farm / entry.name).symlink_to(entry)
    return farm


def test_the_wheel_installs_as_an_airflow_extension_and_its_dag_parses(tmp_path: Path) -> None:
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "TSAD_", "PYTHONPATH"))}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(wheels), str(_sources(tmp_path))], base_env, tmp_path)
    (wheel,) = wheels.glob("tsad-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    assert {"tsad/templates/tsad.yaml", "tsad/airflow_layer/plugin.py",
            "tsad/airflow_layer/provider.py", "tsad/airflow_layer/nightly.py",
            "tsad/airflow_layer/ui/static/event_chart.js"} <= names
    assert "[airflow.plugins]" in entry_points and "[apache_airflow_provider]" in entry_points

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base_env, tmp_path)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "main_env.pth").write_text(f"{_main_packages_without_tsad(tmp_path)}\n")
    python, tsad = str(venv / "bin" / "python"), str(venv / "bin" / "tsad")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
         base_env, tmp_path)

    home = tmp_path / "airflow-home"
    (home / "plugins").mkdir(parents=True)  # an empty plugins folder: the entry point must do
    env = {**base_env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins")}
    cwd = tmp_path  # not the checkout: nothing may come from it
    init = _run([tsad, "init"], env, cwd).stdout
    assert f"written  {home / 'tsad' / 'tsad.yaml'}" in init
    assert f"written  {home / 'dags' / 'tsad_nightly.py'}" in init
    assert "export TSAD_CONFIG" not in init  # the installed default path needs no variable
    _run([tsad, "simulate", "--start", "2026-03-01", "--days", "1"], env, cwd)
    check = _run([tsad, "config", "check"], env, cwd).stdout
    assert f"config file: {home / 'tsad' / 'tsad.yaml'}" in check
    assert "ok     group pumps source: table pump_readings" in check, check

    parsed = json.loads(_run([python, "-c", PARSE],
                             {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")},
                             cwd).stdout.strip().splitlines()[-1])
    assert Path(parsed["tsad_file"]).is_relative_to(site), parsed["tsad_file"]
    assert parsed["import_errors"] == {}
    assert "tsad_nightly" in parsed["dags"] and "sensor_group.detect" in parsed["tasks"]
    assert "tsad" in parsed["plugins"] and parsed["plugin_errors"] == {}
    assert "tsad" in parsed["providers"]
    assert "tsad.airflow_layer.notifiers.PipelineFailureNotifier" in parsed["notifications"]


def test_the_packaged_demo_config_is_the_checkouts_tsad_yaml() -> None:
    """``tsad init`` and an installed tsad's demo defaults are the repository's ``tsad.yaml``
    (comments aside): one demo plant, not two drifting copies."""
    import yaml

    packaged = REPO / "plugins" / "tsad" / "templates" / "tsad.yaml"
    assert yaml.safe_load(packaged.read_text()) == yaml.safe_load((REPO / "tsad.yaml").read_text())
