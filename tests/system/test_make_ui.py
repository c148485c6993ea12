"""``make ui``'s command line starts a healthy Airflow with the plugin, on a fresh Airflow home,
with the virtual environment *not* on ``PATH`` (as after a fresh clone), and stops every
process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from procs import free_port

from conftest import REPO  # noqa: E402


def _processes_of(home: Path) -> list[int]:
    """Live processes whose environment names this Airflow home (zombies excluded)."""
    mark = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0") and \
                    (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _read_until(proc: subprocess.Popen, pattern: str, log: list[str], limit: float) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        log.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no {pattern!r} from the launcher:\n{''.join(log)}")


def test_make_ui_command_line_answers_healthy_with_the_plugin_and_cleans_up(
        tmp_path: Path, plant_config_file: Path) -> None:
    from tsad.cli import main

    assert main(["--config", str(plant_config_file), "db", "upgrade"]) == 0  # an empty records DB
    home = tmp_path / "airflow-home"
    port = free_port()
    env = {**os.environ, "TSAD_CONFIG": str(plant_config_file),
           "PATH": "/usr/local/bin:/usr/bin:/bin",  # no .venv/bin: `airflow` is not on PATH
           "PYTHONPATH": str(REPO / "plugins"), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tsad.airflow_layer.standalone", "--port", str(port),
            "--host", "127.0.0.1", "--airflow-home", str(home), "--timeout", "240"]
    launcher = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    try:
        _read_until(launcher, r"Airflow is ready: http://localhost:\d+", output, 300)
        login = _read_until(launcher, r"password:", output, 10)
        password = login.split("password:")[1].strip()
        assert password == json.loads(
            (home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        assert "Browse -> Anomalies" in _read_until(launcher, "Anomalies", output, 10)

        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=10) as response:
            health = json.load(response)
        for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
            assert health[component]["status"] == "healthy", health

        body = json.dumps({"username": "admin", "password": password}).encode()
        request = urllib.request.Request(f"{base}/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.load(response)["access_token"]
        page = urllib.request.Request(f"{base}/tsad/", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(page, timeout=30) as response:
            assert response.status == 200
            assert "Anomalies" in response.read().decode()
        assert len(_processes_of(home)) >= 4  # scheduler, dag-processor, api-server, triggerer
    finally:
        launcher.send_signal(signal.SIGINT)  # what Ctrl-C on `make ui` does
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _processes_of(home) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _processes_of(home)
        for pid in left:  # never leave a stray Airflow behind, even when the test fails
            os.kill(pid, signal.SIGKILL)
        launcher.stdout.close()
    assert launcher.returncode == 0, "".join(output)
    assert left == [], f"processes left running: {left}"


def test_make_demo_ends_with_where_to_look(tmp_path: Path) -> None:
    from tsad.airflow_layer.demo import where_to_look

    assert "make ui" in where_to_look(tmp_path)  # before the first `make ui`: no password yet
    (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "s3cret"}')
    text = where_to_look(tmp_path)
    assert "http://localhost:8080" in text and "password s3cret" in text
    assert "Browse -> Anomalies" in text


def test_the_demo_module_runs_as_make_demo_calls_it() -> None:
    """`make demo` is `python -m tsad.airflow_layer.demo`: the module must run its main (a
    lost `__main__` guard once made `make demo` print nothing and exit 0)."""
    result = subprocess.run([sys.executable, "-m", "tsad.airflow_layer.demo", "--help"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO / "plugins")})
    assert result.returncode == 0 and "--setup-only" in result.stdout
