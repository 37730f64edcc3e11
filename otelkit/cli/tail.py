"""``otelkit tail``: an embedded OTLP/HTTP receiver that prints what arrives, live.

The no-Docker way to see an app's telemetry: run ``otelkit tail``, start the app with
``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``
(the SDK's default protocol is grpc, which this receiver does not speak) and every span, log
record and metric point is printed as one line (see :mod:`otelkit.cli._tailfmt`), or as one JSON
object per line with ``--json``. The banner and the final count go to stderr, records to stdout,
flushed line by line so ``| grep`` and ``| jq`` see them at once.

Requests are decoded on the receiver's threads and handed to the main thread through a backlog, so
printing, ``--max-items`` and Ctrl-C all happen in one place. Filtered-out signals are still
answered 200: an app must not log export errors because someone is only watching its traces.
Nothing is stored, so it can run for days. When stdout is not read (a paused pager, a stuck
terminal) the backlog holds at most :data:`MAX_BACKLOG` items: later ones are dropped, counted, and
the count is shown on stderr when printing resumes and in the final line; the app's exports keep
getting 200 at once.
"""

from __future__ import annotations

import collections
import difflib
import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Annotated

import typer

from otelkit.cli._tailfmt import format_record, record_to_json, use_color
from otelkit.errors import UsageError
from otelkit.testing import OTLPReceiver, ReceivedRecord

_SIGNALS = ("traces", "metrics", "logs")
_ALIASES = {"trace": "traces", "span": "traces", "spans": "traces", "metric": "metrics", "log": "logs"}

_EPILOG = """\
\b
Examples:
  otelkit tail
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \\
      opentelemetry-instrument uvicorn app:app   # in another terminal
  otelkit tail --signals traces,logs
  otelkit tail --json | jq 'select(.signal == "span") | .name'
  otelkit tail --port 0 --max-items 20 --exit-after 30
"""


def _parse_signals(value: str) -> tuple[str, ...]:
    wanted: list[str] = []
    for raw in value.split(","):
        name = raw.strip().lower()
        name = _ALIASES.get(name, name)
        if name not in _SIGNALS:
            close = difflib.get_close_matches(name, _SIGNALS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(
                f"unknown signal {raw.strip()!r} in --signals; expected a comma-separated list of: "
                f"{', '.join(_SIGNALS)}{hint}"
            )
        if name not in wanted:
            wanted.append(name)
    return tuple(wanted)


def _banner(receiver: OTLPReceiver, wanted: Sequence[str]) -> str:
    # An app cannot connect to a wildcard address: suggest loopback for it.
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(receiver.host)
    app_endpoint = f"http://{local}:{receiver.port}" if local else receiver.endpoint
    return (
        f"otelkit tail: listening for OTLP/HTTP on {receiver.endpoint} ({', '.join(wanted)}); Ctrl-C to stop\n"
        f"  point an app at it: OTEL_EXPORTER_OTLP_ENDPOINT={app_endpoint} OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    )


MAX_BACKLOG = 20_000
"""Items received but not printed yet, at most; more are dropped (and counted) until stdout drains."""


class _Backlog:
    """Batches waiting to be printed, bounded in items; what does not fit is counted as dropped."""

    def __init__(self, limit: int = MAX_BACKLOG) -> None:
        self.limit = limit
        self._batches: collections.deque[Sequence[ReceivedRecord]] = collections.deque()
        self._items = 0
        self._cond = threading.Condition()
        self.dropped = 0
        self._dropped_shown = 0

    def offer(self, records: Sequence[ReceivedRecord]) -> None:
        with self._cond:
            if self._items + len(records) > self.limit:
                self.dropped += len(records)
                return
            self._batches.append(records)
            self._items += len(records)
            self._cond.notify()

    def take(self, timeout: float) -> Sequence[ReceivedRecord] | None:
        with self._cond:
            if not self._batches and not self._cond.wait(timeout):
                return None
            if not self._batches:
                return None
            records = self._batches.popleft()
            self._items -= len(records)
            return records

    def newly_dropped(self) -> int:
        """Items dropped since the last call."""
        with self._cond:
            new, self._dropped_shown = self.dropped - self._dropped_shown, self.dropped
            return new


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def tail(
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, metavar="PORT", help="Port to listen on (0 picks a free one).")
    ] = 4318,
    signals: Annotated[
        str,
        typer.Option("--signals", metavar="LIST", help="Comma-separated signals to print: traces, metrics, logs."),
    ] = "traces,metrics,logs",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line instead of text.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Exit after printing the first request's items.")] = False,
    max_items: Annotated[
        int | None, typer.Option("--max-items", min=1, metavar="N", help="Exit after printing N items.")
    ] = None,
    exit_after: Annotated[
        float | None, typer.Option("--exit-after", min=0, metavar="SECONDS", help="Exit after this many seconds.")
    ] = None,
) -> None:
    """Receive OTLP/HTTP and print spans, log records and metric points as they arrive."""
    wanted = _parse_signals(signals)
    backlog = _Backlog()

    def on_batch(signal: str, records: Sequence[ReceivedRecord]) -> None:
        if signal in wanted:
            backlog.offer(records)

    receiver = OTLPReceiver(host, port, on_batch=on_batch, keep=False)
    try:
        receiver.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use; stop the other process or pass --port"
            ) from None
        reason = exc.strerror or str(exc)
        kind = "--host" if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL else "--port"
        raise UsageError(f"cannot listen on {host} port {port}: {reason}; pass another {kind}") from None

    color = not as_json and use_color(sys.stdout)
    deadline = None if exit_after is None else time.monotonic() + exit_after
    printed = 0
    try:
        print(_banner(receiver, wanted), file=sys.stderr, flush=True)
        while True:
            timeout = 0.25
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            records = backlog.take(timeout)
            if records is None:
                continue
            if dropped := backlog.newly_dropped():
                print(
                    f"otelkit tail: dropped {_plural(dropped, 'item')}: stdout was not read fast enough",
                    file=sys.stderr,
                    flush=True,
                )
            for record in records:
                line = record_to_json(record) if as_json else format_record(record, color=color)
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                printed += 1
                if max_items is not None and printed >= max_items:
                    break
            if once or (max_items is not None and printed >= max_items):
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        receiver.stop()
    items = receiver.items
    drops = f"; dropped {_plural(backlog.dropped, 'item')} (stdout was not read fast enough)" if backlog.dropped else ""
    print(
        f"otelkit tail: printed {_plural(printed, 'item')}; received {_plural(items['traces'], 'span')}, "
        f"{_plural(items['logs'], 'log record')}, {_plural(items['metrics'], 'metric point')}{drops}",
        file=sys.stderr,
        flush=True,
    )


def register(app: typer.Typer) -> None:
    """Mount ``otelkit tail`` on the CLI app."""
    app.command(
        "tail",
        help=(
            "Receive OTLP/HTTP and print spans, log records and metric points as they arrive.\n\n"
            "An embedded receiver (no collector, no Docker): point an app at it with "
            "OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf."
        ),
        epilog=_EPILOG,
    )(tail)
