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


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_root():
    """The root logger with one handler of the app's; restored afterwards, SDK gate removed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    app_handler = _Collect()
    root.handlers[:] = [app_handler]
    yield app_handler
    root.handlers[:] = handlers
    root.setLevel(level)
    _logs.uninstall_sdk_gate()


def test_logs_sdk_warnings_are_rate_limited_whatever_handlers_the_app_has(app_root):
    gate = _logs.install_sdk_gate(3600)
    exporter_log = logging.getLogger("opentelemetry.test_logs.exporter")  # no SDK DuplicateFilter on it
    for attempt in range(42):
        exporter_log.warning("Failed to export logs batch code: %s, reason: %s", 503, f"try {attempt}")
    assert [r.getMessage() for r in app_root.records] == ["Failed to export logs batch code: 503, reason: try 0"]
    gate.limiter.interval = 0
    exporter_log.warning("Failed to export logs batch code: %s, reason: %s", 503, "later")
    assert app_root.records[-1].getMessage() == (
        "Failed to export logs batch code: 503, reason: later (41 similar messages suppressed)"
    )
    assert _logs.install_sdk_gate(30) is gate and gate.limiter.interval == 30  # once


def test_logs_sdk_gate_reaches_the_handlers_installed_after_it_and_never_the_otel_handler(app_root, otel_logs):
    handler, exporter = otel_logs
    _logs.install_sdk_gate(3600)
    later = _Collect()
    logging.getLogger().handlers[:] = [handler, later]  # e.g. the app's dictConfig after otelkit's set-up
    logging.getLogger("opentelemetry.sdk._shared_internal").error("Exception while exporting")
    assert [r.getMessage() for r in later.records] == ["Exception while exporting"]
    assert exporter.get_finished_logs() == ()


def test_logs_app_dictconfig_at_import_keeps_one_console_and_the_otel_handler(app_root, otel_logs):
    handler, exporter = otel_logs
    root = logging.getLogger()
    root.handlers[:] = []
    console = _logs.install_console("json", 30)
    root.addHandler(handler)
    _handler.prepare_otel_handler(handler)
    # uvicorn configures its loggers before it imports the app: otelkit restyles them to its console.
    uvicorn_handler = logging.StreamHandler()
    uvicorn_handler.setFormatter(_UvicornFormatter("%(message)s"))
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = [uvicorn_handler]
    access.propagate = False
    enabled = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    enabled = [lg for lg in enabled if not lg.disabled]
    try:
        _handler._attach_to_isolated_loggers(handler)
        assert uvicorn_handler.formatter is console.formatter
        logging.getLogger("opentelemetry.sdk.existing")  # an SDK logger that exists at the app's dictConfig
        logging.config.dictConfig(
            {
                "version": 1,
                "formatters": {"app": {"format": "APP %(levelname)s %(message)s"}},
                "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "app"}},
                "root": {"handlers": ["console"], "level": "INFO"},
            }
        )
        kinds = [type(h).__name__ for h in root.handlers]
        assert kinds == ["StreamHandler", "LoggingHandler"]  # the app's console, and the OTel handler back
        assert root.handlers[0].formatter._fmt == "APP %(levelname)s %(message)s"
        assert isinstance(uvicorn_handler.formatter, _UvicornFormatter)  # uvicorn's own format again
        assert handler in access.handlers
        assert not logging.getLogger("opentelemetry.sdk.existing").disabled
        logging.getLogger("app.orders").info("order placed")
        assert [d.log_record.body for d in exporter.get_finished_logs()] == ["order placed"]
    finally:
        access.handlers[:] = []
        access.propagate = True
        for logger in enabled:  # the dictConfig disabled every other existing logger
            logger.disabled = False


class _UvicornFormatter(logging.Formatter):
    pass


_UvicornFormatter.__module__ = "uvicorn.logging"


def test_logs_extra_values_of_any_type_become_attributes_without_a_warning(otel_logs, caplog):
    import datetime
    import uuid
    import weakref

    handler, exporter = otel_logs
    _handler.prepare_otel_handler(handler)

    class Websocket:
        def __str__(self) -> str:
            return "<WebSocket /ws>"

    socket = Websocket()
    eta = datetime.datetime(2026, 12, 1, 20, 0, tzinfo=datetime.timezone.utc)
    logger = logging.getLogger("test_logs.noise")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.WARNING, logger="opentelemetry"):
            logger.info(
                "Task received",
                extra={
                    # ("t1", eta): a sequence of one type once converted; SDK 1.40 drops mixed ones.
                    "data": {"id": "t1", "eta": eta, "args": ("t1", eta)},
                    "websocket": weakref.proxy(socket),
                    "job": uuid.UUID(int=7),
                    "count": 3,
                },
            )
    finally:
        logger.removeHandler(handler)
    (data,) = exporter.get_finished_logs()
    attributes = data.log_record.attributes
    iso = "2026-12-01T20:00:00+00:00"
    assert attributes["data"] == {"id": "t1", "eta": iso, "args": ("t1", iso)}
    assert attributes["websocket"] == "<WebSocket /ws>"
    assert attributes["job"] == "00000000-0000-0000-0000-000000000007"
    assert attributes["count"] == 3
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []


def test_logs_app_basicconfig_after_otelkit_gets_its_format_and_keeps_the_otel_handler(app_root, otel_logs):
    import io

    handler, exporter = otel_logs
    root = logging.getLogger()
    root.handlers[:] = []
    _logs.install_console("json", 30)
    root.addHandler(handler)
    _handler.prepare_otel_handler(handler)
    stream = io.StringIO()
    logging.basicConfig(stream=stream, format="BASIC %(levelname)s %(message)s", level=logging.INFO)
    logging.getLogger("app.basic").info("hello")
    assert stream.getvalue() == "BASIC INFO hello\n"
    assert not any(isinstance(h, _logs._ConsoleHandler) for h in root.handlers)
    assert handler in root.handlers
    assert [d.log_record.body for d in exporter.get_finished_logs()] == ["hello"]
    logging.basicConfig(format="ignored")  # the root logger now has the app's handler: a no-op as usual
    assert len([h for h in root.handlers if isinstance(h, logging.StreamHandler)]) == 1
