"""otelkit's C encoder (``cencoder.c``): found, checked against its source, and given the Python encoder's tables.

otelkit's build (setup.py) also builds ``otelkit._runtime.otlp.cencoder`` from ``cencoder.c`` where a
C compiler is there (``OTELKIT_COMPILE`` unset: optional; ``1``: required; ``0``: never): the
common span (no events, links, trace state or status description) and log record written straight
to protobuf in C, ~0.2-0.5 µs an item against the Python encoder's 2-3 µs; and two steps of a common
log record's path, its console JSON line (:mod:`otelkit._runtime.logs.console`) and its fields as
queued for export (``FastEmit.plain``, :mod:`otelkit._runtime.logs.fastemit`).
The encoder and the console line leave out redact.py's calls where its tables already say the text
or mapping stays as it is (:func:`otelkit._runtime.redact.native_tables`).
:mod:`otelkit._runtime.otlp.encode`, :mod:`otelkit._runtime.logs.line` and ``FastEmit.plain`` stay
the reference and the fallback: for the same input the C functions return exactly what they return,
or None, and then the Python code does the item (the unit tests compare the two on hostile input). Where the
module is not built, or was built from another ``cencoder.c`` than the one beside it (an in-place
build the source has moved on from), :func:`load` gives its ``unused`` value and only Python runs.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from otelkit._runtime import redact, sdk_compat
from otelkit._runtime.otlp.protowire import AttributeFilter

__all__ = ["MODULE", "NativeLogRecord", "NativeSpan", "configure", "in_use", "load"]

MODULE = "otelkit._runtime.otlp.cencoder"
"""The C encoder's module (listed in ``otelkit._runtime.compiled.NATIVE``)."""

NativeSpan = Callable[[sdk_compat.SpanFields, "AttributeFilter | None"], "bytes | None"]
"""``span(fields, attribute_filter)``: a span as the field 2 of its ScopeSpans, or None (the Python encoder's)."""

NativeLogRecord = Callable[..., "bytes | None"]
"""``log_record(...)`` of ``encode_log_record``'s thirteen arguments: the field 2 of a ScopeLogs, or None."""

_logger = logging.getLogger(__name__)
_in_use = [False]
_warned: set[str] = set()  # reasons already logged: each user of the module loads it once
T = TypeVar("T")


def configure(
    module: Any,
    *,
    kinds: tuple[tuple[Any, bytes], ...],
    status_fields: tuple[tuple[Any, bytes], ...],
    severities: tuple[tuple[Any, bytes], ...],
    empty_trace_state: Any,
    encode_attributes: Callable[..., None],
    encode_body: Callable[[Any], bytes],
) -> tuple[NativeSpan, NativeLogRecord]:
    """Give the C encoder ``module`` its tables (object → encoded field, by identity) and fallbacks."""
    module.configure(kinds, status_fields, severities, empty_trace_state, encode_attributes, encode_body)
    return module.span, module.log_record


def _stale(module: Any) -> str | None:
    """Why ``module`` must not be used: built from another source than the ``cencoder.c`` beside it."""
    source = Path(str(getattr(module, "__file__", "") or "")).with_name("cencoder.c")
    if not source.is_file():
        return None  # an installed wheel may ship the binary alone
    built_from = getattr(module, "SOURCE_SHA256", None)
    if built_from == hashlib.sha256(source.read_bytes()).hexdigest():
        return None
    return f"{module.__file__} was built from another {source.name} than {source}; rebuild it (pip install -e .)"


def load(configure_it: Callable[[Any], T], unused: T) -> T:
    """What ``configure_it(module)`` gives for the C module, once checked; ``unused`` where it is not used.

    Never raises: a module that is stale or fails to configure is logged and left unused.
    """
    try:
        module = importlib.import_module(MODULE)
    except ImportError:
        return unused
    try:
        reason = _stale(module)
        if reason is None:
            module.configure_redaction(*redact.native_tables())
            functions = configure_it(module)
            _in_use[0] = True
            return functions
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
    if reason not in _warned:
        _warned.add(reason)
        _logger.warning("otelkit: the C encoder is not used, the Python code does all (%s)", reason)
    return unused


def in_use() -> bool:
    """Whether this process encodes with the C encoder (:func:`load` found, checked and configured it)."""
    return _in_use[0]
