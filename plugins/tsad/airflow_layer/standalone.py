"""``make ui``: ``airflow standalone`` over this repository's DAGs and plugin, with URL and login.

``airflow standalone`` starts its scheduler, dag-processor, api-server and triggerer by looking
``airflow`` up on ``PATH``, and keeps running when they die, so a virtual environment that is
not activated gives a main process that answers nothing. This launcher puts the interpreter's
``bin`` folder first on ``PATH``, starts standalone in its own session with its (chatty) output
in ``$AIRFLOW_HOME/standalone.log``, waits until ``/api/v2/monitor/health`` reports every
component healthy and the plugin page answers, then prints the URL and the admin password.
Ctrl-C (or SIGTERM) stops the whole process group, children included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tsad.airflow_layer.demo import REPO, airflow_environment

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
PASSWORDS = "simple_auth_manager_passwords.json.generated"


def ui_environment(repo: Path, airflow_home: Path, port: int, host: str) -> dict[str, str]:
    """The demo's Airflow variables, plus what standalone needs to start and be reached."""
    env = {**os.environ, **airflow_environment(repo, airflow_home)}
    for demo_only in ("TSAD_TASK_RETRIES", "AIRFLOW__LOGGING__LOGGING_LEVEL"):
        env.pop(demo_only, None)  # the UI shows real runs: real retries, full task logs
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    url = f"http://localhost:{port}"
    env.update({
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__WORKERS": "1",  # a small machine: one API worker is plenty for one user
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
    })
    return env


def health(base: str) -> dict[str, str]:
    """``component -> status`` from the API server, or ``{}`` while it does not answer."""
    try:
        with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=3) as response:
            body = json.load(response)
    except (OSError, ValueError):
        return {}
    return {name: str((body.get(name) or {}).get("status")) for name in COMPONENTS}


def plugin_status(base: str) -> int | None:
    """HTTP status of the plugin page without a login: 401 means mounted and guarded, 404 not
    mounted, None no answer."""
    request = urllib.request.Request(f"{base}/tsad/", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def admin_password(airflow_home: Path) -> str | None:
    """The admin password the SimpleAuthManager generated (kept across restarts)."""
    try:
        return json.loads((airflow_home / PASSWORDS).read_text()).get("admin")
    except (OSError, ValueError):
        return None


def stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGINT the process group (standalone's own shutdown), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; make sure its children went with it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def wait_until_ready(proc: subprocess.Popen, base: str, log: Path, limit: float) -> None:
    """Return when every component is healthy and the plugin answers; SystemExit otherwise."""
    deadline = time.monotonic() + limit
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"airflow standalone exited ({proc.returncode}); the end of "
                             f"{log}:\n{_tail(log)}")
        seen = health(base)
        if seen and all(s == "healthy" for s in seen.values()) and plugin_status(base) == 401:
            return
        time.sleep(1)
    raise SystemExit(f"Airflow did not become healthy within {limit:.0f} s (last health: "
                     f"{seen or 'no answer'}, plugin page: {plugin_status(base)}); the end of "
                     f"{log}:\n{_tail(log)}")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C, so that a terminated launcher still stops what it started."""
    raise KeyboardInterrupt


def _listen_for_stop() -> None:
    """Ctrl-C and SIGTERM stop the launcher whatever it inherited: a process started by one
    that ignores or blocks SIGINT (a background job, a test runner) inherits that, and would
    leave Airflow running."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Airflow's UI over the demo's set-up "
                                     "(run `make demo` or `make ui`, which prepares it first).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("TSAD_UI_PORT", "8080")),
                        help="port of the Airflow UI (default 8080, or $TSAD_UI_PORT)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow",
                        help="Airflow's home folder (default: .airflow in the repository)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds to wait for every component to become healthy")
    args = parser.parse_args(argv)

    home = args.airflow_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = ui_environment(REPO, home, args.port, args.host)
    log = home / "standalone.log"
    base = f"http://localhost:{args.port}"
    print(f"starting Airflow (scheduler, dag-processor, api-server, triggerer); log: {log}",
          flush=True)
    with log.open("ab") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "standalone"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    _listen_for_stop()
    try:
        wait_until_ready(proc, f"http://127.0.0.1:{args.port}", log, args.timeout)
        print(f"\nAirflow is ready: {base}\n  user: admin   password: "
              f"{admin_password(home) or f'(see {home / PASSWORDS})'}\n"
              f"  anomalies: Browse -> Anomalies (or {base}/tsad/); the DAG: tsad_nightly\n"
              "Ctrl-C stops every Airflow process.", flush=True)
        while proc.poll() is None:
            time.sleep(1)
        print(f"airflow standalone exited ({proc.returncode}); see {log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        return 0
    finally:
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
