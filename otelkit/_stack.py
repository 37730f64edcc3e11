"""The observability stack as local processes: collector, Prometheus, Loki and Jaeger on 127.0.0.1.

What ``docker compose up`` runs, without Docker: the collector built from the repo's manifest on
the default rendered config (``--bind 127.0.0.1``, exporters pointed at the local Jaeger and
Loki), Loki on ``stack/loki/loki.yaml`` and Jaeger on ``stack/jaeger/jaeger.yaml`` — the very
files compose mounts, their addresses moved through environment variables — and Prometheus on a
copy of ``stack/prometheus/prometheus.yaml`` with the scrape targets replaced (Prometheus 2.42
expands no variables in its config). Optionally the example app (and a Celery worker with Redis)
under ``otelkit-instrument``, exporting to the collector.

Everything runs in one :class:`~otelkit._procs.ProcessGroup` and is stopped in reverse order; one
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
import dataclasses
import errno
import json
import os
import shutil
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import otelkit
from otelkit import _gobuild, _procs
from otelkit.errors import ExternalToolError, UsageError
from otelkit.ops.collector import CollectorSpec, render_collector

__all__ = [
    "BACKEND_NAMES",
    "PID_FILE",
    "LocalStack",
    "StackPorts",
    "default_workdir",
    "read_pid_file",
    "repo_root",
    "stop_running",
    "where_table",
]

LOOPBACK = _procs.LOOPBACK
PID_FILE = "stack.pid"
"""Written into the work dir while a stack runs: JSON with the owner's pid and every child pid."""
BACKEND_NAMES = ("loki", "jaeger", "prometheus", "collector")
"""Names of the processes :meth:`LocalStack.stop_backend` / :meth:`LocalStack.start_backend` accept."""

Progress = Callable[[str], object]

# How long each process may take to become ready. Loki needs ~15 s for its ring on 2 cores.
_READY_TIMEOUT = {"loki": 120.0, "jaeger": 60.0, "prometheus": 60.0, "collector": 60.0, "app": 60.0}


def repo_root() -> Path:
    """The checkout otelkit runs from (the parent of the ``otelkit`` package)."""
    return Path(otelkit.__file__).resolve().parents[1]


def default_workdir() -> Path:
    """Where ``otelkit stack up`` keeps logs, configs, data and its pid file: ``<cache>/stack``."""
    return _gobuild.cache_root() / "stack"


@dataclass(frozen=True)
class StackPorts:
    """Every TCP port the stack listens on (all on 127.0.0.1).

    The defaults are the ports docker-compose publishes; Jaeger's own OTLP, health and metrics
    listeners move off the collector's 4317/4318/13133/8888 (in compose they live in separate
    containers).
    """

    otlp_grpc: int = 4317
    otlp_http: int = 4318
    collector_exporter: int = 8889
    collector_telemetry: int = 8888
    collector_health: int = 13133
    prometheus: int = 9090
    loki: int = 3100
    loki_grpc: int = 9096
    jaeger_query: int = 16686
    jaeger_query_grpc: int = 16685
    jaeger_otlp_grpc: int = 4327
    jaeger_otlp_http: int = 4328
    jaeger_health: int = 13134
    jaeger_metrics: int = 14269
    app: int = 8000
    redis: int = 6379

    @classmethod
    def free(cls) -> StackPorts:
        """Ports the OS reports free right now, all different."""
        chosen: set[int] = set()
        values = {}
        for f in dataclasses.fields(cls):
            port = _procs.free_port()
            while port in chosen:
                port = _procs.free_port()
            chosen.add(port)
            values[f.name] = port
        return cls(**values)

    def owners(self) -> dict[str, int]:
        """``{"<process> <listener>": port}``, e.g. ``{"loki": 3100, "jaeger query": 16686, …}``."""
        names = {
            "otlp_grpc": "collector OTLP/gRPC",
            "otlp_http": "collector OTLP/HTTP",
            "collector_exporter": "collector prometheus exporter",
            "collector_telemetry": "collector telemetry",
            "collector_health": "collector health_check",
            "prometheus": "prometheus",
            "loki": "loki",
            "loki_grpc": "loki gRPC",
            "jaeger_query": "jaeger query",
            "jaeger_query_grpc": "jaeger query gRPC",
            "jaeger_otlp_grpc": "jaeger OTLP/gRPC",
            "jaeger_otlp_http": "jaeger OTLP/HTTP",
            "jaeger_health": "jaeger health",
            "jaeger_metrics": "jaeger metrics",
            "app": "example app",
            "redis": "redis",
        }
        return {names[f.name]: getattr(self, f.name) for f in dataclasses.fields(self)}


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the servers themselves: a port in TIME_WAIT is not "taken".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


class LocalStack:
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
        binaries: paths for ``collector``, ``jaeger``, ``loki``, ``prometheus``, ``redis``;
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
        self.group: _procs.ProcessGroup | None = None
        self._argv: dict[str, tuple[list[str], dict[str, str] | None, str]] = {}
        self._slots: dict[str, int] = {}
        root = repo_root()
        self.stack_dir = root / "stack"
        self.app_dir = root

    # --- addresses ---------------------------------------------------------------------------

    @property
    def otlp_http_endpoint(self) -> str:
        """Where apps send OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://{LOOPBACK}:{self.ports.otlp_http}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.prometheus}"

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
            if _port_taken(port):
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
        binaries = self._resolve_binaries()
        self._prepare_workdir()
        self.group = _procs.ProcessGroup(self.workdir, grace=self.grace)
        try:
            self._write_configs()
            self._define(binaries)
            for name in ("loki", "jaeger", "prometheus"):
                self._spawn(name)
            self._write_pid_file()
            for name in ("jaeger", "prometheus"):
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

    def process(self, name: str) -> _procs.ManagedProcess:
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
        """Instant PromQL query; the ``data.result`` list (see :func:`otelkit._procs.prometheus_query`)."""
        return _procs.prometheus_query(self.prometheus_url, query)

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
            return _procs.http_get(url, timeout=10.0)
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
        try:
            info = json.loads(self.pid_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return
        pid = int(info.get("pid", 0))
        if pid and pid != os.getpid() and _alive(pid):
            raise UsageError(
                f"a stack is already running from {self.workdir} (pid {pid}); stop it with `otelkit stack down`"
                " or use another --workdir"
            )

    def _resolve_binaries(self) -> dict[str, Path]:
        found = dict(self._binaries)
        for name in ("prometheus", "redis-server"):
            key = "redis" if name == "redis-server" else name
            if key == "redis" and not self.worker:
                continue
            if key not in found:
                exe = shutil.which(name)
                if exe is None:
                    raise ExternalToolError(
                        f"{name} not found on PATH; install it (Debian: `apt-get install -y {name}`)"
                        + (" or run `otelkit stack up --no-app`" if key == "redis" else "")
                    )
                found[key] = Path(exe)
        if self.app:
            launcher = Path(sys.executable).parent / "otelkit-instrument"
            if not launcher.exists():
                raise ExternalToolError(
                    f"otelkit-instrument not found beside {sys.executable}; install otelkit with its example"
                    " extra (pip install -e '.[example]') or use --no-app"
                )
            found["launcher"] = launcher
        for name, path in list(found.items()):
            if not path.exists():
                raise ExternalToolError(f"{name} binary {path} does not exist; check the path or let otelkit build it")
        if "collector" not in found:
            found["collector"] = _gobuild.ensure_collector(progress=self._progress)
        for name in ("jaeger", "loki"):
            if name not in found:
                found[name] = _gobuild.ensure_backend(name, progress=self._progress)
        for name in ("loki/loki.yaml", "jaeger/jaeger.yaml", "prometheus/prometheus.yaml", "prometheus/alerts.yaml"):
            if not (self.stack_dir / name).is_file():
                raise UsageError(
                    f"{self.stack_dir / name} not found: the local stack runs from a checkout of the otelkit"
                    " repository; clone it and `pip install -e .` there"
                )
        return found

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Each run starts empty: data from an earlier run would mix into this one's queries.
        for name in ("loki-data", "prometheus-data", "collector-queue"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
        for log in self.workdir.glob("*.log"):
            log.unlink()
        (self.workdir / "loki-data").mkdir()

    def _write_configs(self) -> None:
        p = self.ports
        spec = CollectorSpec(
            **{
                "bind": LOOPBACK,
                "otlp_grpc_port": p.otlp_grpc,
                "otlp_http_port": p.otlp_http,
                "prometheus_endpoint": f"{LOOPBACK}:{p.collector_exporter}",
                "telemetry_port": p.collector_telemetry,
                "health_port": p.collector_health,
                "traces_endpoint": (f"{LOOPBACK}:{p.jaeger_otlp_grpc}",),
                "logs_endpoint": (f"http://{LOOPBACK}:{p.loki}/otlp",),
                **self.collector_options,
            }
        )
        (self.workdir / "otelcol.yaml").write_text(render_collector(spec), encoding="utf-8")

        prom = yaml.safe_load((self.stack_dir / "prometheus" / "prometheus.yaml").read_text(encoding="utf-8"))
        targets = {
            "collector:8889": f"{LOOPBACK}:{p.collector_exporter}",
            "collector:8888": f"{LOOPBACK}:{p.collector_telemetry}",
            "localhost:9090": f"{LOOPBACK}:{p.prometheus}",
        }
        for job in prom.get("scrape_configs", []):
            for static in job.get("static_configs", []):
                static["targets"] = [targets.get(t, t) for t in static.get("targets", [])]
        prom["global"] = {**prom.get("global", {}), "scrape_interval": self.scrape_interval}
        prom["global"]["evaluation_interval"] = self.scrape_interval
        prom["rule_files"] = [str(self.stack_dir / "prometheus" / r) for r in prom.get("rule_files", [])]
        header = "# Derived from stack/prometheus/prometheus.yaml by otelkit's local stack: targets on 127.0.0.1.\n"
        (self.workdir / "prometheus.yaml").write_text(header + yaml.safe_dump(prom, sort_keys=False), encoding="utf-8")

    def _define(self, bins: dict[str, Path]) -> None:
        p, w = self.ports, self.workdir
        loki_env = {
            **os.environ,
            "LOKI_LISTEN_ADDRESS": LOOPBACK,
            "LOKI_HTTP_PORT": str(p.loki),
            "LOKI_GRPC_PORT": str(p.loki_grpc),
            "LOKI_DATA_DIR": str(w / "loki-data"),
        }
        jaeger_env = {
            **os.environ,
            "JAEGER_LISTEN_ADDRESS": LOOPBACK,
            "JAEGER_OTLP_GRPC_PORT": str(p.jaeger_otlp_grpc),
            "JAEGER_OTLP_HTTP_PORT": str(p.jaeger_otlp_http),
            "JAEGER_QUERY_HTTP_PORT": str(p.jaeger_query),
            "JAEGER_QUERY_GRPC_PORT": str(p.jaeger_query_grpc),
            "JAEGER_HEALTH_PORT": str(p.jaeger_health),
            "JAEGER_METRICS_PORT": str(p.jaeger_metrics),
        }
        loki_cfg = self.stack_dir / "loki" / "loki.yaml"
        self._argv = {
            "loki": (
                [str(bins["loki"]), f"-config.file={loki_cfg}", "-config.expand-env=true"],
                loki_env,
                f"http://{LOOPBACK}:{p.loki}/ready",
            ),
            "jaeger": (
                [str(bins["jaeger"]), f"--config={self.stack_dir / 'jaeger' / 'jaeger.yaml'}"],
                jaeger_env,
                f"http://{LOOPBACK}:{p.jaeger_query}/api/services",
            ),
            "prometheus": (
                [
                    str(bins["prometheus"]),
                    f"--config.file={w / 'prometheus.yaml'}",
                    f"--storage.tsdb.path={w / 'prometheus-data'}",
                    f"--web.listen-address={LOOPBACK}:{p.prometheus}",
                ],
                None,
                f"http://{LOOPBACK}:{p.prometheus}/-/ready",
            ),
            "collector": (
                [str(bins["collector"]), f"--config={w / 'otelcol.yaml'}"],
                None,
                f"http://{LOOPBACK}:{p.collector_health}/",
            ),
        }
        if self.worker:
            self._argv["redis"] = (
                [str(bins["redis"]), "--port", str(p.redis), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"],
                None,
                "",
            )
        if self.app:
            launcher = str(bins["launcher"])
            self._argv["app"] = (
                [
                    launcher,
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "example.app:app",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(p.app),
                ],
                self._app_env("example-api"),
                f"http://{LOOPBACK}:{p.app}/health/live",
            )
            if self.worker:
                celery = [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "example.tasks",
                    "worker",
                    "--pool",
                    "solo",
                    "-l",
                    "INFO",
                ]
                self._argv["worker"] = ([launcher, *celery], self._app_env("example-worker"), "")

    def _app_env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            {
                "OTEL_PYTHON_DISTRO": "otelkit",
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_http_endpoint,
                "OTEL_SERVICE_NAME": service,
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(self.app_dir), env.get("PYTHONPATH", "")])),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.worker:
            env["OTELKIT_EXAMPLE_BROKER"] = f"redis://{LOOPBACK}:{self.ports.redis}/0"
        env.update(self.app_env)
        return env

    def _spawn(self, name: str) -> _procs.ManagedProcess:
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
        info = {"pid": os.getpid(), "workdir": str(self.workdir), "processes": self.pids()}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.pid_file)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid_file(workdir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The pid file of a stack running from ``workdir``, or None when there is none."""
    try:
        return dict(json.loads((Path(workdir) / PID_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return None


def stop_running(workdir: str | os.PathLike[str], *, timeout: float = 60.0, progress: Progress | None = None) -> bool:
    """Stop the stack that ``otelkit stack up`` runs from ``workdir``: SIGTERM its owner, wait, then
    SIGKILL whatever of it is left. Returns False when no stack was running there."""
    say: Progress = progress or (lambda _line: None)
    info = read_pid_file(workdir)
    if info is None:
        return False
    owner = int(info.get("pid", 0))
    children = {str(k): int(v) for k, v in (info.get("processes") or {}).items()}
    if not owner or not _alive(owner):
        say(f"no live stack owner (pid {owner}); cleaning up what it left")
    else:
        say(f"stopping the stack (pid {owner})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, 15)
        deadline = time.monotonic() + timeout
        while _alive(owner) and not _zombie(owner) and time.monotonic() < deadline:
            time.sleep(0.1)
    for name, pid in children.items():
        if _alive(pid) and not _zombie(pid):
            say(f"{name} (pid {pid}) is still running; killing its process group")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, 9)
    with contextlib.suppress(FileNotFoundError):
        (Path(workdir) / PID_FILE).unlink()
    return True


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def where_table(stack: LocalStack) -> list[str]:
    """:meth:`LocalStack.where` as aligned lines: what, URL, sample query."""
    rows = stack.where()
    width = max(len(r[0]) for r in rows)
    url_width = max(len(r[1]) for r in rows)
    return [f"  {what:<{width}}  {url:<{url_width}}  {sample}" for what, url, sample in rows]
