"""OTLP/gRPC is the ``otelkit[grpc]`` extra: asked for without it, one line says how to install it and
the signals go over http/protobuf."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from otelkit._runtime import exporters
from otelkit.testing import OTLPReceiver

# A process in which the gRPC exporter and grpcio cannot be imported, as when the extra is not installed.
_WITHOUT_GRPC = textwrap.dedent(
    """
    import sys

    class _NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name == "grpc" or name.startswith(("grpc.", "opentelemetry.exporter.otlp.proto.grpc")):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NotInstalled())
    """
)

_APP = textwrap.dedent(
    """
    import logging

    import otelkit
    from opentelemetry import metrics, trace

    otelkit.configure(service_name="grpc-less")
    with trace.get_tracer("t").start_as_current_span("over-http"):
        logging.getLogger("app").warning("logged over http")
    metrics.get_meter("t").create_counter("over.http").add(1)
    """
)


def _run_without_grpc(receiver: OTLPReceiver, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **env}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_GRPC + _APP],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _messages(stderr: str) -> list[str]:
    return [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]


def test_grpc_extra_missing_is_one_line_and_every_signal_goes_over_http():
    with OTLPReceiver() as receiver:
        result = _run_without_grpc(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
        receiver.wait_for(lambda r: r.spans and r.logs and r.metrics, timeout=30)
    grpc_lines = [m for m in _messages(result.stderr) if "grpc" in m.lower()]
    assert grpc_lines == [
        "otelkit: OTEL_EXPORTER_OTLP_PROTOCOL=grpc but the OTLP/gRPC exporter is not installed"
        " (pip install 'otelkit[grpc]'); traces, metrics, logs go over http/protobuf"
        " (default endpoint http://localhost:4318) until it is"
    ]
    assert [s.name for s in receiver.spans] == ["over-http"]
    assert "logged over http" in [r.body for r in receiver.logs]
    assert [p.value for p in receiver.metrics if p.name == "over.http"] == [1]


def test_grpc_extra_missing_names_only_the_signals_that_asked():
    with OTLPReceiver() as receiver:
        result = _run_without_grpc(receiver, OTEL_EXPORTER_OTLP_LOGS_PROTOCOL="grpc")
        receiver.wait_for(lambda r: r.spans and r.logs, timeout=30)
    assert [m for m in _messages(result.stderr) if "grpc" in m.lower()] == [
        "otelkit: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=grpc but the OTLP/gRPC exporter is not installed"
        " (pip install 'otelkit[grpc]'); logs go over http/protobuf"
        " (default endpoint http://localhost:4318) until it is"
    ]


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_grpc_extra_installed_exports_over_grpc(monkeypatch, caplog, signal):
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    (exporter,) = exporters.exporters_for(signal)
    real = exporter.resolve()
    real = getattr(real, "inner", real)  # spans and logs: behind the redacting wrapper
    assert type(real).__module__.startswith("opentelemetry.exporter.otlp.proto.grpc")
    assert "not installed" not in caplog.text
