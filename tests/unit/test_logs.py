from __future__ import annotations

import json
import logging
import logging.config

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from otelkit._runtime.logs import console as _logs
from otelkit._runtime.logs import handler as _handler
from otelkit._runtime.logs import structlog_bridge


@pytest.fixture
def otel_logs():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    yield handler, exporter
    for name in list(logging.Logger.manager.loggerDict):
        logger = logging.getLogger(name)
        if handler in logger.handlers:
            logger.removeHandler(handler)


def _record(name: str = "app", msg: str = "hello %s", args=("world",), level=logging.INFO, **extra):
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_logs_json_console_has_message_extras_and_trace_ids():
    tracer = TracerProvider().get_tracer("t")
    formatter = _logs.ConsoleFormatter("json")
    with tracer.start_as_current_span("op") as span:
        line = formatter.format(_record(order_id=42))
    doc = json.loads(line)
    assert doc["message"] == "hello world"
    assert doc["level"] == "INFO"
    assert doc["logger"] == "app"
    assert doc["order_id"] == 42
    assert doc["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert doc["span_id"] == format(span.get_span_context().span_id, "016x")


def test_logs_json_console_without_span_has_no_trace_id():
    doc = json.loads(_logs.ConsoleFormatter("json").format(_record()))
    assert "trace_id" not in doc


def test_logs_pretty_console_is_one_readable_line():
    line = _logs.ConsoleFormatter("pretty").format(_record(user="ana"))
    assert line.endswith("INFO  app  hello world  user=ana")
    assert "\n" not in line


def test_logs_rate_limit_lets_one_sdk_warning_through_per_interval():
    limiter = _logs._RateLimitOtelWarnings(interval=3600)
    name = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
    first = _record(name, "Failed to export batch: %s", ("refused",), logging.WARNING)
    assert limiter.filter(first)
    assert not limiter.filter(_record(name, "Failed to export batch: %s", ("again",), logging.WARNING))
    assert limiter.filter(_record("app", "not sdk", (), logging.WARNING))
    limiter.interval = 0
    later = _record(name, "Failed to export batch: %s", ("refused",), logging.WARNING)
    assert limiter.filter(later)
    assert later.otelkit_suppressed == 1
    assert "(1 similar messages suppressed)" in _logs.ConsoleFormatter("pretty").format(later)


def test_logs_otel_handler_drops_sdk_records_and_keeps_extras(otel_logs):
    handler, exporter = otel_logs
    _handler.prepare_otel_handler(handler)
    logger = logging.getLogger("test_logs.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("order placed", extra={"order_id": 7})
        logging.getLogger("opentelemetry.sdk.test").addHandler(handler)
        logging.getLogger("opentelemetry.sdk.test").warning("export failed")
    finally:
        logger.removeHandler(handler)
        logging.getLogger("opentelemetry.sdk.test").removeHandler(handler)
    records = [d.log_record for d in exporter.get_finished_logs()]
    assert [r.body for r in records] == ["order placed"]
    assert records[0].attributes["order_id"] == 7


def test_logs_handler_reattached_to_non_propagating_loggers_after_dictconfig(otel_logs):
    handler, exporter = otel_logs
    _handler.prepare_otel_handler(handler)
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"null": {"class": "logging.NullHandler"}},
            "loggers": {"isolated.access": {"handlers": ["null"], "level": "INFO", "propagate": False}},
        }
    )
    logger = logging.getLogger("isolated.access")
    assert handler in logger.handlers
    logger.info("GET /items 200", extra={"color_message": "\x1b[1mGET\x1b[0m"})
    (data,) = exporter.get_finished_logs()
    assert data.log_record.body == "GET /items 200"
    assert "color_message" not in data.log_record.attributes
    logger.handlers.clear()


def test_logs_structlog_fields_become_attributes(otel_logs):
    import structlog

    handler, exporter = otel_logs
    logger = logging.getLogger("test_logs.structlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    structlog.reset_defaults()
    try:
        assert structlog_bridge.configure_structlog()
        structlog.get_logger("test_logs.structlog").info("charged", amount=12.5, currency="EUR")
    finally:
        structlog.reset_defaults()
        logger.removeHandler(handler)
    (data,) = exporter.get_finished_logs()
    assert data.log_record.body == "charged"
    assert data.log_record.attributes["amount"] == 12.5
    assert data.log_record.attributes["currency"] == "EUR"


def test_logs_structlog_left_alone_when_app_configured_it():
    import structlog

    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    try:
        assert not structlog_bridge.configure_structlog()
    finally:
        structlog.reset_defaults()


def test_logs_sdk_queue_full_warning_mutes_its_logger_for_an_interval():
    logger = logging.getLogger(_logs._SDK_QUEUE_LOGGER)
    muter = _logs._MuteAfterQueueFull(interval=3600)
    logger.addFilter(muter)
    try:
        assert logger.isEnabledFor(logging.WARNING)
        logger.warning("Queue full, dropping %s.", "span")
        assert not logger.isEnabledFor(logging.WARNING)  # later drops cost no log record at all
        assert logger.isEnabledFor(logging.ERROR)  # export exceptions still pass
        muter._timer.cancel()
        muter._unmute(logger)
        assert logger.isEnabledFor(logging.WARNING)
    finally:
        logger.removeFilter(muter)
        logger.setLevel(logging.NOTSET)
