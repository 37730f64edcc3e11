"""otelkit.local.procs with small Python child processes (Prometheus and Redis are in tests/e2e)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from otelkit.errors import ExternalToolError
from otelkit.local import procs as _procs

PY = sys.executable


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie nobody reaped yet is dead too


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs; a signalled process takes a moment to die, so wait up to 30 s."""
    deadline = time.monotonic() + 30
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _dead(pid)


def wait_for_file(proc: _procs.ManagedProcess, path: Path) -> str:
    """Block until ``path`` has content written by ``proc`` (bounded by pytest's timeout)."""
    while not (path.exists() and path.read_text().endswith("\n")):
        proc.check_running()
        time.sleep(0.01)
    return path.read_text().strip()


def test_free_port_is_bindable_on_loopback() -> None:
    port = _procs.free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_process_group_stop_all_kills_children_of_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pidfile)!r}, "w").write(f"{{child.pid}}\\n")
        time.sleep(600)
        """
    )
    group = _procs.ProcessGroup(tmp_path / "g")
    parent = group.start("parent", [PY, "-c", script])
    child_pid = int(wait_for_file(parent, pidfile))
    group.stop_all()
    assert not parent.running
    assert gone(child_pid)
    assert group.processes == []


def test_managed_process_stop_sigkills_after_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(ready)!r}, "w").write("ok\\n")
        time.sleep(600)
        """
    )
    with _procs.ProcessGroup(tmp_path / "g", grace=0.2) as group:
        stubborn = group.start("stubborn", [PY, "-c", script])
        wait_for_file(stubborn, ready)
        assert stubborn.stop(grace=0.2) == -signal.SIGKILL


def test_process_group_context_stops_everything_on_keyboard_interrupt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), _procs.ProcessGroup() as group:
        workdir = group.workdir
        sleeper = group.start("sleeper", [PY, "-c", "import time; time.sleep(600)"])
        raise KeyboardInterrupt
    assert not sleeper.running
    assert gone(sleeper.pid)
    assert not workdir.exists()  # a group's own temporary work dir goes with it


def test_a_sigterm_to_the_test_run_stops_what_its_fixtures_started(tmp_path: Path) -> None:
    """tests/conftest.py turns SIGTERM into Ctrl-C: fixture teardown runs, no server outlives the run."""
    pidfile = tmp_path / "sleeper.pid"
    (tmp_path / "test_interrupted.py").write_text(
        textwrap.dedent(
            f"""
            import time
            import pytest
            from otelkit.local import procs

            @pytest.fixture
            def group():
                with procs.ProcessGroup() as g:
                    yield g

            def test_runs_until_terminated(group):
                sleeper = group.start("sleeper", [{PY!r}, "-c", "import time; time.sleep(600)"])
                open({str(pidfile)!r}, "w").write(f"{{sleeper.pid}}\\n")
                time.sleep(600)
            """
        )
    )
    tests_dir = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen(
        [PY, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-c", os.devnull, "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while not (pidfile.exists() and pidfile.read_text().endswith("\n")):
            assert run.poll() is None, run.communicate()[0]
            time.sleep(0.02)
        sleeper = int(pidfile.read_text())
        run.send_signal(signal.SIGTERM)
        out = run.communicate(timeout=60)[0]
    finally:
        if run.poll() is None:
            run.kill()
    try:
        assert run.returncode == pytest.ExitCode.INTERRUPTED, out
        assert "signal 15" in out
        assert gone(sleeper)
    finally:
        if not _dead(sleeper):  # the test failed: stop the orphan it found
            os.kill(sleeper, signal.SIGKILL)


def test_process_group_keeps_a_given_workdir_and_logs(tmp_path: Path) -> None:
    with _procs.ProcessGroup(tmp_path / "g") as group:
        echo = group.start("echo", [PY, "-c", "print('hello'); import sys; print('err', file=sys.stderr)"])
        echo.popen.wait()  # type: ignore[union-attr]
    assert (tmp_path / "g" / "echo.log").read_text().splitlines() == ["hello", "err"]


def test_managed_process_check_running_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    with _procs.ProcessGroup(tmp_path) as group:
        argv = [PY, "-c", "print('listening failed: address in use'); raise SystemExit(3)"]
        crasher = group.start("crasher", argv)
        crasher.popen.wait()  # type: ignore[union-attr]
        with pytest.raises(ExternalToolError) as info:
            crasher.check_running()
    assert str(info.value) == (
        f"crasher exited early with code 3 (`{' '.join(argv)}`); last lines of {tmp_path}/crasher.log:\n"
        "listening failed: address in use"
    )


def test_wait_port_raises_when_the_process_exits_first(tmp_path: Path) -> None:
    with _procs.ProcessGroup(tmp_path) as group:
        quitter = group.start("quitter", [PY, "-c", "print('bye')"])
        with pytest.raises(ExternalToolError) as info:
            quitter.wait_port(_procs.free_port(), timeout=60)
    assert str(info.value).startswith("quitter exited early with code 0 (`")
    assert str(info.value).endswith(f"last lines of {tmp_path}/quitter.log:\nbye")


def test_wait_port_and_http_ready_succeed_once_the_server_answers(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ready").write_text("ok")
    port = _procs.free_port()
    with _procs.ProcessGroup(tmp_path / "g") as group:
        server = group.start("http", [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=tmp_path / "www")
        server.wait_port(port, timeout=60)
        server.wait_http_ready(f"http://127.0.0.1:{port}/ready", timeout=60)
        assert _procs.http_get(f"http://127.0.0.1:{port}/ready") == (200, b"ok")
        assert _procs.http_get(f"http://127.0.0.1:{port}/absent")[0] == 404


def test_wait_http_ready_timeout_names_url_last_answer_and_log(tmp_path: Path) -> None:
    port = _procs.free_port()
    url = f"http://127.0.0.1:{port}/ready"
    with _procs.ProcessGroup(tmp_path) as group:
        sleeper = group.start("sleeper", [PY, "-c", "import time; time.sleep(600)"])
        with pytest.raises(ExternalToolError) as info:
            sleeper.wait_http_ready(url, timeout=0)
    assert str(info.value) == (
        f"sleeper did not become ready: {url} was not ready within 0s (last: no answer"
        " (<urlopen error [Errno 111] Connection refused>)); last lines of"
        f" {tmp_path}/sleeper.log:\n(empty log)"
    )


def test_wait_port_without_process_times_out_with_address() -> None:
    port = _procs.free_port()
    with pytest.raises(ExternalToolError) as info:
        _procs.wait_port("127.0.0.1", port, timeout=0)
    assert str(info.value) == f"127.0.0.1:{port} did not accept connections within 0s"


def test_process_group_start_missing_program_says_so(tmp_path: Path) -> None:
    with _procs.ProcessGroup(tmp_path) as group, pytest.raises(ExternalToolError) as info:
        group.start("ghost", [str(tmp_path / "no-such-binary")])
    assert str(info.value) == (
        f"cannot start ghost: `{tmp_path}/no-such-binary`: No such file or directory; check that it is installed"
        " and on PATH"
    )


def test_process_group_start_rejects_a_duplicate_name(tmp_path: Path) -> None:
    with _procs.ProcessGroup(tmp_path) as group:
        group.start("one", [PY, "-c", "pass"])
        with pytest.raises(ValueError) as info:
            group.start("one", [PY, "-c", "pass"])
    assert str(info.value) == "process name 'one' is taken or not a plain name; use letters, digits, '.', '_', '-'"


def test_prometheus_query_returns_the_result_list(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
        seen.append(url)
        body = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1,"1"]}]}}'
        return 200, body

    monkeypatch.setattr(_procs, "http_get", fake_get)
    assert _procs.prometheus_query("http://127.0.0.1:9/", 'up{job="a"}') == [
        {"metric": {"job": "a"}, "value": [1, "1"]}
    ]
    assert seen == ["http://127.0.0.1:9/api/v1/query?query=up%7Bjob%3D%22a%22%7D"]


def test_prometheus_query_error_carries_prometheus_message(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"1:3: parse error: unexpected <EOF>"}'
    monkeypatch.setattr(_procs, "http_get", lambda url, timeout=5.0: (400, body))
    with pytest.raises(ExternalToolError) as info:
        _procs.prometheus_query("http://127.0.0.1:9", "up{")
    assert str(info.value) == "Prometheus query 'up{' failed (HTTP 400): 1:3: parse error: unexpected <EOF>"


def test_start_prometheus_without_binary_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with _procs.ProcessGroup(tmp_path) as group, pytest.raises(ExternalToolError) as info:
        _procs.start_prometheus(group, ["127.0.0.1:1"])
    assert str(info.value) == (
        "prometheus not found on PATH; install it (Debian: `apt-get install -y prometheus`; ./scripts/test does this)"
    )


def test_start_redis_without_binary_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with _procs.ProcessGroup(tmp_path) as group, pytest.raises(ExternalToolError) as info:
        _procs.start_redis(group)
    assert str(info.value) == (
        "redis-server not found on PATH; install it (Debian: `apt-get install -y redis-server`;"
        " ./scripts/test does this)"
    )


def test_redis_command_line_is_written_once_for_the_stack_and_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otelkit.local.stack import LocalStack, StackPorts

    monkeypatch.setattr(_procs, "redis_argv", lambda binary, port: ["redis-from-procs", str(port)])
    stack = LocalStack(tmp_path / "w", ports=StackPorts(), app=True, worker=True)
    names = ("loki", "jaeger", "prometheus", "alertmanager", "collector", "redis", "launcher")
    stack._define({name: Path(f"/bin/{name}") for name in names})
    assert stack._argv["redis"][0] == ["redis-from-procs", "6379"]
