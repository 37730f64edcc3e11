"""Exporters forget their parent's connections in a forked child.

A Celery prefork worker's main process exports its own records over a keep-alive connection and
then forks children (a new one per task with ``--max-tasks-per-child 1``); gunicorn ``--preload``
and other pre-forking servers do the same. A child inherits the open socket: parent and child
then write their requests on one connection, the receiver reads a second request inside the
first one's body (400) or a request vanishes with its records. So after a fork
(``os.register_at_fork(after_in_child=…)``) every exporter otelkit created drops what it
inherited and connects anew on its first export:

- OTLP/HTTP over urllib3 (otelkit's transport for plain HTTP): a new ``PoolManager`` with the
  same settings replaces the inherited one;
- OTLP/HTTP over requests (HTTPS, proxies, credential-provider sessions, and every SDK before
  1.45): each adapter of the session gets a new pool manager, the session itself (its auth,
  headers) is kept;
- OTLP/gRPC: a new channel and stub.

Where the exporter keeps them is the SDK's business: :mod:`otelkit._runtime.sdk_compat` finds them.

The inherited pools are replaced, not closed: closing would take their locks, which a thread of
the parent may have held at the moment of the fork (the child would block forever), and the
sockets belong to the parent, which keeps using them. The child's references to them simply go;
closing a file descriptor in the child never affects the parent's connection.

The hook is registered when this module is imported, before otelkit builds its batch processors,
so it runs before their export threads restart in the child. It runs in the child only, once per
fork, never on the export path.

Before a fork, the forking thread also waits (at most :data:`IMPORT_WAIT` seconds) while another
thread is importing a module. A child inherits that module's import lock held by a thread it does
not have, and blocks for ever on its own first import of the module: found with a Celery prefork
worker whose child hung in requests' lazy ``import netrc``, which otelkit's export thread, posting
its first batch, was importing in the parent at that moment. Python's own hazard (any thread that
imports while another forks), made likely by otelkit's background threads; the wait reads
importlib's table of module locks, and does nothing where it is not there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from typing import Any

from otelkit._runtime import sdk_compat

__all__ = ["IMPORT_WAIT", "importing_elsewhere", "reset_connections", "track"]

IMPORT_WAIT = 2.0
"""Seconds a fork waits at most for another thread's import to finish."""

_log = logging.getLogger("otelkit")

_exporters: weakref.WeakSet[Any] = weakref.WeakSet()


def track(exporter: Any) -> Any:
    """Have ``exporter``'s connections replaced in every forked child; returns ``exporter``."""
    with contextlib.suppress(TypeError):  # not weak-referenceable: nothing of ours, nothing to do
        _exporters.add(exporter)
    return exporter


def reset_connections(exporter: Any) -> bool:
    """Give ``exporter`` fresh connections (pools, channel). Returns whether it had any to replace.

    Where an SDK exporter keeps them changed within the supported range (``fork-reset`` in
    :mod:`otelkit._runtime.sdk_compat`).
    """
    return sdk_compat.reset_exporter_connections(exporter)


def _after_fork_in_child() -> None:
    for exporter in list(_exporters):
        try:
            reset_connections(exporter)
        except Exception as exc:  # never raise in the child; its exports may fail, the app goes on
            _log.error("otelkit: reconnecting %s in the forked child failed: %s", type(exporter).__name__, exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def importing_elsewhere() -> bool:
    """Whether a thread other than this one holds a module's import lock (is importing it)."""
    bootstrap = sys.modules.get("importlib._bootstrap")
    locks = getattr(bootstrap, "_module_locks", None)
    if not isinstance(locks, dict):
        return False
    me = threading.get_ident()
    for ref in list(locks.values()):
        lock = ref() if callable(ref) else None
        owner = getattr(lock, "owner", None)
        if owner is not None and owner != me:
            return True
    return False


def _wait_for_imports() -> None:
    try:
        deadline = time.monotonic() + IMPORT_WAIT
        while importing_elsewhere() and time.monotonic() < deadline:
            time.sleep(0.001)  # the importing thread needs the GIL to finish
    except Exception:  # never fail a fork
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_wait_for_imports)
