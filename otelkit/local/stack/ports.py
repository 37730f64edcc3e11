"""The TCP ports of the local stack (all on 127.0.0.1), and whether one is taken."""

from __future__ import annotations

import dataclasses
import errno
import socket
from dataclasses import dataclass

from otelkit.local import procs

__all__ = ["StackPorts", "port_taken"]

LOOPBACK = procs.LOOPBACK


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
    alertmanager: int = 9093
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
            port = procs.free_port()
            while port in chosen:
                port = procs.free_port()
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
            "alertmanager": "alertmanager",
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


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the servers themselves: a port in TIME_WAIT is not "taken".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False
