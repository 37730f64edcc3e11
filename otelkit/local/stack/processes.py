"""What each process of the local stack runs: binaries, rendered configs, command lines, environments.

Part of :class:`~otelkit.local.stack.LocalStack` (which inherits :class:`StackProcesses`): the
collector's config is rendered for loopback ports, Prometheus's is a copy of
``stack/prometheus/prometheus.yaml`` with its scrape and Alertmanager targets moved,
Alertmanager's a copy of ``stack/alertmanager/alertmanager.yaml`` (see
:mod:`otelkit.local.stack.alertmanager`), Loki and Jaeger run on the files compose mounts with
their addresses in environment variables.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from otelkit.errors import ExternalToolError, UsageError
from otelkit.local import gobuild, procs
from otelkit.local.stack import alertmanager as am
from otelkit.local.stack.ports import StackPorts
from otelkit.ops.collector import CollectorSpec, render_collector

__all__ = ["StackProcesses"]

LOOPBACK = procs.LOOPBACK


class StackProcesses:
    """The process definitions half of the local stack; :class:`LocalStack` sets these attributes."""

    workdir: Path
    ports: StackPorts
    app: bool
    worker: bool
    app_env: dict[str, str]
    scrape_interval: str
    collector_options: dict[str, Any]
    stack_dir: Path
    app_dir: Path
    _binaries: dict[str, Path]
    _progress: Callable[[str], object]
    _argv: dict[str, tuple[list[str], dict[str, str] | None, str]]

    @property
    def otlp_http_endpoint(self) -> str:
        """Where apps send OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://{LOOPBACK}:{self.ports.otlp_http}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.alertmanager}"

    def _alertmanager_config(self) -> str:
        """The local copy of stack/alertmanager/alertmanager.yaml; UsageError if a secret file is missing."""
        source = self.stack_dir / "alertmanager" / "alertmanager.yaml"
        if not source.is_file():
            raise UsageError(
                f"{source} not found: the local stack runs from a checkout of the otelkit"
                " repository; clone it and `pip install -e .` there"
            )
        return am.local_config(source)

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
        if "alertmanager" not in found:
            found["alertmanager"] = am.find_binary()
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
            found["collector"] = gobuild.ensure_collector(progress=self._progress)
        for name in ("jaeger", "loki"):
            if name not in found:
                found[name] = gobuild.ensure_backend(name, progress=self._progress)
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
        for name in ("loki-data", "prometheus-data", "alertmanager-data", "collector-queue"):
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
            "alertmanager:9093": f"{LOOPBACK}:{p.alertmanager}",
        }
        jobs = [*prom.get("scrape_configs", []), *(prom.get("alerting") or {}).get("alertmanagers", [])]
        for job in jobs:
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
                    # Alerts link back here (generatorURL): an address people can open.
                    f"--web.external-url={self.prometheus_url}",
                ],
                None,
                f"http://{LOOPBACK}:{p.prometheus}/-/ready",
            ),
            "alertmanager": (
                am.argv(
                    bins["alertmanager"], w / "alertmanager.yaml", w / "alertmanager-data", LOOPBACK, p.alertmanager
                ),
                None,
                f"{self.alertmanager_url}/-/ready",
            ),
            "collector": (
                [str(bins["collector"]), f"--config={w / 'otelcol.yaml'}"],
                None,
                f"http://{LOOPBACK}:{p.collector_health}/",
            ),
        }
        if self.worker:
            self._argv["redis"] = (
                procs.redis_argv(bins["redis"], p.redis),
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
