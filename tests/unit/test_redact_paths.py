"""Secrets never leave the process: free text, nested extras, Celery's task data, every exporter path.

What a real OTLP receiver got from otelkit's exporters (the fast encoder and the SDK's exporter wrapped),
and what the console formatter printed, for the inputs of issue 17.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.trace import Status, StatusCode

from otelkit._runtime import providers
from otelkit._runtime import redact as _redact
from otelkit._runtime.logs import console as _logs
from otelkit._runtime.redact import REDACTED, Redactor
from otelkit.settings import Settings
from otelkit.testing import OTLPReceiver

SECRET = "s3cr3t-Tok3n.value_42"


@pytest.fixture(autouse=True)
def _default_redactor():
    _redact.configure(())
    yield
    _redact.configure(())


# --------------------------------------------------------------------------- free text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"calling upstream with Authorization: Bearer {SECRET}", f"calling upstream with Authorization: {REDACTED}"),
        (f"Authorization: Basic {SECRET}==", f"Authorization: {REDACTED}"),
        (f"authorization=Digest {SECRET} done", f"authorization={REDACTED} done"),
        (
            f"headers={{'Authorization': 'Bearer {SECRET}', 'Accept': '*/*'}}",
            f"headers={{'Authorization': {REDACTED}, 'Accept': '*/*'}}",
        ),
        (f'{{"password": "{SECRET}", "user": "ana"}}', f'{{"password": {REDACTED}, "user": "ana"}}'),
        (f"retry with bearer {SECRET}", f"retry with bearer {REDACTED}"),
        (
            f"GET /items?token={SECRET}&api_key={SECRET}&page=2 HTTP/1.1",
            f"GET /items?token={REDACTED}&api_key={REDACTED}&page=2 HTTP/1.1",
        ),
        (f"GET /items?a=1;token={SECRET};page=2", f"GET /items?a=1;token={REDACTED};page=2"),
        (f"Cookie: theme=dark; sid={SECRET}", f"Cookie: {REDACTED}"),
        (f"x-api-key: {SECRET}", f"x-api-key: {REDACTED}"),
        (f"postgresql://app:{SECRET}@db:5432/x", f"postgresql://{REDACTED}@db:5432/x"),
    ],
)
def test_redact_message_removes_whole_credentials(text, expected):
    assert Redactor().redact_message(text) == expected
    assert Redactor().redact_message(expected) == expected  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "fetched item",
        "password authentication failed for user",
        '127.0.0.1:5000 - "GET /items/1 HTTP/1.1" 200',
        "Basic plan selected",
        "gen_ai.usage.input_tokens=12",
    ],
)
def test_redact_message_without_secrets_is_the_same_object(text):
    assert Redactor().redact_message(text) is text


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "set-cookie",
        "X-API-KEY",
        "apiKey",
        "api.key",
        "refresh_token",
        "csrftoken",
        "PASSWD",
        "pwd",
        "passphrase",
        "client_secret",
        "privateKey",
        "private-key",
        "SESSIONID",
        "credentials",
        "X-Amz-Signature",
    ],
)
def test_redact_message_finds_every_sensitive_key_in_text(key):
    assert Redactor().is_sensitive(key)
    assert Redactor().redact_message(f"{key}={SECRET} next") == f"{key}={REDACTED} next"


def test_redact_message_extra_keys():
    assert Redactor(["iban"]).redact_message(f"IBAN: {SECRET}") == f"IBAN: {REDACTED}"


def test_redact_message_in_a_traceback():
    try:
        raise ConnectionError(f"upstream refused Authorization: Bearer {SECRET} (401)")
    except ConnectionError:
        import traceback

        stack = traceback.format_exc()
    redacted = Redactor().redact_message(stack)
    assert SECRET not in redacted
    assert "Traceback (most recent call last)" in redacted
    assert f"Authorization: {REDACTED}" in redacted


def test_redact_text_for_health_messages_truncates_after_redacting():
    text = f"Authorization: Bearer {SECRET} " + "x" * 1000
    redacted = _redact.redact_text(text, limit=40)
    assert SECRET not in redacted
    assert len(redacted) == 40


# --------------------------------------------------------------------------- structures


def test_redact_attributes_lists_of_dicts_and_nested_structures():
    attributes = {
        "items": [{"password": SECRET, "sku": "a1"}, {"sku": "b2"}],
        "deep": {"level": [[{"api_key": SECRET}]], "tags": ("x", "y")},
        "plain": ["a", "b"],
    }
    redacted = Redactor().redact_attributes(attributes)
    assert redacted == {
        "items": [{"password": REDACTED, "sku": "a1"}, {"sku": "b2"}],
        "deep": {"level": [[{"api_key": REDACTED}]], "tags": ("x", "y")},
        "plain": ["a", "b"],
    }
    assert attributes["items"][0]["password"] == SECRET  # the input is left as it was
    same = {"plain": ["a", "b"], "tags": ("x",), "n": [1, 2.5, True, None]}
    assert Redactor().redact_attributes(same) is same


def test_redact_query_with_semicolons():
    redactor = Redactor()
    assert redactor.redact_query(f"a=1;token={SECRET}&page=2") == f"a=1;token={REDACTED}&page=2"
    assert redactor.redact_attributes({"url.query": f"x=1;api_key={SECRET}"}) == {
        "url.query": f"x=1;api_key={REDACTED}"
    }
    assert redactor.redact_url(f"/cb;jsessionid=1?a=1;secret={SECRET}") == f"/cb;jsessionid=1?a=1;secret={REDACTED}"


def test_redact_exception_attributes_are_free_text():
    attributes = {
        "exception.type": "ConnectionError",
        "exception.message": f"refused Authorization: Bearer {SECRET}",
        "exception.stacktrace": f"Traceback ...\nConnectionError: refused Authorization: Bearer {SECRET}\n",
    }
    redacted = Redactor().redact_attributes(attributes)
    assert SECRET not in json.dumps(redacted)
    assert redacted["exception.message"] == f"refused Authorization: {REDACTED}"


def test_redact_celery_task_data_args_and_kwargs():
    data = {
        "id": "c0ffee",
        "name": "shop.charge",
        "args": "('ana@example.com', '4111111111111111')",
        "kwargs": "{'password': 'hunter2', 'email': 'ana@example.com'}",
        "eta": None,
    }
    redacted = Redactor().redact_attributes({"data": {**data, "return_value": "{'api_key': 'k-1', 'n': 2}"}})
    assert redacted == {
        "data": {**data, "args": REDACTED, "kwargs": REDACTED, "return_value": f"{{'api_key': {REDACTED}, 'n': 2}}"}
    }


# --------------------------------------------------------------------------- the exporters, at a real receiver


def _log_with_everything(logger: logging.Logger) -> None:
    logger.info(f"calling upstream with Authorization: Bearer {SECRET}", extra={"items": [{"password": SECRET}]})
    try:
        raise ConnectionError(f"upstream said no to token={SECRET}")
    except ConnectionError:
        logger.exception("upstream failed")


@pytest.mark.parametrize("fast", [True, False], ids=["fast-encoder", "sdk-exporter"])
def test_redact_what_a_receiver_gets_from_both_exporters(monkeypatch, fast):
    for var in [v for v in os.environ if v.startswith(("OTEL_", "OTELKIT_"))]:
        monkeypatch.delenv(var)
    with OTLPReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings(fast_export=fast))
        handler = LoggingHandler(logger_provider=logger_provider)
        logger = logging.getLogger(f"test_redact_paths.{fast}")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
        try:
            _log_with_everything(logger)
            tracer = tracer_provider.get_tracer("t")
            with tracer.start_as_current_span("call") as span:
                error = ConnectionError(f"refused Authorization: Bearer {SECRET}")
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
            tracer_provider.force_flush()
            logger_provider.force_flush()
            rx.wait_for(lambda r: len(r.logs) == 2 and r.spans_named("call"), timeout=10)
        finally:
            logger.removeHandler(handler)
            tracer_provider.shutdown()
            logger_provider.shutdown()
            meter_provider.shutdown()
        received = repr(rx.logs) + repr(rx.spans)
    assert SECRET not in received
    first, second = rx.logs
    assert first.body == f"calling upstream with Authorization: {REDACTED}"
    assert first.attributes["items"] == ({"password": REDACTED},)
    assert second.attributes["exception.message"] == f"upstream said no to token={REDACTED}"
    (span,) = rx.spans_named("call")
    assert span.status_message == f"refused Authorization: {REDACTED}"
    assert span.events[0].attributes["exception.message"] == f"refused Authorization: {REDACTED}"


def test_redact_console_lines(capsys):
    logger = logging.getLogger("test_redact_paths.console")
    for style in ("json", "pretty"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_logs.ConsoleFormatter(style))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
        try:
            _log_with_everything(logger)
        finally:
            logger.removeHandler(handler)
    printed = capsys.readouterr().err
    assert SECRET not in printed
    assert f"Authorization: {REDACTED}" in printed
    assert f"token={REDACTED}" in printed


def test_redact_uvicorn_access_log_record_itself(capsys):
    """The record's args are redacted for every handler: uvicorn's own formatter prints no secret either."""
    from uvicorn.logging import AccessFormatter

    logger = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    _logs.redact_access_logs()
    logger.addHandler(handler)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/items?token={SECRET}&api_key={SECRET}&page=2",
            "1.1",
            200,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    printed = capsys.readouterr().err
    assert SECRET not in printed
    assert f"/items?token={REDACTED}&api_key={REDACTED}&page=2" in printed


def test_redact_message_costs_nothing_when_nothing_matches():
    redactor = Redactor()
    body = '127.0.0.1:51234 - "GET /items/3?page=2&sort=asc HTTP/1.1" 200'
    assert redactor.redact_message(body) is body
    assert redactor.redact_body(body) is body


# A JSON Web Token: header.payload.signature, each base64url ("eyJ" is '{"' encoded).
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFuYSJ9"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"invalid token {JWT} for user 4", f"invalid token {REDACTED} for user 4"),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
        (f'{{"id_token": "{JWT}"}}', f'{{"id_token": {REDACTED}}}'),
    ],
)
def test_redact_message_removes_json_web_tokens(text, expected):
    assert Redactor().redact_message(text) == expected


def test_redact_structlog_exception_and_error_extras_at_the_receiver(monkeypatch):
    """structlog's ``format_exc_info`` puts the traceback in an ``exception`` field, apps put ``str(exc)``
    in ``error``: both are free text and lose their credentials like a log body."""
    import structlog

    from otelkit._runtime.logs import structlog_bridge

    for var in [v for v in os.environ if v.startswith(("OTEL_", "OTELKIT_"))]:
        monkeypatch.delenv(var)
    with OTLPReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
        handler = LoggingHandler(logger_provider=logger_provider)
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        structlog.reset_defaults()
        try:
            assert structlog_bridge.configure_structlog()
            log = structlog.get_logger("test_redact_paths.structlog")
            try:
                raise ConnectionError(f"upstream refused Authorization: Bearer {SECRET}")
            except ConnectionError as exc:
                log.exception("upstream failed", error=str(exc))
            logger_provider.force_flush()
            rx.wait_for(lambda r: len(r.logs) == 1, timeout=10)
        finally:
            structlog.reset_defaults()
            root.removeHandler(handler)
            root.setLevel(old_level)
            for provider in (tracer_provider, meter_provider, logger_provider):
                provider.shutdown()
    (record,) = rx.logs
    assert SECRET not in repr(record)
    assert record.attributes["error"] == f"upstream refused Authorization: {REDACTED}"
    assert f"ConnectionError: upstream refused Authorization: {REDACTED}" in record.attributes["exception"]


def test_redact_keeps_flags_under_sensitive_looking_keys():
    """A boolean is never a credential: ``password_reset_sent=True`` and ``cookie_consent=False`` stay."""
    attributes = {"password_reset_sent": True, "cookie_consent": False, "token_valid": True, "password": "hunter2"}
    assert Redactor().redact_attributes(attributes) == {
        "password_reset_sent": True,
        "cookie_consent": False,
        "token_valid": True,
        "password": REDACTED,
    }


def _cpu(fn, arg) -> float:
    import time

    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        fn(arg)
        best = min(best, time.thread_time() - start)
    return best


HOSTILE = {
    "repeated-key": lambda n: "password" * (n // 8),
    "repeated-key-with-separator": lambda n: "api_key" * (n // 7),
    "key-then-brackets": lambda n: "token=" + ")" * n + "x",
    "key-value-then-brackets": lambda n: "session=a" + "]" * n + "x",
    "words-with-a-key-inside": lambda n: "my_secret_" * (n // 10),
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_redact_message_work_grows_linearly_with_hostile_text(make):
    """Complexity, not speed: 8 times the text may cost about 8 times the CPU, never 64.

    A request line or an error message repeating a sensitive word (``?q=passwordpassword…``) is
    redacted on the console's logging call, on the event loop: with work quadratic in its length,
    16 KB of it held the loop for ~0.8 s and 32 KB for ~3 s.
    """
    redactor = Redactor()
    small, large = make(4000), make(32000)
    redactor.redact_message(small)  # warm-up
    ratio = _cpu(redactor.redact_message, large) / max(_cpu(redactor.redact_message, small), 1e-5)
    assert ratio < 24  # linear: ~8; quadratic: ~64


def test_redact_query_parameter_names_from_requests_are_not_kept():
    """Query parameter names come from whoever sends the request: long ones are judged, never cached
    (4,096 names of 16 KB each would have held 64 MB in every worker)."""
    redactor = Redactor()
    for i in range(50):
        name = f"p{i}" + "x" * 16_000
        assert redactor.redact_query(f"{name}=1&token=abc") == f"{name}=1&token={REDACTED}"
    assert sum(len(key) for key in redactor._kinds) < 1_000
