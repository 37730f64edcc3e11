"""Outgoing calls: every contrib client instrumentation otelkit defers really instruments, and a
trace crosses from one service to the next (issue 18, item 8).

otelkit instruments a client library the moment the app first imports it. Contrib's instrumentation
modules import their libraries themselves (``opentelemetry.instrumentation.httpx`` imports ``httpx``
and ``httpx2``), which made the deferred set-up fail with a circular import and left httpx
uninstrumented. Each test runs real processes under the launchers and asserts on what a real OTLP
receiver got.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import LAUNCHERS, wait_until

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent

CLIENT_SCRIPT = """
import asyncio
import http.server
import os
import sys
import threading


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/hello"
which = sys.argv[1]
if which == "httpx":
    import httpx

    with httpx.Client(trust_env=False) as client:
        client.get(url)
elif which == "httpx-async":
    import httpx

    async def main():
        async with httpx.AsyncClient(trust_env=False) as client:
            await client.get(url)

    asyncio.run(main())
elif which == "requests":
    import requests

    session = requests.Session()
    session.trust_env = False
    session.get(url)
elif which == "aiohttp":
    import aiohttp

    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                await response.read()

    asyncio.run(main())
elif which == "redis":
    import redis

    redis.Redis.from_url(os.environ["E2E_REDIS"]).set("otelkit-e2e", "1")
"""

# The instrumentation scope each library's CLIENT span comes from.
SCOPES = {
    "httpx": "opentelemetry.instrumentation.httpx",
    "httpx-async": "opentelemetry.instrumentation.httpx",
    "requests": "opentelemetry.instrumentation.requests",
    "redis": "opentelemetry.instrumentation.redis",
}


def _env(rx: OTLPReceiver, service: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelkit",
        OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
        OTEL_SERVICE_NAME=service,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("library", sorted(SCOPES))
def test_clients_each_deferred_instrumentation_makes_a_client_span(
    library: str, launcher: str, tmp_path: Path, redis_server: str
) -> None:
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    with OTLPReceiver() as rx:
        done = subprocess.run(
            [str(BIN / launcher), str(BIN / "python"), str(script), library],
            # A short script: on a loaded machine building the exporters at exit can take seconds.
            env=_env(rx, "clients", E2E_REDIS=redis_server, OTELKIT_SHUTDOWN_TIMEOUT="30"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "failed" not in done.stderr, done.stderr

        def client_spans(r: OTLPReceiver) -> list[ReceivedSpan]:
            return [s for s in r.spans if s.kind == "CLIENT" and s.scope_name == SCOPES[library]]

        rx.wait_for(client_spans, timeout=10)
        spans = client_spans(rx)
        assert len(spans) == 1, f"{rx.summary()}\n{done.stderr}"
        if library != "redis":
            assert spans[0].attributes["http.request.method"] == "GET"


SERVICE_B = """
import logging

from fastapi import FastAPI, Request

from otelkit.health import Health

log = logging.getLogger("svc_b")
app = FastAPI()
app.include_router(Health().router())


@app.get("/pong")
def pong(request: Request) -> dict:
    log.info("pong served")
    return {"traceparent": request.headers.get("traceparent"), "baggage": request.headers.get("baggage")}
"""

SERVICE_A = """
import logging
import os

import httpx
import requests
from fastapi import FastAPI

from otelkit.health import Health

log = logging.getLogger("svc_a")
app = FastAPI()
app.include_router(Health().router())
B = os.environ["E2E_SERVICE_B"]


@app.get("/ping/httpx")
async def ping_httpx() -> dict:
    log.info("calling B")
    async with httpx.AsyncClient(trust_env=False) as client:
        return (await client.get(f"{B}/pong")).json()


@app.get("/ping/requests")
def ping_requests() -> dict:
    log.info("calling B")
    session = requests.Session()
    session.trust_env = False
    return session.get(f"{B}/pong").json()
"""


def _start(procs: _procs.ProcessGroup, name: str, launcher: str, env: dict[str, str], cwd: Path) -> str:
    port = _procs.free_port()
    argv = [str(BIN / launcher), str(BIN / "uvicorn"), f"{name}:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = procs.start(name, argv, env=env, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    proc.wait_http_ready(f"{base}/health/live", timeout=60)
    return base


def _one(spans: list[ReceivedSpan], **match: Any) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, f"{match}: {[(s.name, s.service_name, s.kind) for s in spans]}"
    return found[0]


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_clients_trace_and_request_id_cross_from_a_to_b(
    launcher: str, tmp_path: Path, procs: _procs.ProcessGroup
) -> None:
    (tmp_path / "svc_a.py").write_text(SERVICE_A)
    (tmp_path / "svc_b.py").write_text(SERVICE_B)
    with OTLPReceiver() as rx:
        b = _start(procs, "svc_b", launcher, _env(rx, "svc-b"), tmp_path)
        a = _start(procs, "svc_a", launcher, _env(rx, "svc-a", E2E_SERVICE_B=b), tmp_path)
        for via in ("httpx", "requests"):
            request_id = f"e2e-{via}-{launcher}"
            with httpx.Client(trust_env=False, timeout=30) as client:
                response = client.get(f"{a}/ping/{via}", headers={"X-Request-ID": request_id})
            assert response.status_code == 200, response.text

            def arrived(r: OTLPReceiver, request_id: str = request_id) -> bool:
                servers = [s for s in r.spans if s.kind == "SERVER" and s.attributes.get("request.id") == request_id]
                bodies = {x.body for x in r.logs if x.attributes.get("request.id") == request_id}
                return len(servers) == 2 and {"calling B", "pong served"} <= bodies

            wait_until(lambda arrived=arrived: arrived(rx), timeout=30, what=f"both services' spans and logs ({via})")
            server_a = _one(rx.spans, kind="SERVER", name=f"GET /ping/{via}")
            server_b = [s for s in rx.spans if s.name == "GET /pong" and s.attributes.get("request.id") == request_id]
            assert len(server_b) == 1, rx.summary()
            client = _one([s for s in rx.spans if s.trace_id == server_a.trace_id], kind="CLIENT", service_name="svc-a")
            assert client.parent_span_id == server_a.span_id
            assert server_b[0].parent_span_id == client.span_id  # one trace: A's CLIENT is B's parent
            assert server_b[0].trace_id == server_a.trace_id
            assert server_b[0].service_name == "svc-b"
            # The request id travelled in baggage and is on both sides' records.
            assert f"request.id={request_id}" in response.json()["baggage"]
            logs = {
                x.service_name: x
                for x in rx.logs
                if x.attributes.get("request.id") == request_id and x.body in ("calling B", "pong served")
            }
            assert logs["svc-a"].body == "calling B" and logs["svc-b"].body == "pong served"
            assert logs["svc-b"].trace_id == server_a.trace_id
