"""Real background processes for tests: start each in its own process group, always stop them all.

Used by the multi-process tests (``test_celery.py``): redis, the Airflow api-server, scheduler,
dag-processor and Celery workers. Every process gets its own session (``start_new_session``), so
stopping it also stops whatever it forked (uvicorn workers, Celery pool children, task processes).
Output goes to a log file per process, whose tail is shown when a test fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_hostname() -> str:
    """``[core] hostname_callable`` for test workers: the name in ``$TSAD_TEST_HOSTNAME``.

    Workers on one test machine share a real hostname; in production each runs in its own
    container or host. This gives each test worker its own name in ``task_instance.hostname``.
    """
    return os.environ.get("TSAD_TEST_HOSTNAME") or socket.getfqdn()


def ensure_debian_package(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian's ``package`` first when it is missing (root)."""
    found = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists()
                                     else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{binary} is missing: install it with `apt-get install -y {package}` "
                           "(as root), or skip this test (see its module docstring)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for argv in (["apt-get", *lock, "update", "-qq"],
                 ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", package]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): "
                               f"{done.stderr[-1500:]}")
    found = shutil.which(binary)
    if not found:
        raise RuntimeError(f"installed Debian package {package} but {binary} is still not on PATH")
    return found


class Processes:
    """Named background processes with log files; ``stop_all`` ends each process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str],
              cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.log(name), "ab")  # noqa: SIM115  (the child keeps it open)
        try:
            proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def check_alive(self) -> None:
        """Raise, naming the process and its log tail, when one has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def tails(self, chars: int = 2500) -> str:
        return "\n".join(f"----- {name} -----\n{self.tail(name, chars)}" for name in self.procs)

    def stop_all(self, grace: float = 10.0) -> None:
        """SIGTERM every process group, then SIGKILL what is left after ``grace`` seconds."""
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGKILL)  # the leader may be gone, its children not
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group id is the leader's pid (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for(what: str, check: Callable[[], object], timeout: float, procs: Processes,
             interval: float = 0.5) -> object:
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` and the logs."""
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{procs.tails()}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
