"""A fork while another thread imports: the child must not inherit a module lock that no thread of it will release."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import importlib, os, signal, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    if sys.argv[2] == "otelkit":
        import otelkit._runtime.forksafe  # what otelkit's set-up imports: its at-fork hooks
    importer = threading.Thread(target=importlib.import_module, args=("slowmod",))
    importer.start()  # as an export thread's first post imports what requests imports lazily (netrc)
    time.sleep(0.2)
    pid = os.fork()
    if pid == 0:
        import slowmod  # the task's own first request, in the prefork child
        os._exit(0 if slowmod.VALUE == 1 else 3)
    for _ in range(100):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status))
            sys.exit(0)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("child hung")
    """
)


@pytest.mark.parametrize("setup", ["otelkit"])
def test_fork_waits_for_another_threads_import(tmp_path, setup):
    """Without the wait, the child blocks for ever on the half-imported module's lock (found with a
    Celery prefork worker: its child hung in requests' lazy ``import netrc``, which otelkit's export
    thread was importing in the parent at the moment of the fork)."""
    (tmp_path / "slowmod.py").write_text("import time\ntime.sleep(1.0)\nVALUE = 1\n")
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), setup], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child exit 0", done.stdout + done.stderr


def test_without_otelkit_the_child_hangs(tmp_path):
    """The hazard is Python's own (the test above would pass vacuously if it were not)."""
    (tmp_path / "slowmod.py").write_text("import time\ntime.sleep(1.0)\nVALUE = 1\n")
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), "bare"], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "child hung", done.stdout + done.stderr
