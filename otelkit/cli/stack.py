"""``otelkit stack up`` / ``otelkit stack down``: the observability stack as local processes, no Docker.

``up`` runs in the foreground: it builds missing binaries, starts Loki, Jaeger, Prometheus and the
collector on 127.0.0.1 (and the example app with a Celery worker unless ``--no-app``), prints where
to query each signal, then waits; Ctrl-C or SIGTERM stops everything it started. ``down`` stops a
stack that ``up`` runs in another terminal, through the pid file in its work dir. Progress goes to
stderr, the table to stdout. See :mod:`otelkit.local.stack`.
"""

from __future__ import annotations

import signal
import sys
import time
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from otelkit.local.stack import PID_FILE, LocalStack, StackPorts, default_workdir, stop_running, where_table


class Ports(str, Enum):
    DEFAULT = "default"
    FREE = "free"


Workdir = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        metavar="DIR",
        file_okay=False,
        help="Logs, rendered configs, data and the pid file. [default: <otelkit cache>/stack]",
    ),
]

stack_app = typer.Typer(
    name="stack",
    help="Run the collector, Prometheus, Loki and Jaeger as local processes on 127.0.0.1 (no Docker).",
    no_args_is_help=True,
)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@stack_app.command("up")
def up(
    ports: Annotated[
        Ports,
        typer.Option(
            "--ports",
            help="default: the docker-compose ports (4317/4318, 9090, 3100, 16686, app 8000…); free: any free ports.",
        ),
    ] = Ports.DEFAULT,
    no_app: Annotated[
        bool, typer.Option("--no-app", help="Only the backends and the collector, no example app.")
    ] = False,
    workdir: Workdir = None,
) -> None:
    """Start the stack in the foreground, print where to query each signal; Ctrl-C stops everything."""
    stack = LocalStack(
        workdir or default_workdir(),
        ports=StackPorts.free() if ports is Ports.FREE else StackPorts(),
        app=not no_app,
        progress=_progress,
    )
    # SIGTERM (e.g. from `otelkit stack down`) takes the same path as Ctrl-C: stop everything.
    # SIGINT explicitly too: started in the background by a shell, it is ignored by default.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start()
        print("\n".join(["", "where to look:", *where_table(stack), ""]))
        print(f"stack ready (logs and configs in {stack.workdir}); Ctrl-C or `otelkit stack down` stops it", flush=True)
        while True:
            time.sleep(0.5)
            stack.check_running()
    except KeyboardInterrupt:
        _progress("interrupted")
    finally:
        try:
            stack.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    _progress("stopped everything the stack started")


@stack_app.command("down")
def down(workdir: Workdir = None) -> None:
    """Stop a stack that `otelkit stack up` runs in another terminal."""
    where = workdir or default_workdir()
    if not stop_running(where, progress=_progress):
        _progress(f"no stack is running from {where} (no {PID_FILE} there); nothing to stop")
        return
    _progress("stack stopped")


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app)
