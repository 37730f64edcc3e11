"""The observability stack as local processes: collector, Prometheus, Alertmanager, Loki and Jaeger on 127.0.0.1.

What ``docker compose up`` runs, without Docker: the collector built from the repo's manifest on
the default rendered config (``--bind 127.0.0.1``, exporters pointed at the local Jaeger and
Loki), Loki on ``stack/loki/loki.yaml`` and Jaeger on ``stack/jaeger/jaeger.yaml`` — the very
files compose mounts, their addresses moved through environment variables — and Prometheus on a
copy of ``stack/prometheus/prometheus.yaml`` with the scrape and Alertmanager targets replaced
(Prometheus 2.42 expands no variables in its config), Alertmanager on a copy of
``stack/alertmanager/alertmanager.yaml`` (see :mod:`otelkit.local.stack.alertmanager`). Optionally
the example app (and a Celery worker with Redis) under ``otelkit-instrument``, exporting to the
collector.

Everything runs in one :class:`~otelkit.local.procs.ProcessGroup` and is stopped in reverse order; one
backend can be stopped and started again on the same ports and data (outage tests)::

    with LocalStack(workdir, ports=StackPorts.free(), app=False) as stack:
        stack.promql("up")
        stack.restart("jaeger")

Ports are checked before anything starts: a taken port is a :class:`~otelkit.errors.UsageError`.
A missing binary or a process that does not become ready is an
:class:`~otelkit.errors.ExternalToolError` (with the log tail), and everything started is stopped.
This module never prints: progress goes to the ``progress`` callback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import otelkit
from otelkit.errors import ExternalToolError, UsageError
from otelkit.local import gobuild, procs
from otelkit.local.stack.pidfile import PID_FILE, running_owner, write_pid_file
from otelkit.local.stack.ports import StackPorts, port_taken
from otelkit.local.stack.processes import StackProcesses

__all__ = ["BACKEND_NAMES", "LocalStack", "default_workdir", "repo_root", "where_table"]

LOOPBACK = procs.LOOPBACK
BACKEND_NAMES = ("loki", "jaeger", "prometheus", "alertmanager", "collector")
"""Names of the processes :meth:`LocalStack.stop_backend` / :meth:`LocalStack.start_backend` accept."""

Progress = Callable[[str], object]

# How long each process may take to become ready. Loki needs ~15 s for its ring on 2 cores.
_READY_TIMEOUT = {
    "loki": 120.0,
    "jaeger": 60.0,
    "prometheus": 60.0,
    "alertmanager": 60.0,
    "collector": 60.0,
    "app": 60.0,
}


def repo_root() -> Path:
    """The checkout otelkit runs from (the parent of the ``otelkit`` package)."""
    return Path(otelkit.__file__).resolve().parents[1]


def default_workdir() -> Path:
    """Where ``otelkit stack up`` keeps logs, configs, data and its pid file: ``<cache>/stack``."""
    return gobuild.cache_root() / "stack"


class LocalStack(StackProcesses):
    """Collector, Prometheus, Loki, Jaeger (and optionally the example app) as local processes.

    Args:
        workdir: logs (``<name>.log``), rendered configs, data directories and the pid file. Data
            directories from an earlier run are removed at :meth:`start`.
        ports: every port; default the compose ports, :meth:`StackPorts.free` for tests.
        app: also start the example app (``example.app:app`` under ``otelkit-instrument``).
        worker: also start Redis and a Celery worker for the app; default: when ``app`` is on and
            ``redis-server`` is on PATH.
        app_env: extra environment for the app and worker (e.g. short export intervals).
        scrape_interval: Prometheus's scrape and rule evaluation interval.
        collector_options: extra :class:`~otelkit.ops.collector.CollectorSpec` fields (e.g.
            ``persistent_queue``) on top of the default backends, production profile, loopback.
        binaries: paths for ``collector``, ``jaeger``, ``loki``, ``prometheus``, ``alertmanager``, ``redis``;
            otherwise the cached builds (built when missing) and PATH.
        progress: called with one line per step.
        grace: seconds each process gets between SIGTERM and SIGKILL.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        ports: StackPorts | None = None,
        app: bool = True,
        worker: bool | None = None,
        app_env: Mapping[str, str] | None = None,
        scrape_interval: str = "5s",
        collector_options: Mapping[str, Any] | None = None,
        binaries: Mapping[str, str | os.PathLike[str]] | None = None,
        progress: Progress | None = None,
        grace: float = 10.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.ports = ports or StackPorts()
        self.app = app
        self.worker = app and (shutil.which("redis-server") is not None if worker is None else worker)
        self.app_env = dict(app_env or {})
        self.scrape_interval = scrape_interval
        self.collector_options = dict(collector_options or {})
        self._binaries = {k: Path(v) for k, v in (binaries or {}).items()}
        self._progress: Progress = progress or (lambda _line: None)
        self.grace = grace
        self.group: procs.ProcessGroup | None = None
        self._argv: dict[str, tuple[list[str], dict[str, str] | None, str]] = {}
        self._slots: dict[str, int] = {}
        root = repo_root()
        self.stack_dir = root / "stack"
        self.app_dir = root

    # --- addresses ---------------------------------------------------------------------------

    @property
    def loki_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.loki}"

    @property
    def jaeger_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.jaeger_query}"

    @property
    def app_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.app}"

    @property
    def pid_file(self) -> Path:
        return self.workdir / PID_FILE

    def where(self) -> list[tuple[str, str, str]]:
        """``(what, URL, sample query)`` for each signal, for people and for the pid file."""
        rows = [
            ("metrics (Prometheus)", self.prometheus_url, 'http_server_request_duration_seconds_count{http_route!=""}'),
            (
                "alerts (Alertmanager)",
                self.alertmanager_url,
                f"amtool alert query --alertmanager.url={self.alertmanager_url}",
            ),
            ("traces (Jaeger UI)", self.jaeger_url, f"{self.jaeger_url}/api/traces/<trace id>"),
            ("logs (Loki API)", f"{self.loki_url}/loki/api/v1/query_range", '{service_name="example-api"}'),
            ("OTLP in (collector)", self.otlp_http_endpoint, f"gRPC: {LOOPBACK}:{self.ports.otlp_grpc}"),
        ]
        if self.app:
            rows.append(("example app", self.app_url, f"curl {self.app_url}/items/1"))
        return rows

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check_ports(self) -> None:
        """Raise UsageError naming the first port that is already in use."""
        for owner, port in self._wanted_ports().items():
            if port_taken(port):
                raise UsageError(
                    f"port {port} ({owner}) on {LOOPBACK} is already in use; stop the other process or use --ports free"
                )

    def _wanted_ports(self) -> dict[str, int]:
        owners = self.ports.owners()
        if not self.app:
            owners.pop("example app")
        if not self.worker:
            owners.pop("redis")
        seen: dict[int, str] = {}
        for owner, port in owners.items():
            if port in seen:
                raise UsageError(f"port {port} is given to both {seen[port]} and {owner}; give each its own port")
            seen[port] = owner
        return owners

    def start(self) -> LocalStack:
        """Check ports and binaries, then start every process and wait until each is ready.

        On any failure everything started so far is stopped before the error propagates.

        Raises:
            UsageError: a port is taken, or another stack runs from the same work dir.
            ExternalToolError: a binary is missing or cannot be built, or a process is not ready in time.
        """
        self._check_not_running()
        self.check_ports()
        alertmanager_config = self._alertmanager_config()
        binaries = self._resolve_binaries()
        self._prepare_workdir()
        self.group = procs.ProcessGroup(self.workdir, grace=self.grace)
        try:
            self._write_configs()
            (self.workdir / "alertmanager.yaml").write_text(alertmanager_config, encoding="utf-8")
            self._define(binaries)
            for name in ("loki", "jaeger", "alertmanager", "prometheus"):
                self._spawn(name)
            self._write_pid_file()
            for name in ("jaeger", "alertmanager", "prometheus"):
                self._wait_ready(name)
            self._spawn("collector")
            self._write_pid_file()
            self._wait_ready("collector")
            self._wait_ready("loki")
            if self.worker:
                self._spawn("redis")
                self._wait_ready("redis")
                self._spawn("worker")
            if self.app:
                self._spawn("app")
                self._write_pid_file()
                self._wait_ready("app")
            self._write_pid_file()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process (last started first) and remove the pid file."""
        if self.group is not None:
            self._progress("stopping the stack")
            try:
                self.group.stop_all()
            finally:
                self.group = None
                with contextlib.suppress(FileNotFoundError):
                    self.pid_file.unlink()

    def check_running(self) -> None:
        """Raise ExternalToolError (with its log tail) if a started process has exited."""
        if self.group is not None:
            for proc in self.group.processes:
                proc.check_running()

    def process(self, name: str) -> procs.ManagedProcess:
        """The running process ``name`` (``loki``, ``jaeger``, ``prometheus``, ``collector``, ``app``…)."""
        if self.group is not None:
            for proc in self.group.processes:
                if proc.name == name:
                    return proc
        raise KeyError(f"{name!r} is not running in this stack")

    def pids(self) -> dict[str, int]:
        """``{name: pid}`` of every running process."""
        return {} if self.group is None else {p.name: p.pid for p in self.group.processes if p.running}

    def stop_backend(self, name: str) -> None:
        """Stop one process (e.g. ``"jaeger"``) and keep its ports, config and data for :meth:`start_backend`."""
        proc = self.process(name)
        proc.stop(self.grace)
        assert self.group is not None
        self._slots[name] = self.group.processes.index(proc)
        self.group.processes.remove(proc)
        self._write_pid_file()

    def start_backend(self, name: str) -> None:
        """Start a process stopped by :meth:`stop_backend` again, same ports and data; wait until ready."""
        if name not in self._argv:
            raise KeyError(f"unknown stack process {name!r}; expected one of: {', '.join(self._argv)}")
        proc = self._spawn(name)
        assert self.group is not None
        if name in self._slots:
            # Back in its place, so that stopping still goes app → collector → backends.
            self.group.processes.remove(proc)
            self.group.processes.insert(self._slots.pop(name), proc)
        self._write_pid_file()
        self._wait_ready(name)

    def restart(self, name: str) -> None:
        """:meth:`stop_backend` then :meth:`start_backend`."""
        self.stop_backend(name)
        self.start_backend(name)

    # --- queries -----------------------------------------------------------------------------

    def promql(self, query: str) -> list[Any]:
        """Instant PromQL query; the ``data.result`` list (see :func:`otelkit.local.procs.prometheus_query`)."""
        return procs.prometheus_query(self.prometheus_url, query)

    def jaeger_trace(self, trace_id: str) -> dict[str, Any] | None:
        """The trace from Jaeger's query API (``GET /api/traces/<id>``), or None while it is unknown."""
        status, body = self._get(f"{self.jaeger_url}/api/traces/{trace_id}", "Jaeger")
        if status == 404:
            return None
        answer = self._json(status, body, "Jaeger", trace_id)
        data = answer.get("data") or []
        return dict(data[0]) if data else None

    def loki_query(
        self, logql: str, start: float | None = None, end: float | None = None, limit: int = 1000
    ) -> list[Any]:
        """LogQL range query (``/loki/api/v1/query_range``); start/end in Unix seconds (default: last hour).

        Returns ``data.result``: for a log query, streams ``{"stream": {labels and structured
        metadata}, "values": [[ns, line], …]}``.
        """
        end = time.time() + 1 if end is None else end
        start = end - 3600 if start is None else start
        params = {"query": logql, "start": str(int(start * 1e9)), "end": str(int(end * 1e9)), "limit": str(limit)}
        url = f"{self.loki_url}/loki/api/v1/query_range?{urllib.parse.urlencode(params)}"
        status, body = self._get(url, "Loki")
        return list(self._json(status, body, "Loki", logql).get("data", {}).get("result", []))

    @staticmethod
    def _get(url: str, what: str) -> tuple[int, bytes]:
        try:
            return procs.http_get(url, timeout=10.0)
        except OSError as exc:
            raise ExternalToolError(f"{what} did not answer {url}: {exc}") from None

    @staticmethod
    def _json(status: int, body: bytes, what: str, query: str) -> dict[str, Any]:
        text = body.decode("utf-8", "replace")
        if status != 200:
            raise ExternalToolError(f"{what} query {query!r} failed (HTTP {status}): {text[:300].strip()}")
        try:
            return dict(json.loads(text))
        except ValueError:
            raise ExternalToolError(
                f"{what} answered {query!r} with something that is not JSON: {text[:300]!r}"
            ) from None

    # --- internals ---------------------------------------------------------------------------

    def _check_not_running(self) -> None:
        pid = running_owner(self.workdir)
        if pid is not None and pid != os.getpid():
            raise UsageError(
                f"a stack is already running from {self.workdir} (pid {pid}); stop it with `otelkit stack down`"
                " or use another --workdir"
            )

    def _spawn(self, name: str) -> procs.ManagedProcess:
        assert self.group is not None
        argv, env, _ = self._argv[name]
        self._progress(f"starting {name} (log: {self.workdir / (name + '.log')})")
        cwd = self.app_dir if name in ("app", "worker") else self.workdir
        return self.group.start(name, argv, env=env, cwd=cwd)

    def _wait_ready(self, name: str) -> None:
        proc = self.process(name)
        if name == "redis":
            proc.wait_port(self.ports.redis, timeout=30)
            return
        url = self._argv[name][2]
        proc.wait_http_ready(url, timeout=_READY_TIMEOUT.get(name, 60.0))
        self._progress(f"{name} is ready")

    def _write_pid_file(self) -> None:
        write_pid_file(self.pid_file, os.getpid(), self.pids(), workdir=str(self.workdir))


def where_table(stack: LocalStack) -> list[str]:
    """:meth:`LocalStack.where` as aligned lines: what, URL, sample query."""
    rows = stack.where()
    width = max(len(r[0]) for r in rows)
    url_width = max(len(r[1]) for r in rows)
    return [f"  {what:<{width}}  {url:<{url_width}}  {sample}" for what, url, sample in rows]
