"""otelkit.monitor with explicit in-memory providers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

from otelkit._runtime.monitor import DURATION_BUCKETS, monitor
from otelkit.testing import InMemoryTelemetry


@pytest.fixture
def mem() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as telemetry:
        yield telemetry


def _providers(mem: InMemoryTelemetry) -> dict[str, Any]:
    return {"tracer_provider": mem.tracer_provider, "meter_provider": mem.meter_provider}


def test_monitor_decorator_records_span_duration_and_no_error(mem: InMemoryTelemetry) -> None:
    @monitor("generate_model", attributes={"model": "small"}, **_providers(mem))
    def generate(x: int) -> int:
        return x * 2

    assert generate(21) == 42
    assert generate.__name__ == "generate"
    (span,) = mem.spans()
    assert (span.name, span.kind, span.status_code) == ("generate_model", "INTERNAL", "UNSET")
    assert span.attributes == {"model": "small"}
    (point,) = mem.metric_points("app.operation.duration")
    assert point.count == 1
    assert point.unit == "s"
    assert point.explicit_bounds == DURATION_BUCKETS
    assert point.attributes == {"operation.name": "generate_model", "operation.kind": "job", "model": "small"}
    (active,) = mem.metric_points("app.operation.active")
    assert active.value == 0
    assert active.attributes == {"operation.name": "generate_model", "operation.kind": "job"}


def test_monitor_error_sets_status_error_type_and_reraises(mem: InMemoryTelemetry) -> None:
    @monitor("fal.submit", kind="external_call", **_providers(mem))
    def submit() -> None:
        raise TimeoutError("fal.ai did not answer")

    with pytest.raises(TimeoutError, match=r"fal\.ai did not answer"):
        submit()
    (span,) = mem.spans()
    assert (span.kind, span.status_code) == ("CLIENT", "ERROR")
    assert span.status_message == "TimeoutError: fal.ai did not answer"
    assert span.attributes["error.type"] == "TimeoutError"
    assert [e.name for e in span.events] == ["exception"]
    (point,) = mem.metric_points("app.operation.duration")
    assert point.attributes == {
        "operation.name": "fal.submit",
        "operation.kind": "external_call",
        "error.type": "TimeoutError",
    }


def test_monitor_counts_calls_and_errors_in_one_histogram(mem: InMemoryTelemetry) -> None:
    @monitor("job", **_providers(mem))
    def job(fail: bool) -> None:
        if fail:
            raise ValueError("bad")

    for fail in (False, False, True):
        with contextlib.suppress(ValueError):
            job(fail)
    counts = {p.attributes.get("error.type", ""): p.count for p in mem.metric_points("app.operation.duration")}
    assert counts == {"": 2, "ValueError": 1}


def test_monitor_async_decorator_spans_the_awaited_call(mem: InMemoryTelemetry) -> None:
    @monitor("poll", kind="external_call", **_providers(mem))
    async def poll() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(poll()) == "done"
    (span,) = mem.spans()
    assert span.duration_ns >= 10_000_000
    assert mem.metric_points("app.operation.duration")[0].sum >= 0.01


def test_monitor_context_manager_yields_the_span_and_parents_inner_spans(mem: InMemoryTelemetry) -> None:
    with monitor("nightly-report", **_providers(mem)) as span:
        span.set_attribute("report.rows", 12)
        with mem.tracer().start_as_current_span("inner"):
            pass
    spans = {s.name: s for s in mem.spans()}
    assert spans["nightly-report"].attributes == {"report.rows": 12}
    assert spans["inner"].parent_span_id == spans["nightly-report"].span_id


def test_monitor_async_context_manager_records_errors(mem: InMemoryTelemetry) -> None:
    async def main() -> None:
        async with monitor("upload", kind="external_call", **_providers(mem)):
            raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        asyncio.run(main())
    (point,) = mem.metric_points("app.operation.duration")
    assert point.attributes["error.type"] == "ConnectionError"


def test_monitor_nested_use_of_one_instance(mem: InMemoryTelemetry) -> None:
    m = monitor("step", **_providers(mem))
    with m as outer, m as inner:
        assert outer is not inner
    assert [s.name for s in mem.spans()] == ["step", "step"]
    assert mem.metric_points("app.operation.duration")[0].count == 2


def test_monitor_decorated_calls_in_threads_are_independent(mem: InMemoryTelemetry) -> None:
    from concurrent.futures import ThreadPoolExecutor

    @monitor("work", **_providers(mem))
    def work(i: int) -> int:
        return i

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(work, range(20))) == list(range(20))
    assert len(mem.spans()) == 20
    assert mem.metric_points("app.operation.duration")[0].count == 20
    assert mem.metric_points("app.operation.active")[0].value == 0


def test_monitor_works_with_the_global_api_before_configure() -> None:
    # No provider given and none configured: the API's no-op/proxy objects; nothing raises.
    @monitor("early")
    def early() -> str:
        return "ok"

    assert early() == "ok"
    with monitor("early-block") as span:
        assert span is not None


def test_monitor_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError) as info:
        monitor("x", kind="cron")  # type: ignore[arg-type]
    assert str(info.value) == "unknown monitor kind 'cron'; expected one of: job, external_call"


def test_monitor_rejects_an_empty_name() -> None:
    with pytest.raises(ValueError) as info:
        monitor(" ")
    assert str(info.value) == "monitor name must be a non-empty string, got ' '"


def test_monitor_rejects_generator_functions() -> None:
    def rows() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError) as info:
        monitor("rows")(rows)
    assert str(info.value) == (
        "monitor('rows') cannot decorate the generator function"
        " test_monitor_rejects_generator_functions.<locals>.rows: it would measure only the creation of the"
        " generator; use `with monitor(...)` inside it instead"
    )


def test_monitor_one_instance_shared_by_overlapping_asyncio_tasks(mem: InMemoryTelemetry) -> None:
    # One context manager, two tasks whose calls overlap: a enters, b enters, a exits, b exits.
    # Each exit must end its own task's span and leave its own task's span current.
    shared = monitor("shared.call", **_providers(mem))
    seen: dict[str, Any] = {}

    async def first(b_entered: asyncio.Event, a_exited: asyncio.Event) -> None:
        async with shared as span:
            seen["a"] = span
            await b_entered.wait()
        seen["a recording after exit"] = span.is_recording()
        a_exited.set()

    async def second(b_entered: asyncio.Event, a_exited: asyncio.Event) -> None:
        async with shared as span:
            seen["b"] = span
            b_entered.set()
            await a_exited.wait()
            seen["b recording after a exited"] = span.is_recording()
            seen["b current after a exited"] = trace.get_current_span() is span

    async def main() -> None:
        b_entered, a_exited = asyncio.Event(), asyncio.Event()
        await asyncio.gather(first(b_entered, a_exited), second(b_entered, a_exited))

    asyncio.run(main())
    assert seen["a"] is not seen["b"]
    assert seen["a recording after exit"] is False
    assert seen["b recording after a exited"] is True
    assert seen["b current after a exited"] is True
    assert sorted(s.name for s in mem.spans()) == ["shared.call", "shared.call"]
    (point,) = mem.metric_points("app.operation.duration")
    assert point.count == 2


def test_monitor_one_instance_shared_by_overlapping_threads(mem: InMemoryTelemetry) -> None:
    shared = monitor("shared.job", **_providers(mem))
    b_entered, a_exited = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def first() -> None:
        with shared as span:
            seen["a"] = span
            assert b_entered.wait(10)
        seen["a recording after exit"] = span.is_recording()
        a_exited.set()

    def second() -> None:
        span = shared.__enter__()
        seen["b"] = span
        b_entered.set()
        assert a_exited.wait(10)
        seen["b recording after a exited"] = span.is_recording()
        seen["b current after a exited"] = trace.get_current_span() is span
        shared.__exit__(None, None, None)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["a recording after exit"] is False
    assert seen["b recording after a exited"] is True
    assert seen["b current after a exited"] is True
    assert len(mem.spans()) == 2
