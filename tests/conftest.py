"""Fixtures shared by unit and e2e tests: the real binaries, a Redis server, a process group.

Binaries are built when missing, never skipped. Builds take minutes, more than a test's timeout,
so they run once before the first test (``pytest_collection_finish``) for whichever binary
fixtures the selected tests use; the fixtures then only look the path up. ``./scripts/test``
builds them even earlier, with progress on the terminal.
"""

from __future__ import annotations

import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from otelkit.errors import OtelkitError
from otelkit.local import gobuild as _gobuild
from otelkit.local import procs as _procs

_BUILDERS: dict[str, Callable[..., Path]] = {
    "otelcol_bin": lambda progress: _gobuild.ensure_collector(progress=progress),
    "jaeger_bin": lambda progress: _gobuild.ensure_backend("jaeger", progress=progress),
    "loki_bin": lambda progress: _gobuild.ensure_backend("loki", progress=progress),
}
_BUILD_ERRORS: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI time limit, ``kill``) ends the run as Ctrl-C does, so fixtures stop what they started.

    Python's default SIGTERM ends the process at once: no fixture teardown, no ``atexit``, and the
    servers and workers the tests started (each in its own session) kept running, measured: an
    interrupted run left its Celery prefork workers and redis-servers running, still busy 25 minutes on.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}: stopping the test run and what it started")


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = [name for name in _BUILDERS if any(name in getattr(i, "fixturenames", ()) for i in session.items)]
    if not wanted or session.config.option.collectonly:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    capture = session.config.pluginmanager.get_plugin("capturemanager")

    def progress(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    for name in wanted:
        try:
            if capture is not None:
                with capture.global_and_fixture_disabled():
                    _BUILDERS[name](progress)
            else:
                _BUILDERS[name](progress)
        except OtelkitError as exc:
            # Reported by the fixture, as an error of each test that needs the binary.
            _BUILD_ERRORS[name] = str(exc)


def _binary(name: str) -> Path:
    if name in _BUILD_ERRORS:
        pytest.fail(f"building {name.removesuffix('_bin')} failed: {_BUILD_ERRORS[name]}", pytrace=False)
    return _BUILDERS[name](print)


@pytest.fixture(scope="session")
def otelcol_bin() -> Path:
    """The otelkit collector built from collector/builder-manifest.yaml."""
    return _binary("otelcol_bin")


@pytest.fixture(scope="session")
def jaeger_bin() -> Path:
    """Jaeger v2 (all-in-one)."""
    return _binary("jaeger_bin")


@pytest.fixture(scope="session")
def loki_bin() -> Path:
    """Loki 3 (single binary)."""
    return _binary("loki_bin")


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """Debian's Prometheus (2.42); ./scripts/test installs it."""
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail(
            "prometheus not found on PATH; run the tests with ./scripts/test (it installs it) or"
            " `apt-get install -y prometheus`",
            pytrace=False,
        )
    return Path(found)


@pytest.fixture(scope="session")
def alertmanager_bin() -> Path:
    """Debian's Alertmanager (0.25, ``prometheus-alertmanager``); ./scripts/test installs it."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        pytest.fail(
            "alertmanager not found on PATH; run the tests with ./scripts/test (it installs it) or"
            " `apt-get install -y prometheus-alertmanager`",
            pytrace=False,
        )
    return Path(found)


@pytest.fixture(scope="session")
def amtool_bin(alertmanager_bin: Path) -> Path:
    """``amtool``, which Debian installs beside Alertmanager."""
    found = shutil.which("amtool")
    if found is None:
        pytest.fail("amtool not found on PATH; `apt-get install -y prometheus-alertmanager`", pytrace=False)
    return Path(found)


@pytest.fixture(scope="session")
def redis_bin() -> Path:
    """Debian's redis-server; ./scripts/test installs it."""
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server not found on PATH; run the tests with ./scripts/test (it installs it) or"
            " `apt-get install -y redis-server`",
            pytrace=False,
        )
    return Path(found)


@pytest.fixture(scope="session")
def redis_server(redis_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server on a free 127.0.0.1 port for the whole session; yields ``redis://127.0.0.1:PORT/0``."""
    with _procs.ProcessGroup(tmp_path_factory.mktemp("redis")) as group:
        yield _procs.start_redis(group, binary=redis_bin).url


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[_procs.ProcessGroup]:
    """A process group whose processes are all stopped when the test ends; logs in ``tmp_path/procs``."""
    with _procs.ProcessGroup(tmp_path / "procs") as group:
        yield group
