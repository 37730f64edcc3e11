"""The one place that touches OpenTelemetry SDK internals, and checks each one before relying on it.

otelkit supports a range of SDK releases (``opentelemetry-sdk>=1.40,<2``, contrib ``>=0.61b0,<1``).
Where it is faster than the SDK it does what the SDK does with fewer steps, and that means relying
on things the SDK does not promise to keep: a private attribute, a constructor's keywords, the
module-level name an exporter encodes with, a class compared by name. No other otelkit module
does; each such use is a :class:`FastPath`, registered with :func:`register` and four things: a
name, a *probe*, the fast implementation and a fallback that uses the SDK's public API only::

    SPAN_ATTRIBUTES = register("span-attributes", probe=_probe, fast=_set_direct, fallback=_set_public)
    set_attributes = SPAN_ATTRIBUTES.get()   # the fast one, or the fallback

A new fast path is that one call: the feature module keeps the fast implementation (which reads
internals only through this package) and registers it with a probe from here, e.g.
``ENCODE_SPANS = register("otlp-spans", probe=probe_span_encoder, fast=encode_spans, fallback=None)``
in :mod:`otelkit._runtime.otlp.encode`. The probe is called with the fast implementation.

The first :meth:`FastPath.get` runs the probe (lazily: nothing runs at import, start-up pays only
for the paths it uses — three small ones, ~0.5 ms). A probe checks that the attributes and
signatures the fast path reads are there, then runs the fast path once beside the SDK's own code
on a throw-away provider and compares the results (the same span, the same decoded OTLP
message, the same histogram points…). It returns ``None`` when they agree, or one line saying
what differs; an exception counts as a mismatch. On a mismatch the fallback is used for the life
of the process, and one INFO line names the SDK version and the path::

    otelkit: OpenTelemetry SDK 1.46.0: fast path 'server-span' off (Tracer has no attribute
    '_span_limits'); using the SDK's public API instead

A mismatch found later (the SDK's ``export()`` using the encoded request in an unforeseen way)
switches the path off the same way (:meth:`FastPath.switch_off`). :func:`paths` lists every
path and why it is off.

The package: ``_registry`` (the above), ``_probes`` (the probes' throw-away provider, spans and log
records), ``_spans`` (reading finished spans and attribute mappings), ``_server_span`` (otelkit's
HTTP server span) and ``_span_end`` (its end), ``_queue`` (the batch processors' queue),
``_layout`` (SDK objects built as their constructor builds them, from what two of them share),
``_export`` (OTLP export with otelkit's encoder, metric exporters' preferences, the fast
histogram's probe), ``_fork`` (exporters' connections in a forked child), ``_log_emit`` and
``_log_probe`` (the OTel log handler's fast emit and its probe), ``_celery`` (contrib Celery's
attribute copier), ``_context`` (the context variable, a request's context and what a log record
reads from it), ``_api`` (the rest).

What relies on what (and what changed between 1.40 and 1.45.2):

============================ ==================================================================
path                         relies on
============================ ==================================================================
``server-span``              ``Tracer._span_limits``/``_instrumentation_scope``/``_is_enabled()``,
                             ``_tracer_metrics`` being ``NoOpTracerMetrics`` (1.42+; 1.40–1.41
                             always record tracer self-metrics: path off), ``_Span``'s keywords
                             and fields (its layout: learnt, compared field by field),
                             ``ProxyTracer._real_tracer``, the samplers' private fields, the
                             span's context key ``_SPAN_KEY`` (its parent read there), and
                             ``TraceFlags.RANDOM_TRACE_ID`` (1.42+)
``span-attributes``          ``_Span._lock``/``_end_time``/``_name``/``_attributes._dict``/``_immutable``
``span-end``                 what ``Span.end`` refers to (1.40–1.41 do not freeze the attributes),
                             ``ReadableSpan``'s fields being the span's,
                             ``SynchronousMultiSpanProcessor._span_processors``,
                             ``BatchSpanProcessor._batch_processor``
``batch-queue``              what ``BatchProcessor.emit`` refers to (1.40; 1.41–1.42 count drops;
                             1.43+ check the worker's event first), its ``_queue`` (a bounded
                             ``deque``), ``_max_queue_size``, ``_max_export_batch_size``,
                             ``_worker_awaken``, ``_shutdown`` (``span-end`` and ``log-record``
                             queue through it)
``span-fields``              ``ReadableSpan._context`` … ``_status``, ``BoundedList._dq``
``attribute-dict``           ``BoundedAttributes._dict``
``attributes-like``          ``BoundedAttributes._extended_attributes`` (1.40–1.44: log attributes
                             hold any value only when it is set; 1.45: always, keyword deprecated)
``otlp-spans``, ``otlp-logs`` the exporters' ``export()`` encoding through the module-level
                             ``encode_spans``/``encode_logs`` (1.40–1.45.2; ``export()`` itself was
                             rewritten in 1.42 and 1.45: otelkit runs the installed one), and the
                             encoders' output (1.40 refuses ``None`` values and leaves a ``None``
                             log body out; 1.45 encodes both: compared, path off when it differs)
``lean-transport``           ``opentelemetry.exporter.http.transport._base`` (what a transport and
                             its result implement) and the exporters' ``_transport`` keyword
                             (1.45+): otelkit's ``http.client`` transport (``_transport.py``)
``fork-reset``               where an OTLP exporter keeps its connections: ``_client._transport``
                             (1.45+), ``_session`` (1.40–1.44), ``_channel`` (gRPC)
``exporter-preferences``     ``MetricExporter._preferred_temporality``/``_preferred_aggregation``
``request-context``          the context keys ``_BAGGAGE_KEY`` and ``_SPAN_KEY``
``end-request-context``      the same keys, and ``Context`` being a ``dict`` (changed in place when
                             a request ends; the API cannot: off, tasks keep the request's ids)
``record-context``           the same keys, and what ``get_current_span``/``get_baggage`` read there
                             (for an SDK span, its ``_context``: ``get_span_context()`` returns it)
``context-var``              the API's ``_RUNTIME_CONTEXT._current_context`` (the default
                             ``contextvars`` runtime context): read, set and reset directly
``entry-points``             ``opentelemetry.util._importlib_metadata`` (the API's cached copy;
                             1.40 wraps the ``importlib_metadata`` backport, 1.45 the stdlib)
``proxy-providers``          the API's proxy provider classes (``_ProxyMeterProvider`` …)
``dependency-conflict``      ``DependencyConflict._log`` (contrib 0.66; absent in 0.61–0.65)
``log-record``               instrumentation-logging's ``LoggingHandler`` (``_logger_provider``,
                             ``_get_attributes``, ``_is_emitting``, ``_RESERVED_ATTRS``,
                             ``std_to_otel``), the SDK ``Logger``'s and processors' private fields,
                             ``BatchLogRecordProcessor._batch_processor``, the fields of
                             ``ReadableLogRecord``, ``LogRecord`` and ``BoundedAttributes``
``idle-record-factory``      ``LoggingInstrumentor._old_factory``/``_log_hook`` (class fields)
``celery-attributes``        contrib's ``utils.set_attributes_from_context`` touching a span only
                             through ``is_recording()``/``set_attribute()`` (its pairs are set in one
                             batch), and ``span-attributes``
``celery-spans``             ``CeleryInstrumentor._tracer`` (its run and publish spans started through
                             it), and ``server-span``'s short path, given the span kind
``celery-run-span``          contrib's run span made in otelkit's task receivers (its own two
                             disconnected): ``CeleryInstrumentor._tracer``, ``_use_span_links``,
                             ``metrics``, ``_instrument``, ``_trace_prerun``/``_trace_postrun``,
                             ``celery_getter`` and the ``utils`` store and copier its other
                             receivers use
``celery-histograms``        contrib's ``CeleryInstrumentor.metrics`` dict, read by its
                             ``_record_histograms`` (histograms otelkit's provider drops get no-ops)
``fast-sum``                 otelkit's pre-aggregated counter and up-down counter, probed against the
                             SDK's (same points and exemplars, both temporalities)
``fast-histogram``           otelkit's pre-aggregated histogram, probed against the SDK histogram
                             (same points for the same measurements, both temporalities)
============================ ==================================================================

On 1.40 the paths ``server-span``, ``otlp-spans``, ``otlp-logs`` and ``lean-transport`` are off
(``tests/unit/test_sdk_compat.py`` holds the table for whichever release is installed).

Also here: the import paths of the logs signal (``opentelemetry.sdk._logs``, ``opentelemetry._logs``:
the public ``logs`` names are tried first), the name of the SDK batch processors' logger and how
an OTel logging handler is recognised.
"""

from __future__ import annotations

from otelkit._runtime.sdk_compat._api import (
    DEPENDENCY_CONFLICT,
    ENTRY_POINTS,
    PROXY_PROVIDERS,
    SDK_QUEUE_LOGGER,
    entry_points,
    install_global_provider,
    is_otel_logging_handler,
    logs_api,
    logs_sdk,
    logs_sdk_export,
    otlp_log_encoder,
    otlp_log_exporter_module,
    report_dependency_conflict,
    skip_dropped_celery_histograms,
)
from otelkit._runtime.sdk_compat._celery import (
    CELERY_CONTEXT_ATTRIBUTES,
    CELERY_SPANS,
    batched_context_attributes,
    short_celery_tracer,
)
from otelkit._runtime.sdk_compat._celery_run import (
    CELERY_RUN_SPANS,
    Run,
    RunSpans,
    give_back_run_spans,
    take_over_run_spans,
)
from otelkit._runtime.sdk_compat._context import (
    CONTEXT_VAR,
    END_REQUEST_CONTEXT,
    RECORD_CONTEXT,
    REQUEST_CONTEXT,
    context_var,
    current_context_getter,
    end_request_context,
    record_context,
    request_context,
)
from otelkit._runtime.sdk_compat._export import (
    EXPORTER_PREFERENCES,
    LEAN_TRANSPORT,
    EncodedRequest,
    UnexpectedUse,
    export_with_encoder,
    exporter_preferences,
    lean_transport,
    probe_fast_histogram,
    probe_fast_sum,
    probe_log_encoder,
    probe_span_encoder,
)
from otelkit._runtime.sdk_compat._fork import FORK_RESET, reset_exporter_connections
from otelkit._runtime.sdk_compat._log_emit import FastEmit, drop_idle_record_factory, probe_record_factory, replan
from otelkit._runtime.sdk_compat._log_probe import probe_log_emit
from otelkit._runtime.sdk_compat._probes import probe_log_records, probe_spans
from otelkit._runtime.sdk_compat._queue import BATCH_QUEUE, queue_emit
from otelkit._runtime.sdk_compat._registry import FastPath, fallback_reason, paths, register, sdk_version
from otelkit._runtime.sdk_compat._server_span import (
    PENDING,
    SERVER_SPAN,
    SPAN_ATTRIBUTES,
    server_span_starter,
    set_known_attributes,
)
from otelkit._runtime.sdk_compat._span_end import SPAN_END, end_span
from otelkit._runtime.sdk_compat._spans import (
    ATTRIBUTE_DICT,
    ATTRIBUTES_LIKE,
    SPAN_FIELDS,
    SpanFields,
    attribute_reader,
    attributes_like,
    span_reader,
)

__all__ = [
    "ATTRIBUTES_LIKE",
    "ATTRIBUTE_DICT",
    "BATCH_QUEUE",
    "CELERY_CONTEXT_ATTRIBUTES",
    "CELERY_RUN_SPANS",
    "CELERY_SPANS",
    "CONTEXT_VAR",
    "DEPENDENCY_CONFLICT",
    "END_REQUEST_CONTEXT",
    "ENTRY_POINTS",
    "EXPORTER_PREFERENCES",
    "FORK_RESET",
    "LEAN_TRANSPORT",
    "PENDING",
    "PROXY_PROVIDERS",
    "RECORD_CONTEXT",
    "REQUEST_CONTEXT",
    "SDK_QUEUE_LOGGER",
    "SERVER_SPAN",
    "SPAN_ATTRIBUTES",
    "SPAN_END",
    "SPAN_FIELDS",
    "EncodedRequest",
    "FastEmit",
    "FastPath",
    "Run",
    "RunSpans",
    "SpanFields",
    "UnexpectedUse",
    "attribute_reader",
    "attributes_like",
    "batched_context_attributes",
    "context_var",
    "current_context_getter",
    "drop_idle_record_factory",
    "end_request_context",
    "end_span",
    "entry_points",
    "export_with_encoder",
    "exporter_preferences",
    "fallback_reason",
    "give_back_run_spans",
    "install_global_provider",
    "is_otel_logging_handler",
    "lean_transport",
    "logs_api",
    "logs_sdk",
    "logs_sdk_export",
    "otlp_log_encoder",
    "otlp_log_exporter_module",
    "paths",
    "probe_fast_histogram",
    "probe_fast_sum",
    "probe_log_emit",
    "probe_log_encoder",
    "probe_log_records",
    "probe_record_factory",
    "probe_span_encoder",
    "probe_spans",
    "queue_emit",
    "record_context",
    "register",
    "replan",
    "report_dependency_conflict",
    "request_context",
    "reset_exporter_connections",
    "sdk_version",
    "server_span_starter",
    "set_known_attributes",
    "short_celery_tracer",
    "skip_dropped_celery_histograms",
    "span_reader",
    "take_over_run_spans",
]
