"""Running helper processes (collector, backends, Prometheus, Redis, apps) and stopping them all.

Used by the test suite and by commands that run a local stack. Every process starts in its own
session (``start_new_session=True``) so stopping it signals its whole process group — children
such as Celery workers or uvicorn reloaders included — and a Ctrl-C in the terminal reaches only
us, who then stop everything in order: SIGTERM, a grace period, then SIGKILL.

Output of each process goes to ``<workdir>/<name>.log``; when a process exits early or never
becomes ready, :class:`~otelkit.errors.ExternalToolError` carries the last lines of that log.
Everything here talks to 127.0.0.1 only.

Typical use::

    with ProcessGroup() as procs:
        redis = start_redis(procs)
        prom = start_prometheus(procs, targets=["127.0.0.1:8889"])
        result = prometheus_query(prom.url, "up")
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otelkit.errors import ExternalToolError

__all__ = [
    "ManagedProcess",
    "ProcessGroup",
    "Prometheus",
    "RedisServer",
    "free_port",
    "http_get",
    "prometheus_query",
    "redis_argv",
    "start_prometheus",
    "start_redis",
    "wait_http_ready",
    "wait_port",
]

LOOPBACK = "127.0.0.1"
_POLL = 0.1
_TAIL_LINES = 40

# Never send loopback requests through an HTTP(S)_PROXY from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it; tiny race by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` without any proxy; return (status, body), also for 4xx/5xx answers.

    Raises:
        OSError: no answer (connection refused, timeout…).
    """
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 30.0, *, process: ManagedProcess | None = None) -> None:
    """Wait until ``host:port`` accepts TCP connections.

    Raises:
        ExternalToolError: ``process`` exited first, or the port did not open within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            process.check_running()
        if _port_open(host, port):
            return
        if time.monotonic() >= deadline:
            raise _not_ready(f"{host}:{port} did not accept connections within {timeout:g}s", process)
        time.sleep(_POLL)


def wait_http_ready(url: str, timeout: float = 30.0, *, process: ManagedProcess | None = None) -> None:
    """Wait until GET ``url`` answers with a 2xx status.

    Raises:
        ExternalToolError: ``process`` exited first, or ``url`` was not ready within ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if process is not None:
            process.check_running()
        try:
            status, body = http_get(url, timeout=2.0)
        except OSError as exc:
            last = f"no answer ({exc})"
        else:
            if 200 <= status < 300:
                return
            last = f"HTTP {status}: {body[:200].decode('utf-8', 'replace').strip()}"
        if time.monotonic() >= deadline:
            raise _not_ready(f"{url} was not ready within {timeout:g}s (last: {last})", process)
        time.sleep(_POLL)


def _not_ready(what: str, process: ManagedProcess | None) -> ExternalToolError:
    if process is None:
        return ExternalToolError(what)
    return ExternalToolError(
        f"{process.name} did not become ready: {what}; last lines of {process.log_path}:\n{process.log_tail()}"
    )


class ManagedProcess:
    """One subprocess in its own process group, its output captured to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "not started" if self.popen is None else f"pid {self.pid}, returncode {self.returncode}"
        return f"<ManagedProcess {self.name!r} ({state})>"

    def start(self) -> ManagedProcess:
        """Start the process. Raises ExternalToolError if the program cannot be executed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ExternalToolError(
                    f"cannot start {self.name}: `{self.argv[0]}`: {exc.strerror or exc}; check that it is installed"
                    " and on PATH"
                ) from None
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        """The whole log so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last ``lines`` lines of the log, or ``(empty log)``."""
        tail = self.log_text().rstrip("\n").splitlines()[-lines:]
        return "\n".join(tail) if tail else "(empty log)"

    def check_running(self) -> None:
        """Raise ExternalToolError (with the log tail) if the process has exited."""
        rc = self.returncode
        if self.popen is not None and rc is not None:
            raise ExternalToolError(
                f"{self.name} exited early with code {rc} (`{' '.join(self.argv)}`); last lines of"
                f" {self.log_path}:\n{self.log_tail()}"
            )

    def wait_port(self, port: int, timeout: float = 30.0, host: str = LOOPBACK) -> ManagedProcess:
        """Wait until this process listens on ``host:port``; see :func:`wait_port`."""
        wait_port(host, port, timeout, process=self)
        return self

    def wait_http_ready(self, url: str, timeout: float = 30.0) -> ManagedProcess:
        """Wait until ``url`` answers 2xx while this process runs; see :func:`wait_http_ready`."""
        wait_http_ready(url, timeout, process=self)
        return self

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process's whole group (no-op once it has exited)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``grace`` s, then SIGKILL it; return the exit code."""
        if self.popen is None:
            return None
        try:
            if self.popen.poll() is None:
                self.signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=grace)
        finally:
            # Also reached on a second Ctrl-C during the grace period: never leave the group behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        return self.popen.returncode


_LIVE_GROUPS: weakref.WeakSet[ProcessGroup] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for group in list(_LIVE_GROUPS):
        group.stop_all(grace=2.0)


class ProcessGroup:
    """Processes started together and stopped together (in reverse order), also on Ctrl-C.

    Args:
        workdir: where logs (``<name>.log``) and scratch data go. Default: a new temporary
            directory, removed by :meth:`stop_all`.
        grace: seconds each process gets between SIGTERM and SIGKILL.
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *, grace: float = 10.0) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="otelkit-procs-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.grace = grace
        self.processes: list[ManagedProcess] = []
        _LIVE_GROUPS.add(self)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def path(self, name: str) -> Path:
        """A path inside the work directory (not created)."""
        return self.workdir / name

    def start(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` as ``name``, logging to ``<workdir>/<name>.log``.

        Raises:
            ValueError: ``name`` is already used in this group or is not a plain file name.
            ExternalToolError: the program cannot be executed.
        """
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in {p.name for p in self.processes}:
            raise ValueError(f"process name {name!r} is taken or not a plain name; use letters, digits, '.', '_', '-'")
        proc = ManagedProcess(name, argv, log_path=self.workdir / f"{name}.log", env=env, cwd=cwd)
        proc.start()
        self.processes.append(proc)
        return proc

    def stop_all(self, grace: float | None = None) -> None:
        """Stop every process, last started first; remove the work directory if this group made it."""
        grace = self.grace if grace is None else grace
        try:
            while self.processes:
                self.processes[-1].stop(grace)
                self.processes.pop()
        finally:
            # A Ctrl-C while stopping one process must not leave the others running.
            for proc in reversed(self.processes):
                proc.stop(0)
            self.processes.clear()
            _LIVE_GROUPS.discard(self)
            if self._owns_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)


# --- Prometheus ------------------------------------------------------------------------------


@dataclass
class Prometheus:
    """A running Prometheus server."""

    process: ManagedProcess
    port: int
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def query(self, promql: str) -> list[Any]:
        """Run an instant query; see :func:`prometheus_query`."""
        return prometheus_query(self.url, promql)


def start_prometheus(
    group: ProcessGroup,
    targets: Sequence[str] = (),
    *,
    scrape_configs: Sequence[Mapping[str, Any]] | None = None,
    scrape_interval: str = "1s",
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    extra_args: Sequence[str] = (),
    name: str = "prometheus",
    timeout: float = 60.0,
) -> Prometheus:
    """Start Prometheus on 127.0.0.1 scraping ``targets`` (``host:port``) or the given ``scrape_configs``.

    Storage is a fresh directory in the group's work dir. Returns once ``/-/ready`` answers.

    Raises:
        ExternalToolError: prometheus is not installed, exits early, or is not ready in ``timeout`` s.
    """
    exe = str(binary) if binary is not None else shutil.which("prometheus")
    if exe is None:
        raise ExternalToolError(
            "prometheus not found on PATH; install it (Debian: `apt-get install -y prometheus`; ./scripts/test"
            " does this)"
        )
    port = port or free_port()
    jobs = (
        [dict(c) for c in scrape_configs]
        if scrape_configs is not None
        else [{"job_name": "otelkit", "static_configs": [{"targets": list(targets)}]}]
    )
    config: dict[str, Any] = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}}
    config["scrape_configs"] = jobs
    config_path = group.path(f"{name}.yml")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    argv = [
        exe,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={group.path(f'{name}-data')}",
        f"--web.listen-address={LOOPBACK}:{port}",
        *extra_args,
    ]
    proc = group.start(name, argv)
    proc.wait_http_ready(f"http://{LOOPBACK}:{port}/-/ready", timeout)
    return Prometheus(process=proc, port=port, config_path=config_path)


def prometheus_query(base_url: str, promql: str) -> list[Any]:
    """Run the instant query ``promql`` against ``base_url``; return ``data.result`` of the answer.

    For a vector that is a list of ``{"metric": {labels}, "value": [ts, "value"]}``.

    Raises:
        ExternalToolError: no answer, or Prometheus answered with an error (bad PromQL…).
    """
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        status, body = http_get(url, timeout=10.0)
    except OSError as exc:
        raise ExternalToolError(f"Prometheus at {base_url} did not answer the query {promql!r}: {exc}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = {}
    if status != 200 or answer.get("status") != "success":
        detail = answer.get("error") or body[:300].decode("utf-8", "replace")
        raise ExternalToolError(f"Prometheus query {promql!r} failed (HTTP {status}): {detail}")
    return list(answer["data"]["result"])


# --- Redis -----------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A running redis-server without persistence."""

    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"


def redis_argv(binary: str | os.PathLike[str], port: int) -> list[str]:
    """The ``redis-server`` command line otelkit runs: loopback only, no persistence."""
    return [str(binary), "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"]


def start_redis(
    group: ProcessGroup,
    *,
    port: int | None = None,
    binary: str | os.PathLike[str] | None = None,
    name: str = "redis",
    timeout: float = 30.0,
) -> RedisServer:
    """Start ``redis-server`` on 127.0.0.1 with no persistence; return once it answers PING.

    Raises:
        ExternalToolError: redis-server is not installed, exits early, or does not answer in ``timeout`` s.
    """
    exe = str(binary) if binary is not None else shutil.which("redis-server")
    if exe is None:
        raise ExternalToolError(
            "redis-server not found on PATH; install it (Debian: `apt-get install -y redis-server`;"
            " ./scripts/test does this)"
        )
    port = port or free_port()
    proc = group.start(name, redis_argv(exe, port), cwd=group.workdir)
    deadline = time.monotonic() + timeout
    while not _redis_ping(port):
        proc.check_running()
        if time.monotonic() >= deadline:
            raise _not_ready(f"{LOOPBACK}:{port} did not answer PING within {timeout:g}s", proc)
        time.sleep(_POLL)
    return RedisServer(process=proc, port=port)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False
