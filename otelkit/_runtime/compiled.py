"""The modules a compiled build of otelkit compiles, the C modules every build makes where it can, which run.

otelkit is Python, with one C module built where a C compiler is there (:data:`NATIVE`, the OTLP
encoder's common case; ``OTELKIT_COMPILE=0`` builds none); a build with ``OTELKIT_COMPILE=1``
(``setup.py``) also compiles the modules in :data:`MODULES` with mypyc, the compiler mypy ships,
into C extensions installed next to their sources. Python imports an extension module before a
source file of the same name, and one built for another Python version or platform is not seen at
all, so the sources are the fallback everywhere. The modules are the ones a request and its log
records run through (the log records' facts, console line and OTLP encoding, the ASGI middleware,
redaction): compiled, they run ~90,000 fewer instructions a request (bench/README.md).

A class defined in a compiled module must derive from nothing but ``object`` (or be a
``Protocol``): mypyc compiles a subclass of an interpreted class (a ``logging.Handler``, a
propagator's ``Getter``) with a deallocator that does not clear the instance's weak references
(mypyc/mypyc#1102), so ``logging``'s own registry of handlers, a ``WeakSet``, ends up holding a
freed object, and the process crashes in its next garbage collection — found with
``logs/console.py`` compiled; the unit tests hold every listed module to the rule. A class of
mypyc's own (a native class) refuses weak references instead (``TypeError``).

Compiled code checks its annotations when it runs: a value of another type than annotated raises
``TypeError`` where the source would have carried on. So in these modules, a value that comes from
the user's code (a log record's fields, ``extra=`` values, header values) is annotated as what it
can really be (``Any``, ``X | None``), and the unit tests run against both builds
(``scripts/compiled.sh``).

This module imports only the standard library: ``setup.py`` reads :data:`MODULES` and :data:`NATIVE`
from it before otelkit is installed.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

__all__ = ["MODULES", "NATIVE", "compiled_modules"]

MODULES: tuple[str, ...] = (
    "otelkit._runtime.http.asgi",
    "otelkit._runtime.logs.facts",
    "otelkit._runtime.logs.line",
    "otelkit._runtime.otlp.emitted",
    "otelkit._runtime.otlp.encode",
    "otelkit._runtime.otlp.groups",
    "otelkit._runtime.otlp.protowire",
    "otelkit._runtime.redact",
    "otelkit._runtime.sdk_compat._log_emit",
)
"""Dotted names of the modules ``OTELKIT_COMPILE=1`` compiles."""

NATIVE: tuple[str, ...] = ("otelkit._runtime.otlp.cencoder",)
"""Dotted names of the C modules built from ``<name>.c`` (no Python source): by default where a C
compiler is there, always with ``OTELKIT_COMPILE=1``, never with ``0``.

``otlp/cencoder.c`` encodes the common span and log record ~5-10× faster than the Python encoder,
which stays the reference and the fallback (``otlp/native.py``, ``otlp/encode.py``): it returns the
same bytes, or leaves the item to the Python encoder.
"""


def compiled_modules() -> dict[str, bool]:
    """Each of :data:`MODULES` → whether this process runs it compiled; each of :data:`NATIVE` → whether in use."""
    out: dict[str, bool] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        out[name] = str(getattr(module, "__file__", "") or "").endswith(tuple(EXTENSION_SUFFIXES))
    importlib.import_module("otelkit._runtime.otlp.encode")  # loads the C encoder, when there is one
    native = importlib.import_module("otelkit._runtime.otlp.native")
    for name in NATIVE:
        out[name] = bool(native.in_use())
    return out
