"""In-process: what one log record costs under otelkit, step by step (CPU of the thread that logs).

    python -m bench.log_bench [--records 20000] [--repeat 5] [--only total|steps]
    python -m bench.log_bench --instructions [--records 2048]

wrk figures move ±15 % on a shared VM; this one does not: it counts the CPU time of the thread
that logs (``time.thread_time()``), so other processes do not count, and for the export thread
its own CPU clock. Two records are measured, the two a request writes in the default deployment:
the app's ``log.info("read item", extra={"item_id": i})`` and uvicorn's access record, both in a
request's context (a recording SDK server span and a request id), console output to a file.

``total`` runs each in two fresh processes — ``bare`` (uvicorn's logging config, no otelkit) and
``otelkit`` (set up by ``otelkit._runtime.bootstrap.initialize()``, exactly what ``otelkit-instrument`` runs
before the app) — and prints µs per record, plus the export thread's µs per record (encoding and
posting to an in-process OTLP receiver that counts every record). ``steps`` breaks otelkit's path
into its parts (the stdlib call, the record factory, the handlers' filters, the OTel handler's
translation, the SDK logger and batch processor, the console line, the encoder), each timed on
its own over the same records. Both processes apply otelkit's GC tuning, so the difference is
the logging alone.

``--instructions`` counts instead of timing (valgrind's callgrind; runs agree within ~1.5 % however
busy the machine, see :mod:`bench.instructions`): each record, ``bare``, ``otelkit``
and ``otelkit`` without its console line (``OTELKIT_LOG_CONSOLE=off``), is logged ``--records``
times in a fresh process under callgrind, and once more 0 times; the difference over the records is
the instructions a record costs, every thread counted (the export thread's encoding and posting
included; the OTLP receiver runs in a process of its own and must receive every record exported).
Needs ``apt-get install valgrind``; ~4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

ACCESS_ARGS = ("127.0.0.1:51234", "GET", "/items/1", "1.1", 200)
ACCESS_MSG = '%s - "%s %s HTTP/%s" %d'


def _per_record(fn: Callable[[int], object], records: int, repeat: int, burst: int = 100) -> float:
    """Best of ``repeat`` runs of ``fn(i)`` for ``records`` records, in µs of this thread's CPU per record.

    Records go in bursts with a short sleep between (not counted: thread CPU time), so the batch
    processor's export thread keeps up and nothing is dropped, as in a server at a few thousand
    records per second.
    """
    best = float("inf")
    for _ in range(repeat):
        used = 0.0
        for start in range(0, records, burst):
            t0 = time.thread_time()
            for i in range(start, min(start + burst, records)):
                fn(i)
            used += time.thread_time() - t0
            time.sleep(0.002)
        best = min(best, used)
    return best / records * 1e6


def _thread_cpu(name_prefix: str) -> float:
    for thread in threading.enumerate():
        if thread.name.startswith(name_prefix) and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


def _setup(mode: str, endpoint: str, overrides: dict[str, str] | None = None) -> None:
    if mode == "otelkit":
        os.environ.update(
            {
                "OTEL_PYTHON_DISTRO": "otelkit",
                "OTEL_PYTHON_CONFIGURATOR": "otelkit",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_SERVICE_NAME": "bench-app",
                "OTEL_TRACES_SAMPLER": "parentbased_always_on",
                **(overrides or {}),
            }
        )
        from otelkit._runtime import bootstrap

        bootstrap.initialize()  # what otelkit-instrument's sitecustomize runs; includes the GC tuning
    else:
        from otelkit._runtime.gctune import tune_gc

        tune_gc()
    # What uvicorn does at start: its logging config (access logger, handler, formatter).
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(LOGGING_CONFIG)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    logging.getLogger("bench.app").setLevel(logging.INFO)


def _request_context() -> Any:
    """A request's context: a recording server span (otelkit's tracer) and the request id, attached."""
    from opentelemetry import context, trace

    from otelkit.context import request_context

    span = trace.get_tracer("otelkit.asgi").start_span("GET /items/{item_id}", kind=trace.SpanKind.SERVER)
    return context.attach(request_context(span, "4bf92f3577b34da6"))


def _total(mode: str, records: int, repeat: int) -> dict[str, float]:
    from otelkit.testing import OTLPReceiver

    with OTLPReceiver(keep=False) as receiver, tempfile.TemporaryFile("w") as console:
        sys.stderr = sys.stdout = console  # the console handlers write to a file, as in bench.run
        _setup(mode, receiver.endpoint)
        import logging

        app, access = logging.getLogger("bench.app"), logging.getLogger("uvicorn.access")
        _request_context()
        time.sleep(1.5)  # otelkit builds its exporters 1 s after set-up, on a thread of their own
        export0 = _thread_cpu("OtelBatchLogRecordProcessor")
        result = {
            "app": _per_record(lambda i: app.info("read item", extra={"item_id": i}), records, repeat),
            "access": _per_record(lambda i: access.info(ACCESS_MSG, *ACCESS_ARGS), records, repeat),
        }
        if mode == "otelkit":
            from opentelemetry import _logs

            _logs.get_logger_provider().force_flush()  # type: ignore[attr-defined]
            emitted = 2 * records * repeat
            result["export_thread"] = (_thread_cpu("OtelBatchLogRecordProcessor") - export0) / emitted * 1e6
            result["received"] = receiver.items["logs"] / emitted
        sys.stderr, sys.stdout = sys.__stderr__, sys.__stdout__
    return result


def _steps(records: int, repeat: int) -> list[tuple[str, float]]:
    """otelkit's per-record path taken apart, and the SDK's path it replaces; each step timed alone."""
    from otelkit.testing import OTLPReceiver

    out: list[tuple[str, float]] = []
    with OTLPReceiver(keep=False) as receiver, tempfile.TemporaryFile("w") as console:
        sys.stderr = sys.stdout = console
        _setup("otelkit", receiver.endpoint)
        _request_context()
        time.sleep(1.5)  # the exporters are built 1 s after set-up, on a thread that would compete
        import copy

        from opentelemetry._logs import get_logger
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider, ReadWriteLogRecord

        from otelkit._runtime.logs import handler as loghandler
        from otelkit._runtime.sdk_compat import _log_probe as checks

        app = logging.getLogger("bench.app")
        root = logging.getLogger()
        otel = loghandler.otel_handler()
        assert otel is not None
        console_handler = next(h for h in root.handlers if h is not otel)
        base = app.makeRecord(app.name, logging.INFO, __file__, 1, "read item", (), None, extra={"item_id": 1})

        def timed(label: str, fn: Callable[[Any], object]) -> None:
            # Fresh copies for every run: nothing cached on a record carries over from another step.
            best = float("inf")
            for _ in range(repeat):
                made = [copy.copy(base) for _ in range(records)]
                best = min(best, _per_record(functools.partial(_apply, fn, made), records, 1))
            out.append((label, best))

        saved = root.handlers[:]
        root.handlers.clear()
        timed(
            "stdlib: logger.info(extra=) with no handler (bare FastAPI's app record)",
            lambda r: app.info("read item", extra={"item_id": 1}),
        )
        root.handlers[:] = saved
        factory = logging.getLogRecordFactory()
        args = (app.name, 20, __file__, 1, "read item", (), None)
        timed(
            f"stdlib: makeRecord, record factory now ({getattr(factory, '__qualname__', factory)})",
            lambda r: app.makeRecord(*args, extra={"item_id": 1}),
        )
        provider = otel._logger_provider  # type: ignore[attr-defined]
        # The SDK's path (instrumentation-logging's own emit), the one otelkit's replaces.
        timed("SDK path: LoggingHandler.emit, whole", lambda r: LoggingHandler.emit(otel, r))  # type: ignore[arg-type]
        timed("SDK path:   _translate (API LogRecord: attributes, context, body)", lambda r: otel._translate(r))  # type: ignore[attr-defined]
        timed(
            "SDK path:   get_logger(record.name), per record",
            lambda r: get_logger("bench.app", logger_provider=provider),
        )
        sdk_logger = LoggerProvider(resource=provider.resource, shutdown_on_exit=False).get_logger("bench.app")
        api_record = otel._translate(base)  # type: ignore[attr-defined]
        timed(
            "SDK path:   Logger.emit without processors (ReadWriteLogRecord, attribute cleaning)",
            lambda r: sdk_logger.emit(copy.copy(api_record)),
        )
        timed("  (the copy.copy that step needs, to subtract)", lambda r: copy.copy(api_record))
        queue_provider = LoggerProvider(resource=provider.resource, shutdown_on_exit=False)
        checks.queue_of(queue_provider)  # a batch processor whose queue is a list: no thread, no export
        processor = queue_provider._multi_log_record_processor._log_record_processors[0]  # type: ignore[attr-defined]
        rw = ReadWriteLogRecord(otel._translate(base), resource=provider.resource)  # type: ignore[attr-defined]
        timed("SDK path:   BatchLogRecordProcessor.on_emit (copy, ReadableLogRecord)", lambda r: processor.on_emit(rw))
        # otelkit's path.
        timed("otelkit: OTel handler filters (request id; the record's facts read here)", lambda r: otel.filter(r))
        emit = otel.emit
        timed(f"otelkit: OTel handler emit, whole ({type(emit).__name__})", lambda r: emit(r))
        if isinstance(emit, _logrecord_fast_emit()):
            fast: Any = emit
            logger = fast._plans["bench.app"].logger
            timed("otelkit:   FastEmit.build (the ReadableLogRecord, once)", lambda r: fast.build(r, logger))
        formatter = console_handler.formatter
        assert formatter is not None
        timed("otelkit: console format() (the JSON line)", lambda r: formatter.format(r))
        timed("otelkit: console handle(), whole (lock, format, write, flush)", lambda r: console_handler.handle(r))
        sys.stderr, sys.stdout = sys.__stderr__, sys.__stdout__
        translated = [otel._translate(copy.copy(base)) for _ in range(512)]  # type: ignore[attr-defined]
        scope = sdk_logger.instrumentation_scope  # type: ignore[attr-defined]

    from opentelemetry.sdk._logs import ReadableLogRecord

    from otelkit._runtime.otlp.encode import encode_logs
    from otelkit._runtime.redact import redact_attributes

    batch = [
        ReadableLogRecord(log_record=t, resource=provider.resource, instrumentation_scope=scope) for t in translated
    ]
    best = min(_cpu(lambda: encode_logs(batch, redact_attributes)) for _ in range(repeat * 4))  # type: ignore[arg-type]
    out.append(("export thread: encode_logs with redaction (per record, batch of 512)", best / len(batch) * 1e6))
    return out


def _logrecord_fast_emit() -> type:
    from otelkit._runtime.sdk_compat import FastEmit

    return FastEmit


def _apply(fn: Callable[[Any], object], made: list[Any], i: int) -> object:
    return fn(made[i])


def _cpu(fn: Callable[[], object]) -> float:
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


BATCH = 512  # the log batch processor's default batch: counted records fill whole batches
WARMUP = 300  # records logged before the counted ones
INSTRUCTION_CASES = (  # (label, mode, OTELKIT_LOG_CONSOLE)
    ("bare", "bare", None),
    ("otelkit", "otelkit", None),
    ("otelkit, console off", "otelkit", "off"),
)


def _log_records(which: str, records: int) -> None:
    """Under callgrind: set up as :func:`_total` does, warm up, then log ``records`` records, exported."""
    with tempfile.TemporaryFile("w") as console:
        sys.stderr = sys.stdout = console  # a traceback still reaches the parent: restored in finally
        try:
            _log_records_quietly(which, records)
        finally:
            sys.stderr, sys.stdout = sys.__stderr__, sys.__stdout__


def _log_records_quietly(which: str, records: int) -> None:
    mode, _, rest = which.partition(":")
    record, _, console_style = rest.partition(":")
    if console_style:
        os.environ["OTELKIT_LOG_CONSOLE"] = console_style
    # Every export a full batch, as in a loaded server (callgrind runs ~50x slower).
    os.environ["OTEL_BLRP_SCHEDULE_DELAY"] = os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "3600000"
    _setup(mode, os.environ["BENCH_OTLP_ENDPOINT"])
    log = logging.getLogger("bench.app" if record == "app" else "uvicorn.access")

    def one(i: int) -> None:
        if record == "app":
            log.info("read item", extra={"item_id": i})
        else:
            log.info(ACCESS_MSG, *ACCESS_ARGS)

    _request_context()
    time.sleep(1.5)  # otelkit builds its exporters 1 s after set-up
    flush: Callable[[], object] = lambda: None  # noqa: E731
    if mode == "otelkit":
        from opentelemetry import _logs

        flush = _logs.get_logger_provider().force_flush  # type: ignore[attr-defined]
    for i in range(WARMUP):  # every cache and code path warm
        one(i)
    flush()
    for i in range(records):
        one(i)
    flush()


def _instructions(which: str, records: int, endpoint: str) -> int:
    """All threads' instructions of a process logging ``records`` records (``which``: mode:record[:console])."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "bench.log_bench"]
    cmd += ["--count-child", which, "--records", str(records)]
    env = {**os.environ, "BENCH_OTLP_ENDPOINT": endpoint}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"error: {which} under callgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def _count_instructions(records: int) -> None:
    from bench._procs import Receiver

    if shutil.which("valgrind") is None:
        raise SystemExit("error: valgrind not found; apt-get install valgrind")
    receiver = Receiver()
    try:
        jobs = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for label, mode, console in INSTRUCTION_CASES:
                for record in ("app", "access"):
                    which = f"{mode}:{record}" + (f":{console}" if console else "")
                    for n in (0, records):
                        jobs[(label, record, n)] = pool.submit(_instructions, which, n, receiver.endpoint)
        per = {
            (label, record): (jobs[(label, record, records)].result() - jobs[(label, record, 0)].result()) / records
            for label, _, _ in INSTRUCTION_CASES
            for record in ("app", "access")
        }
        # Every otelkit run exported its warm-up and its counted records: a dropped record would
        # make its count low.
        otelkit_runs = sum(mode == "otelkit" for _, mode, _ in INSTRUCTION_CASES) * 2
        sent = otelkit_runs * (2 * WARMUP + records)
        received = receiver.counts()["items"]["logs"]
    finally:
        receiver.close()
    if received != sent:
        raise SystemExit(f"error: the receiver got {received} log records of {sent} sent: the counts are not valid")
    labels = [label for label, _, _ in INSTRUCTION_CASES]
    print(f"instructions per record (callgrind, every thread; {records} records against none; {received} received)")
    print("  record  " + "".join(f"{label:>22}" for label in labels))
    for record in ("app", "access"):
        print(f"  {record:7} " + "".join(f"{per[(label, record)]:>22,.0f}" for label in labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, help="records per run (default 20000; with --instructions 2048)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("total", "steps"))
    parser.add_argument("--instructions", action="store_true", help="count instructions per record (callgrind)")
    parser.add_argument("--child", choices=("bare", "otelkit"), help=argparse.SUPPRESS)
    parser.add_argument("--count-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.records is None:
        args.records = 4 * BATCH if args.instructions or args.count_child else 20000
    if args.count_child:
        _log_records(args.count_child, args.records)
        return
    if args.instructions:
        _count_instructions(args.records)
        return
    if args.child:
        print(json.dumps(_total(args.child, args.records, args.repeat)))
        return
    if args.only in (None, "total"):
        rows = {}
        for mode in ("bare", "otelkit"):
            cmd = [sys.executable, "-m", "bench.log_bench", "--child", mode, "--records", str(args.records)]
            cmd += ["--repeat", str(args.repeat)]
            rows[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"µs of the logging thread's CPU per record, best of {args.repeat} × {args.records} records")
        for what in ("app", "access"):
            bare, kit = rows["bare"][what], rows["otelkit"][what]
            print(f"  {what:7} bare {bare:6.1f}   otelkit {kit:6.1f}   otelkit adds {kit - bare:6.1f}")
        print(
            f"  export thread under otelkit: {rows['otelkit']['export_thread']:.1f} µs per record;"
            f" received {rows['otelkit']['received']:.3f} of the records emitted"
        )
    if args.only in (None, "steps"):
        print(f"otelkit's path in steps (µs per record, best of {args.repeat} × {args.records}):")
        for label, micros in _steps(args.records, args.repeat):
            print(f"  {micros:6.2f}  {label}")


if __name__ == "__main__":
    main()
