"""local: otelkit's own subprocesses — Go builds and their cache, the local stack, process helpers.

:mod:`otelkit.local.gobuild` compiles and caches the collector, Jaeger and Loki;
:mod:`otelkit.local.stack` runs the observability stack as local processes (``otelkit stack``);
:mod:`otelkit.local.procs` starts, waits for and stops processes (also used by the tests). It may
import ``otelkit.errors``, the ``otelkit`` package itself, ``otelkit.ops`` (to render the configs it
runs) and other ``otelkit.local`` modules; never ``otelkit.cli`` nor the in-process runtime
(``otelkit._runtime``, ``otelkit._launcher``). It raises :class:`~otelkit.errors.OtelkitError`
subclasses and never prints: progress goes to a callback (tests/unit/test_layering.py enforces the
imports).
"""
