"""In-process: what one request costs the thread that serves it, bare FastAPI against otelkit, part by part.

    python -m bench.request_bench [--requests 10000] [--repeat 5]
                                  [--env KEY=VALUE ...] [--without PART ...]

``bench.run`` measures what the targets are stated in (req/s of a real server under wrk) and moves
by a few % from one minute to the next; this one drives ``bench.app``'s ASGI callable directly, as
uvicorn calls it (the same scope, the default-deployment workload: one app record with ``extra=``
per request), then writes uvicorn's access record, and counts the CPU time of that one thread
(``time.thread_time()``): what the request's own thread pays, best of ``--repeat`` runs, repeatable
to ~2 µs. Requests go in bursts of :data:`BURST` with a 2 ms sleep between (not counted), as a
server at a few thousand requests a second idles between them: run flat out, the serving thread
would hold the GIL so long that the export threads fall behind and the batch queues drop. Not in
it: sockets, h11, the event loop's I/O, and the export threads (encoding and posting run on
threads of their own; ``bench.run`` and ``bench.instructions`` count those).

Each row runs in a fresh process: ``bare`` (uvicorn's logging config and otelkit's GC tuning, as
``bench.run``'s bare-gc), ``otelkit`` (set up by ``otelkit._runtime.bootstrap.initialize()``,
what ``otelkit-instrument`` runs before the app; all three signals exported at 100 % to an
OTLP receiver in a process of its own that must receive every span and record), and one more row
of otelkit for each part taken away:

- ``--env KEY=VALUE``: an ``OTEL_*``/``OTELKIT_*`` setting, e.g. ``OTEL_LOGS_EXPORTER=none``,
  ``OTELKIT_LOG_CONSOLE=off``, ``OTEL_TRACES_SAMPLER=always_off`` (several in one row: separate
  them with ``;``);
- ``--without otel-handler``: the OTel log handler taken off every logger; ``otel-emit``: its emit
  made a no-op (its filters and the logging module's dispatch stay); ``middleware``: FastAPI's
  ``__call__`` unwrapped (no server span, HTTP metrics, request id or context; FastAPI's own
  telemetry told to stand aside, as otelkit does).

A part's cost is its row's difference from ``otelkit``'s. ~10 s a row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from typing import Any

from bench.log_bench import ACCESS_ARGS, ACCESS_MSG, _setup

WITHOUT = ("otel-handler", "otel-emit", "middleware")
WARMUP = 2000
BURST = 20


def _scope() -> dict[str, Any]:
    """The scope uvicorn (h11) passes for ``GET /items/1`` from wrk."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 51234),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/items/1",
        "raw_path": b"/items/1",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk/4.2.0")],
        "state": {},
    }


def _take_away(part: str) -> None:
    from otelkit._runtime.logs import console

    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if not console.is_otel_handler(handler):
                continue
            if part == "otel-handler":
                logger.removeHandler(handler)
            elif part == "otel-emit":
                handler.emit = lambda record: None  # type: ignore[method-assign]
    if part == "middleware":
        from otelkit._runtime.http import asgi

        asgi.uninstrument_fastapi()


def _child(mode: str, requests: int, repeat: int, without: str) -> dict[str, Any]:
    from bench._procs import Receiver

    os.environ["BENCH_LOG_PER_REQUEST"] = "1"
    receiver = Receiver()
    with contextlib.closing(receiver), tempfile.TemporaryFile("w") as console:
        sys.stderr = sys.stdout = console  # the console lines go to a file, as in bench.run
        row_env = os.environ.get("BENCH_ROW_ENV", "")
        _setup(mode, receiver.endpoint, dict(pair.partition("=")[::2] for pair in row_env.split(";") if pair))
        if without:
            _take_away(without)
        from bench.app import app

        access = logging.getLogger("uvicorn.access")
        unwrapped = without == "middleware"

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            return None

        async def one() -> None:
            scope = _scope()
            if unwrapped:
                scope["fastapi.telemetry"] = None
            await app(scope, receive, send)
            access.info(ACCESS_MSG, *ACCESS_ARGS)

        async def burst(size: int) -> float:
            t0 = time.thread_time()
            for _ in range(size):
                await one()
            used = time.thread_time() - t0
            time.sleep(0.002)  # the export threads' turn, as between a server's bursts of requests
            return used

        async def run() -> float:
            for _ in range(0, WARMUP, BURST):
                await burst(BURST)
            best = float("inf")
            for _ in range(repeat):
                used = 0.0
                for start in range(0, requests, BURST):
                    used += await burst(min(BURST, requests - start))
                best = min(best, used)
            return best / requests * 1e6

        time.sleep(1.5)  # otelkit builds its exporters 1 s after set-up, on a thread of their own
        result: dict[str, Any] = {"us": asyncio.run(run())}
        if mode == "otelkit" and not without and not row_env:
            from opentelemetry import _logs, trace

            trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
            _logs.get_logger_provider().force_flush()  # type: ignore[attr-defined]
            made = WARMUP + requests * repeat
            items = receiver.counts()["items"]
            result["received"] = {"spans": items.get("traces", 0) / made, "logs": items.get("logs", 0) / (2 * made)}
        sys.stderr, sys.stdout = sys.__stderr__, sys.__stdout__
    return result


def _row(mode: str, args: argparse.Namespace, env: str = "", without: str = "") -> dict[str, Any]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_", "BENCH_"))}
    if env:  # applied by the child over the settings it starts from
        child_env["BENCH_ROW_ENV"] = env
    cmd = [sys.executable, "-m", "bench.request_bench", "--child", mode, "--requests", str(args.requests)]
    cmd += ["--repeat", str(args.repeat), "--without-one", without]
    out = subprocess.run(cmd, env=child_env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"error: the {mode} row failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.request_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE[;KEY=VALUE]")
    parser.add_argument("--without", action="append", default=[], choices=WITHOUT)
    parser.add_argument("--child", choices=("bare", "otelkit"), help=argparse.SUPPRESS)
    parser.add_argument("--without-one", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for spec in args.env:
        for pair in filter(None, spec.split(";")):
            if "=" not in pair or not pair.startswith(("OTEL_", "OTELKIT_")):
                parser.error(f"--env {pair!r}: expected KEY=VALUE with an OTEL_* or OTELKIT_* key")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.requests, args.repeat, args.without_one)))
        return
    rows = [("bare", _row("bare", args)), ("otelkit", _row("otelkit", args))]
    rows += [(f"otelkit, {env}", _row("otelkit", args, env=env)) for env in args.env]
    rows += [(f"otelkit without {part}", _row("otelkit", args, without=part)) for part in args.without]
    bare, otelkit = rows[0][1]["us"], rows[1][1]["us"]
    print(f"µs of the request's thread a request, best of {args.repeat} × {args.requests}")
    for name, row in rows:
        line = f"  {name:<48} {row['us']:7.1f}   vs bare {row['us'] - bare:+6.1f}"
        if name != "bare" and name != "otelkit":
            line += f"   vs otelkit {row['us'] - otelkit:+6.1f}"
        print(line)
    received = rows[1][1]["received"]
    print(f"  received: {received['spans']:.3f} of the spans, {received['logs']:.3f} of the log records")
    if received["spans"] != 1 or received["logs"] != 1:
        raise SystemExit("error: the receiver did not get every span and log record otelkit's row emitted")


if __name__ == "__main__":
    main()
