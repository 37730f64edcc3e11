"""otelkit.cli._tailfmt: the one-line renderings printed by ``otelkit tail``."""

from __future__ import annotations

import io
import json
from datetime import timezone
from typing import Any

import pytest

from otelkit.cli._tailfmt import (
    format_duration,
    format_log,
    format_metric_point,
    format_record,
    format_span,
    format_value,
    record_to_json,
    use_color,
)
from otelkit.testing import ReceivedLog, ReceivedMetricPoint, ReceivedSpan

_T0 = 1_700_000_401_123_000_000  # 2023-11-14 22:20:01.123 UTC
_RESOURCE = {"service.name": "checkout", "telemetry.sdk.language": "python"}
_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _span(**overrides: Any) -> ReceivedSpan:
    fields: dict[str, Any] = {
        "name": "GET /items/{item_id}",
        "trace_id": _TRACE,
        "span_id": "00f067aa0ba902b7",
        "parent_span_id": "",
        "kind": "SERVER",
        "start_time_ns": _T0,
        "end_time_ns": _T0 + 2_100_000,
        "attributes": {"http.route": "/items/{item_id}", "http.response.status_code": 200},
        "status_code": "UNSET",
        "status_message": "",
        "events": (),
        "links": (),
        "resource": _RESOURCE,
        "scope_name": "opentelemetry.instrumentation.fastapi",
        "scope_version": "0.66b2",
    }
    fields.update(overrides)
    return ReceivedSpan(**fields)


def _log(**overrides: Any) -> ReceivedLog:
    fields: dict[str, Any] = {
        "time_ns": _T0 + 1_000_000,
        "severity_text": "INFO",
        "severity_number": 9,
        "body": "fetched item",
        "attributes": {"item_id": 3},
        "trace_id": _TRACE,
        "span_id": "00f067aa0ba902b7",
        "resource": _RESOURCE,
        "scope_name": "shop",
        "event_name": "",
    }
    fields.update(overrides)
    return ReceivedLog(**fields)


def _histogram() -> ReceivedMetricPoint:
    return ReceivedMetricPoint(
        name="http.server.request.duration",
        type="histogram",
        unit="s",
        attributes={"http.route": "/items/{item_id}", "http.request.method": "GET"},
        count=12,
        sum=0.034000000001,
        bucket_counts=(0, 12),
        explicit_bounds=(0.005,),
        time_ns=_T0 + 3_877_000_000,
        resource=_RESOURCE,
    )


def test_format_span_one_readable_line() -> None:
    assert format_span(_span(), tz=timezone.utc) == (
        "SPAN   22:20:01.123  checkout  GET /items/{item_id}  SERVER  2.1ms  trace=4bf92f…  "
        "http.route=/items/{item_id} http.response.status_code=200"
    )


def test_format_span_shows_error_status() -> None:
    line = format_span(_span(status_code="ERROR", status_message="db timeout", attributes={}), tz=timezone.utc)
    assert (
        line == 'SPAN   22:20:01.123  checkout  GET /items/{item_id}  SERVER  2.1ms  ERROR "db timeout"  trace=4bf92f…'
    )


def test_format_log_one_readable_line() -> None:
    assert format_log(_log(), tz=timezone.utc) == (
        "LOG    22:20:01.124  checkout  INFO  fetched item  trace=4bf92f…  item_id=3"
    )


def test_format_log_without_trace_severity_text_or_attributes() -> None:
    line = format_log(
        _log(trace_id="", span_id="", severity_text="", severity_number=17, attributes={}), tz=timezone.utc
    )
    assert line == "LOG    22:20:01.124  checkout  ERROR  fetched item"


def test_format_log_keeps_multiline_body_on_one_line() -> None:
    line = format_log(_log(body="boom\nTraceback", attributes={}, trace_id=""), tz=timezone.utc)
    assert line.endswith("INFO  boom\\nTraceback")
    assert "\n" not in line


def test_format_log_structured_body_and_event_name() -> None:
    line = format_log(
        _log(body={"order": 7, "items": (1, 2)}, event_name="shop.restock", attributes={}, trace_id=""),
        tz=timezone.utc,
    )
    assert line == "LOG    22:20:01.124  checkout  INFO  {order=7,items=[1,2]}  event=shop.restock"


def test_format_metric_point_histogram() -> None:
    assert format_metric_point(_histogram(), tz=timezone.utc) == (
        "METRIC 22:20:05  checkout  http.server.request.duration histogram count=12 sum=0.034 "
        "{http.route=/items/{item_id}, http.request.method=GET}"
    )


def test_format_metric_point_sum_without_attributes() -> None:
    point = ReceivedMetricPoint(name="orders", type="sum", value=3, time_ns=_T0, resource={})
    assert format_metric_point(point, tz=timezone.utc) == "METRIC 22:20:01  -  orders sum value=3"


def test_format_record_dispatches_on_type() -> None:
    assert format_record(_span(), tz=timezone.utc).startswith("SPAN ")
    assert format_record(_log(), tz=timezone.utc).startswith("LOG ")
    assert format_record(_histogram(), tz=timezone.utc).startswith("METRIC ")


def test_format_record_color_wraps_in_ansi_escapes() -> None:
    plain = format_span(_span(), tz=timezone.utc)
    colored = format_span(_span(), tz=timezone.utc, color=True)
    assert "\x1b[" in colored and "\x1b[" not in plain
    assert "\x1b[1mGET /items/{item_id}\x1b[0m" in colored


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (850_000, "850µs"),
        (2_100_000, "2.1ms"),
        (250_000_000, "250ms"),
        (1_250_000_000, "1.25s"),
        (125 * 10**9, "2m05s"),
    ],
)
def test_format_duration_picks_a_unit(ns: int, text: str) -> None:
    assert format_duration(ns) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("two words", '"two words"'),
        ("", '""'),
        (True, "true"),
        (None, "null"),
        (3, "3"),
        (0.5, "0.5"),
        (("a", "b c"), '[a,"b c"]'),
        (b"\x01\xff", "01ff"),
    ],
)
def test_format_value_quotes_only_when_needed(value: object, text: str) -> None:
    assert format_value(value) == text


def test_record_to_json_is_one_object_with_signal() -> None:
    span = json.loads(record_to_json(_span()))
    log = json.loads(record_to_json(_log()))
    point = json.loads(record_to_json(_histogram()))

    assert (span["signal"], span["name"], span["trace_id"], span["duration_ns"]) == (
        "span",
        "GET /items/{item_id}",
        _TRACE,
        2_100_000,
    )
    assert span["resource"]["service.name"] == "checkout"
    assert (log["signal"], log["body"], log["attributes"]) == ("log", "fetched item", {"item_id": 3})
    assert (point["signal"], point["count"], point["bucket_counts"]) == ("metric", 12, [0, 12])
    assert "\n" not in record_to_json(_log(body="a\nb"))


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color_only_on_tty_without_no_color() -> None:
    assert use_color(_FakeTTY(), {}) is True
    assert use_color(_FakeTTY(), {"NO_COLOR": "1"}) is False
    assert use_color(_FakeTTY(), {"NO_COLOR": ""}) is True
    assert use_color(_FakeTTY(), {"TERM": "dumb"}) is False
    assert use_color(io.StringIO(), {}) is False


def test_tailfmt_long_attribute_values_are_shortened_in_text_mode():
    from otelkit.cli import _tailfmt

    text = _tailfmt._attrs({"exception.stacktrace": "Traceback\n" + "x" * 500}, color=False)
    assert len(text) < 200
    assert text.endswith("…")
