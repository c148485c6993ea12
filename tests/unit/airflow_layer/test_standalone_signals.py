"""``make ui``'s launcher stops on Ctrl-C even when it was started with SIGINT ignored (a
background job, a test runner that ignores it at that moment): otherwise Airflow keeps running
after the Ctrl-C (``tsad.airflow_layer.standalone._listen_for_stop``)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import REPO  # noqa: E402

CHILD = """
import sys, time
sys.path.insert(0, {plugins!r})
from tsad.airflow_layer.standalone import _listen_for_stop
if {listen}:
    _listen_for_stop()
try:
    print("waiting", flush=True)
    time.sleep(20)
    print("not stopped", flush=True)
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


@pytest.mark.parametrize("listen", [True, False])
def test_sigint_stops_a_launcher_started_with_sigint_ignored(listen: bool) -> None:
    code = CHILD.format(plugins=str(REPO / "plugins"), listen=listen)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert child.stdout.readline().strip() == "waiting"
        child.send_signal(signal.SIGINT)
        if listen:
            assert child.stdout.readline().strip() == "stopped"
            assert child.wait(timeout=10) == 0
        else:  # what the launcher did before: the Ctrl-C is lost
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=2)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
