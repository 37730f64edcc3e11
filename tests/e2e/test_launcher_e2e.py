"""The example app under ``opentelemetry-instrument`` with otelkit as distro, and under ``otelkit-instrument``,
against a real OTLP receiver."""

from __future__ import annotations

import importlib.metadata
import signal
import subprocess
import sys

import httpx
import pytest
from launch import BIN, LAUNCHERS, REPO, app_env, start_app, wait_until

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver

pytestmark = pytest.mark.e2e

ROUTE = "/items/{item_id}"
# Long export intervals: everything the receiver gets arrives through the flush at shutdown.
NO_PERIODIC_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "60000",
    "OTEL_BLRP_SCHEDULE_DELAY": "60000",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
}


@pytest.fixture
def procs():
    with _procs.ProcessGroup() as group:
        yield group


def _traffic(base: str, n: int) -> None:
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            assert client.get(f"{base}/items/{1 + i % 3}").status_code == 200
        assert client.get(f"{base}/health/live").status_code == 200


def _stop(proc: _procs.ManagedProcess, sig: int) -> int:
    proc.signal(sig)
    assert proc.popen is not None
    return proc.popen.wait(timeout=30)


def _run_script(launcher: str, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``launcher argv…`` to completion (60 s at most) and return what it printed; fails on a non-zero exit."""
    return subprocess.run([str(BIN / launcher), *argv], env=env, capture_output=True, text=True, timeout=60, check=True)


def _assert_everything_arrived(rx: OTLPReceiver, n: int) -> None:
    server_spans = [s for s in rx.spans if s.kind == "SERVER"]
    # One server span per request, nothing for the excluded health check, no send/receive spans.
    assert len(server_spans) == n, rx.summary()
    assert len(rx.spans) == n, rx.summary()
    assert {s.name for s in server_spans} == {f"GET {ROUTE}"}
    assert all(s.attributes["http.route"] == ROUTE for s in server_spans)
    assert all(s.resource["telemetry.distro.name"] == "otelkit" for s in server_spans)
    trace_ids = {s.trace_id for s in server_spans}

    points = [p for p in rx.metric_points("http.server.request.duration") if p.attributes.get("http.route") == ROUTE]
    assert points, rx.summary()
    assert max(p.count or 0 for p in points) == n
    assert points[0].unit == "s"
    assert not [p for p in rx.metric_points("http.server.request.duration") if "http.host" in p.attributes]

    fetched = rx.logs_with(body_contains="fetched item")
    assert len(fetched) == n, rx.summary()  # INFO records arrive, and exactly once
    assert all(log.severity_text == "INFO" for log in fetched)
    assert {log.trace_id for log in fetched} == trace_ids
    assert all(isinstance(log.attributes["item_id"], int) and log.attributes["item_name"] for log in fetched)
    access = [log for log in rx.logs if log.scope_name == "uvicorn.access"]
    assert len(access) == n + 2  # uvicorn access log: the requests, the readiness probe and the health check
    assert [log for log in rx.logs if log.scope_name == "uvicorn.error"]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_sigterm_flushes_all_three_signals(procs, launcher):
    assert importlib.metadata.distribution("opentelemetry-distro")  # installed beside otelkit: otelkit still wins
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, app_env(rx.endpoint, **NO_PERIODIC_EXPORT), launcher=launcher)
        _traffic(base, 30)
        assert rx.spans == []  # nothing exported yet: the flush below is what delivers
        assert _stop(proc, signal.SIGTERM) == -signal.SIGTERM
        _assert_everything_arrived(rx, 30)
    assert "Traceback" not in proc.log_text()


def test_launcher_sigint_flushes_all_three_signals(procs):
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, app_env(rx.endpoint, **NO_PERIODIC_EXPORT))
        _traffic(base, 12)
        _stop(proc, signal.SIGINT)
        _assert_everything_arrived(rx, 12)


def test_launcher_programmatic_configure_gives_the_same_result(procs):
    with OTLPReceiver() as rx:
        port = _procs.free_port()
        code = (
            "import otelkit; otelkit.configure(); import uvicorn; "
            f"uvicorn.run('example.app:app', host='127.0.0.1', port={port})"
        )
        env = app_env(rx.endpoint, **NO_PERIODIC_EXPORT)
        del env["OTEL_PYTHON_DISTRO"]
        proc = procs.start("configured", [sys.executable, "-c", code], env=env, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        proc.wait_http_ready(f"{base}/health/live", timeout=60)
        _traffic(base, 9)
        _stop(proc, signal.SIGTERM)
        _assert_everything_arrived(rx, 9)


def test_launcher_collector_down_never_blocks_and_shuts_down_quickly(procs):
    dead = f"http://127.0.0.1:{_procs.free_port()}"
    env = app_env(
        dead, OTEL_BSP_SCHEDULE_DELAY="100", OTEL_BLRP_SCHEDULE_DELAY="100", OTEL_METRIC_EXPORT_INTERVAL="500"
    )
    proc, base = start_app(procs, env)
    with httpx.Client(timeout=5) as client:
        for i in range(40):
            assert client.get(f"{base}/items/{1 + i % 3}").status_code == 200
    # Export failures are visible on stderr even though the logs pipeline itself is dead.
    wait_until(lambda: "Failed to export" in proc.log_text(), timeout=30, what="an exporter failure on stderr")
    proc.signal(signal.SIGTERM)
    assert proc.popen is not None
    proc.popen.wait(timeout=15)  # bounded: OTELKIT_SHUTDOWN_TIMEOUT (3 s) plus interpreter exit; generous here
    log = proc.log_text()
    assert "Traceback" not in log
    assert "did not finish within 3.0s" in log
    failures = [line for line in log.splitlines() if "Failed to export" in line]
    assert 1 <= len(failures) <= 12, failures  # rate-limited: one line per exporter and message per 30 s


def test_launcher_refuses_prometheus_metrics_exporter_and_exports_otlp(procs):
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTEL_METRICS_EXPORTER="prometheus", OTEL_METRIC_EXPORT_INTERVAL="300")
        proc, base = start_app(procs, env, python_args=("-X", "importtime"))
        _traffic(base, 3)
        rx.wait_for(lambda r: r.metric_points("http.server.request.duration"), timeout=20)
        import psutil

        listening = {
            c.laddr.port for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == "LISTEN"
        }
        assert listening == {int(base.rsplit(":", 1)[1])}  # no :9464 or any other port of the app's own
        _stop(proc, signal.SIGTERM)
    log = proc.log_text()
    refusals = [line for line in log.splitlines() if "OTEL_METRICS_EXPORTER=prometheus refused" in line]
    assert len(refusals) == 1
    imported = [line.rsplit("|", 1)[-1].strip() for line in log.splitlines() if line.startswith("import time:")]
    assert imported and not [m for m in imported if m.startswith("prometheus_client")]


def test_launcher_bad_otelkit_value_is_one_line_and_the_app_still_works(procs):
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTELKIT_ENVIRONMENT="prod", OTEL_BSP_SCHEDULE_DELAY="100")
        proc, base = start_app(procs, env)
        _traffic(base, 2)
        rx.wait_for(lambda r: len(r.spans_named(f"GET {ROUTE}")) == 2, timeout=20)
        _stop(proc, signal.SIGTERM)
    errors = [line for line in proc.log_text().splitlines() if "OTELKIT_ENVIRONMENT" in line]
    assert len(errors) == 1
    assert (
        "otelkit: invalid OTELKIT_ENVIRONMENT='prod'; expected one of: production, development"
        " (did you mean 'production'?); fix or unset OTELKIT_ENVIRONMENT; using its default"
    ) in errors[0]


def test_launcher_user_env_wins_over_otelkit_defaults(procs):
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME="custom-name", **NO_PERIODIC_EXPORT)
        proc, base = start_app(procs, env)
        _traffic(base, 2)
        _stop(proc, signal.SIGTERM)
        assert rx.logs == []
        assert {s.service_name for s in rx.spans} == {"custom-name"}


_GC_CASES = [
    # Raised by what the span and log batches hold (12 tracked objects each), else Python's 700.
    ("otelkit", {}, True, 700 + 12 * (512 + 512)),
    ("otelkit", {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128"}, True, 700 + 12 * (128 + 512)),
    ("otelkit", {"OTELKIT_GC_FREEZE": "false"}, False, 700),
    ("distro", {"OTEL_PYTHON_CONFIGURATOR": "configurator"}, False, 700),
]


@pytest.mark.parametrize(
    ("launcher", "distro", "extra", "frozen", "threshold"),
    # otelkit-instrument has no distro to choose: only the otelkit cases apply to it.
    [
        (launcher, *case)
        for launcher in LAUNCHERS
        for case in _GC_CASES
        if launcher != "otelkit-instrument" or case[0] == "otelkit"
    ],
)
def test_launcher_gc_freeze_only_under_otelkit(tmp_path, launcher, distro, extra, frozen, threshold):
    script = tmp_path / "count.py"
    script.write_text("import gc; print(gc.get_freeze_count(), gc.get_threshold()[0])\n")
    env = app_env(
        "http://127.0.0.1:9",
        OTEL_PYTHON_DISTRO=distro,
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **extra,
    )
    out = _run_script(launcher, sys.executable, str(script), env=env)
    frozen_count, threshold0 = map(int, out.stdout.split())
    assert (frozen_count > 0) is frozen
    assert threshold0 == threshold


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_instruments_libraries_when_the_app_imports_them(tmp_path, launcher):
    """httpx (and every other contrib instrumentation) is instrumented on first import, not at start-up."""
    script = tmp_path / "client.py"
    script.write_text(
        "import sys\n"
        "print('httpx' in sys.modules, 'redis' in sys.modules, 'requests' in sys.modules,"
        " 'opentelemetry.exporter.otlp.proto.http.trace_exporter' in sys.modules)\n"
        "import httpx\n"
        "httpx.post(sys.argv[1], content=b'')\n"
    )
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        out = _run_script(launcher, sys.executable, str(script), rx.url("traces"), env=env)
        httpx_imported, redis_imported, requests_imported, exporter_built = out.stdout.split()
        assert (httpx_imported, redis_imported) == ("False", "False")  # nothing imported for the app
        # Nor requests: only SDK exporters before 1.45 import it, once built (a second after start-up).
        sdk = tuple(int(part) for part in importlib.metadata.version("opentelemetry-sdk").split(".")[:2])
        old_exporter = exporter_built == "True" and sdk < (1, 45)
        assert requests_imported == "False" or old_exporter
        rx.wait_for(lambda r: any(s.kind == "CLIENT" for s in r.spans), timeout=20)
        (span,) = [s for s in rx.spans if s.kind == "CLIENT"]
        assert span.name == "POST"
        assert span.attributes["url.full"] == rx.url("traces")


# --------------------------------------------------------------------------- otelkit-instrument


def test_launcher_otelkit_instrument_options_set_variables_and_the_shadowed_sitecustomize_runs(tmp_path):
    """``--service_name`` works as with opentelemetry-instrument; a sitecustomize further down the path still runs."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "sitecustomize.py").write_text("import os\nos.environ['OWN_SITECUSTOMIZE'] = 'ran'\n")
    script = tmp_path / "app.py"
    script.write_text(
        "import os, sys\n"
        "from opentelemetry import trace\n"
        "print(os.environ.get('OWN_SITECUSTOMIZE'), type(trace.get_tracer_provider()).__module__)\n"
        "with trace.get_tracer('t').start_as_current_span('job'):\n"
        "    pass\n"
    )
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        env["PYTHONPATH"] = f"{REPO}:{own}"
        out = _run_script("otelkit-instrument", "--service_name", "nightly", sys.executable, str(script), env=env)
        assert out.stdout.split() == ["ran", "opentelemetry.sdk.trace"]
        rx.wait_for(lambda r: r.spans_named("job"), timeout=20)
    (span,) = rx.spans_named("job")
    assert span.service_name == "nightly"
    assert "Traceback" not in out.stderr


def test_launcher_otelkit_instrument_disabled_instrumentations_are_skipped(tmp_path):
    script = tmp_path / "client.py"
    script.write_text("import sys, httpx\nprint(httpx.post(sys.argv[1], content=b'').status_code)\n")
    with OTLPReceiver() as rx:
        env = app_env(
            rx.endpoint,
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="redis, httpx",
        )
        out = _run_script("otelkit-instrument", sys.executable, str(script), rx.url("traces"), env=env)
        assert out.stdout.split() == ["415"]  # the POST happened (no content type: refused)...
        assert rx.spans == []  # ...and left no CLIENT span: the shutdown flush would have delivered it
