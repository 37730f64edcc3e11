"""The README's main command: the example service's three signals, live, with no Docker and no collector.

``./scripts/demo`` sets up the venv and runs this module, which

1. starts ``otelkit tail`` (an embedded OTLP/HTTP receiver that prints what arrives),
2. starts Redis and a Celery worker when ``redis-server`` is installed (for a cross-process trace),
3. starts the example app under ``otelkit-instrument`` (the same as ``opentelemetry-instrument``
   with ``OTEL_PYTHON_DISTRO=otelkit``, faster to start), exporting to that receiver — no line of
   observability code in the app,
4. sends some traffic (found, not found, a server error, an order handled by a Celery task),
5. stops everything with SIGTERM, which flushes the last spans, metric points and log records.

Everything runs on 127.0.0.1 and is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from otelkit.local import procs as _procs

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _say(message: str) -> None:
    print(f"\n==> {message}", file=sys.stderr, flush=True)


def _request(method: str, url: str) -> int:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _app_env(endpoint: str, broker: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        {
            "OTEL_PYTHON_DISTRO": "otelkit",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "3000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_BLRP_SCHEDULE_DELAY": "500",
            "OTELKIT_ENVIRONMENT": "development",
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if broker:
        env["OTELKIT_EXAMPLE_BROKER"] = broker
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4318, help="port of the embedded receiver (default 4318)")
    parser.add_argument("--requests", type=int, default=6, help="requests per route (default 6)")
    parser.add_argument("--no-celery", action="store_true", help="skip Redis and the Celery worker")
    args = parser.parse_args(argv)

    tail_port = args.port
    if _procs._port_open("127.0.0.1", tail_port):
        tail_port = _procs.free_port()
        _say(f"port {args.port} is taken; the receiver listens on {tail_port} instead")
    endpoint = f"http://127.0.0.1:{tail_port}"
    tail = subprocess.Popen([str(BIN / "otelkit"), "tail", "--port", str(tail_port)], start_new_session=True)
    try:
        with _procs.ProcessGroup(grace=15) as procs:
            _procs.wait_port("127.0.0.1", tail_port, timeout=20)
            broker = None
            with_celery = not args.no_celery and shutil.which("redis-server") and (REPO / "example/tasks.py").exists()
            if with_celery:
                broker = _procs.start_redis(procs).url
                _say(f"Redis on {broker}; starting a Celery worker under otelkit-instrument")
                procs.start(
                    "worker",
                    [
                        str(BIN / "otelkit-instrument"),
                        str(BIN / "celery"),
                        "-A",
                        "example.tasks",
                        "worker",
                        "--pool",
                        "solo",
                        "--loglevel",
                        "INFO",
                    ],
                    env=_app_env(endpoint, broker),
                    cwd=REPO,
                )
            elif not args.no_celery:
                _say("redis-server not found: skipping the Celery part (apt-get install redis-server to see it)")

            app_port = _procs.free_port()
            base = f"http://127.0.0.1:{app_port}"
            _say(f"starting the example app under otelkit-instrument on {base} (logs: {procs.path('app.log')})")
            app = procs.start(
                "app",
                [
                    str(BIN / "otelkit-instrument"),
                    str(BIN / "uvicorn"),
                    "example.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(app_port),
                ],
                env=_app_env(endpoint, broker),
                cwd=REPO,
            )
            app.wait_http_ready(f"{base}/health/live", timeout=60)

            _say("sending traffic")
            for i in range(args.requests):
                _request("GET", f"{base}/items/{1 + i % 3}")
            _request("GET", f"{base}/items/42")
            _request("GET", f"{base}/boom")
            if with_celery:
                _request("POST", f"{base}/orders/7")
            time.sleep(4)  # one metric export interval, so the histogram shows up live

            _say("stopping the app and worker with SIGTERM: the last telemetry is flushed on the way out")
            for name in ("app", "worker"):
                proc = next((p for p in procs.processes if p.name == name), None)
                if proc is not None and proc.popen is not None:
                    proc.signal(signal.SIGTERM)
                    proc.popen.wait(timeout=20)
            time.sleep(1)
    except KeyboardInterrupt:
        return 130
    finally:
        if tail.poll() is None:
            os.killpg(tail.pid, signal.SIGINT)
            try:
                tail.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(tail.pid, signal.SIGKILL)
    _say(
        "done: above are the spans (one per request, named by route), log records (with trace ids and extra="
        " fields) and metric points the app sent. Next: `otelkit render-collector` for a real pipeline."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
