"""The stack's own configs (collector/otelcol.yaml, stack/prometheus/prometheus.yaml) run on loopback ports.

For e2e tests that follow the product's metrics path — app → collector → Prometheus (→ Alertmanager)
— with the very files compose mounts, their addresses moved to free 127.0.0.1 ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from launch import REPO

from otelkit.local import procs as _procs

STACK_COLLECTOR = REPO / "collector" / "otelcol.yaml"
STACK_PROMETHEUS = REPO / "stack" / "prometheus" / "prometheus.yaml"


def loopback(config: Any, addresses: dict[str, str]) -> Any:
    """``config`` with every string equal to a key of ``addresses`` replaced by its value."""
    if isinstance(config, dict):
        return {k: loopback(v, addresses) for k, v in config.items()}
    if isinstance(config, list):
        return [loopback(v, addresses) for v in config]
    return addresses.get(config, config) if isinstance(config, str) else config


@dataclass(frozen=True)
class StackCollector:
    """The ports of a running stack collector."""

    grpc: int
    http: int
    exporter: int
    telemetry: int
    health: int

    @property
    def otlp_http(self) -> str:
        """Where apps send OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.http}"


def start_stack_collector(procs: _procs.ProcessGroup, otelcol_bin: Path) -> StackCollector:
    """collector/otelcol.yaml on loopback; its traces and logs go to a closed port (these tests are about metrics)."""
    ports = StackCollector(*(_procs.free_port() for _ in range(5)))
    dead = f"127.0.0.1:{_procs.free_port()}"
    config = loopback(
        yaml.safe_load(STACK_COLLECTOR.read_text(encoding="utf-8")),
        {
            "0.0.0.0:4317": f"127.0.0.1:{ports.grpc}",
            "0.0.0.0:4318": f"127.0.0.1:{ports.http}",
            "0.0.0.0:8889": f"127.0.0.1:{ports.exporter}",
            "0.0.0.0:13133": f"127.0.0.1:{ports.health}",
            "0.0.0.0": "127.0.0.1",
            "jaeger:4317": dead,
            "http://loki:3100/otlp": f"http://{dead}/otlp",
        },
    )
    config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] = ports.telemetry
    procs.path("otelcol.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    collector = procs.start("collector", [str(otelcol_bin), f"--config={procs.path('otelcol.yaml')}"])
    collector.wait_http_ready(f"http://127.0.0.1:{ports.health}/", timeout=60)
    return ports


def start_stack_prometheus(
    procs: _procs.ProcessGroup,
    prometheus_bin: Path,
    collector: StackCollector,
    *,
    rules: Path | None = None,
    alertmanager: str | None = None,
) -> str:
    """stack/prometheus/prometheus.yaml on loopback, scraping and evaluating every second; its URL.

    ``rules`` replaces the stack's rule file (none when ``None``); ``alertmanager`` (``http://host:port``)
    receives its alerts and is scraped; without it the config's Alertmanager parts are left out.
    """
    port = _procs.free_port()
    url = f"http://127.0.0.1:{port}"
    addresses = {
        "collector:8889": f"127.0.0.1:{collector.exporter}",
        "collector:8888": f"127.0.0.1:{collector.telemetry}",
        "localhost:9090": f"127.0.0.1:{port}",
    }
    if alertmanager is not None:
        addresses["alertmanager:9093"] = alertmanager.removeprefix("http://")
    config = loopback(yaml.safe_load(STACK_PROMETHEUS.read_text(encoding="utf-8")), addresses)
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)] if rules is not None else []
    if alertmanager is None:
        config.pop("alerting", None)
        config["scrape_configs"] = [job for job in config["scrape_configs"] if job["job_name"] != "alertmanager"]
    procs.path("prometheus.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    procs.start(
        "prometheus",
        [
            str(prometheus_bin),
            f"--config.file={procs.path('prometheus.yaml')}",
            f"--storage.tsdb.path={procs.path('prometheus-data')}",
            f"--web.listen-address=127.0.0.1:{port}",
            # As the stack runs it: an alert's link back to Prometheus is an address people can open.
            f"--web.external-url={url}",
        ],
    ).wait_http_ready(f"{url}/-/ready", timeout=60)
    return url
