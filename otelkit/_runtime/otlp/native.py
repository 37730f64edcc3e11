"""The compiled build's C encoder (``cencoder.c``): found, and handed the Python encoder's tables.

A build with ``OTELKIT_COMPILE=1`` (setup.py) also builds ``otelkit._runtime.otlp.cencoder`` from
``cencoder.c``: the common span (no events, links, trace state or status description) and log
record written straight to protobuf in C, ~0.2-0.5 µs an item against the Python encoder's 2-3 µs.
:mod:`otelkit._runtime.otlp.encode` stays the reference and the fallback: for the same input the C
functions return exactly its bytes, or None, and then the Python encoder does the item (the unit
tests compare the two on hostile input). Where the module is not built, :func:`load` gives None for
both and only the Python encoder runs.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from otelkit._runtime import sdk_compat
from otelkit._runtime.otlp.protowire import AttributeFilter

__all__ = ["MODULE", "NativeLogRecord", "NativeSpan", "configure", "load"]

MODULE = "otelkit._runtime.otlp.cencoder"
"""The C encoder's module: built by ``OTELKIT_COMPILE=1`` (listed in ``otelkit._runtime.compiled.NATIVE``)."""

NativeSpan = Callable[[sdk_compat.SpanFields, "AttributeFilter | None"], "bytes | None"]
"""``span(fields, attribute_filter)``: a span as the field 2 of its ScopeSpans, or None (the Python encoder's)."""

NativeLogRecord = Callable[..., "bytes | None"]
"""``log_record(...)`` of ``encode_log_record``'s thirteen arguments: the field 2 of a ScopeLogs, or None."""


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


def load(
    configure_it: Callable[[Any], tuple[NativeSpan, NativeLogRecord]],
) -> tuple[NativeSpan | None, NativeLogRecord | None]:
    """The C encoder's two functions, configured by ``configure_it``; (None, None) where it is not built.

    Never raises: a module that fails to configure is logged and left unused.
    """
    try:
        module = importlib.import_module(MODULE)
    except ImportError:
        return None, None
    try:
        return configure_it(module)
    except Exception as error:
        logging.getLogger(__name__).warning("otelkit: the C encoder is not used (%s: %s)", type(error).__name__, error)
        return None, None
