"""``otelkit stack down`` signals only processes it started, never whatever owns their pids now.

A pid file survives crashes and reboots and pids are reused, so each test points one at a live,
unrelated ``sleep`` this test starts itself: it must survive ``stack down``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli

from otelkit.local.stack.pidfile import PID_FILE, identify, running_owner, write_pid_file


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that has nothing to do with any stack (its own session, like the stack's children)."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _down(capsys: pytest.CaptureFixture[str], workdir: Path) -> tuple[int, str]:
    code, _, err = run_cli(capsys, "stack", "down", "--workdir", str(workdir))
    return code, err


def test_stack_down_spares_a_live_process_named_by_an_old_style_pid_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    # The format otelkit wrote before: bare pids, nothing to tell the process apart from a newcomer.
    info = {"pid": unrelated.pid, "workdir": str(tmp_path), "processes": {"loki": unrelated.pid}}
    (tmp_path / PID_FILE).write_text(json.dumps(info))
    code, err = _down(capsys, tmp_path)
    assert code == 0
    assert err.splitlines() == [
        f"not signalling pid {unrelated.pid}, recorded as the stack owner: the pid file does not say which process"
        " it was (written by an older otelkit)",
        f"not signalling pid {unrelated.pid}, recorded as loki: the pid file does not say which process it was"
        " (written by an older otelkit)",
        "stack stopped",
    ]
    assert unrelated.poll() is None
    assert not (tmp_path / PID_FILE).exists()


def test_stack_down_spares_a_process_that_took_over_a_recorded_pid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    write_pid_file(tmp_path / PID_FILE, unrelated.pid, {"collector": unrelated.pid})
    info = json.loads((tmp_path / PID_FILE).read_text())
    # What the stack's processes looked like: same pids, earlier start times (they have exited since).
    info["owner"]["start"] -= 1000
    info["processes"]["collector"]["start"] -= 1000
    (tmp_path / PID_FILE).write_text(json.dumps(info))
    assert running_owner(tmp_path) is None
    code, err = _down(capsys, tmp_path)
    assert code == 0
    assert err.splitlines() == [
        f"not signalling pid {unrelated.pid}, recorded as the stack owner: the pid now belongs to another process"
        " ('sleep 300')",
        f"not signalling pid {unrelated.pid}, recorded as collector: the pid now belongs to another process"
        " ('sleep 300')",
        "stack stopped",
    ]
    assert unrelated.poll() is None


def test_stack_down_spares_processes_recorded_before_a_reboot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, unrelated: subprocess.Popen[bytes]
) -> None:
    write_pid_file(tmp_path / PID_FILE, unrelated.pid, {"loki": unrelated.pid})
    info = json.loads((tmp_path / PID_FILE).read_text())
    info["boot_id"] = "00000000-0000-0000-0000-000000000000"
    (tmp_path / PID_FILE).write_text(json.dumps(info))
    code, err = _down(capsys, tmp_path)
    assert code == 0
    assert "the pid file is from before a reboot" in err
    assert unrelated.poll() is None


def test_stack_down_signals_the_recorded_processes_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    try:
        write_pid_file(tmp_path / PID_FILE, owner.pid, {"loki": child.pid}, workdir=str(tmp_path))
        assert running_owner(tmp_path) == owner.pid
        code, err = _down(capsys, tmp_path)
        assert code == 0
        assert err.splitlines() == [
            f"stopping the stack (pid {owner.pid}, SIGTERM)",
            f"loki (pid {child.pid}) is still running; sending SIGKILL to its process group",
            "stack stopped",
        ]
        assert owner.wait(timeout=30) == -signal.SIGTERM
        assert child.wait(timeout=30) == -signal.SIGKILL
        assert not (tmp_path / PID_FILE).exists()
    finally:
        for proc in (owner, child):
            proc.kill()
            proc.wait()


def test_pid_file_records_start_time_and_command_line(tmp_path: Path, unrelated: subprocess.Popen[bytes]) -> None:
    write_pid_file(tmp_path / PID_FILE, unrelated.pid, {"redis": unrelated.pid})
    info = json.loads((tmp_path / PID_FILE).read_text())
    me = identify(unrelated.pid)
    assert me is not None and me.cmdline == ("sleep", "300")
    assert info["pid"] == unrelated.pid
    assert (
        info["owner"]
        == info["processes"]["redis"]
        == {"pid": unrelated.pid, "start": me.start, "cmdline": ["sleep", "300"]}
    )
    assert len(info["boot_id"]) == 36


def test_pid_file_written_right_after_spawn_still_matches(tmp_path: Path) -> None:
    # Popen() can return while the child is still inside execve, with no command line yet: the
    # recorded identity must still match the process once it runs.
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
        try:
            write_pid_file(tmp_path / PID_FILE, proc.pid, {})
            recorded = json.loads((tmp_path / PID_FILE).read_text())["owner"]
            assert recorded["cmdline"][:1] == [sys.executable]
            assert running_owner(tmp_path) == proc.pid
        finally:
            proc.kill()
            proc.wait()
