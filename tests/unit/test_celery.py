"""otelkit.celery in one process: an embedded worker on kombu's memory:// broker, in-memory providers."""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest
from celery import Celery, signals
from celery_worker import embedded_worker, memory_app
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from otelkit._runtime import instrument
from otelkit._runtime import shutdown as _shutdown
from otelkit._runtime.celery import hooks as otelkit_celery
from otelkit._runtime.celery import patches
from otelkit.context import get_request_id
from otelkit.testing import InMemoryTelemetry

COMMON = {"messaging.system": "celery", "messaging.destination.name": "celery"}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def mem() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as telemetry:
        yield telemetry


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(_shutdown, "flush_all", lambda timeout=None: calls.append("flush") or True)
    monkeypatch.setattr(_shutdown, "finish", lambda timeout=None: calls.append("finish") or True)
    return calls


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """Give the test a root logger whose handlers and level are restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def hooks(mem: InMemoryTelemetry, flushes: list[str], root_logging: logging.Logger) -> Iterator[_Records]:
    """Contrib's spans and otelkit's hooks into ``mem``; a root handler collecting records."""
    records = _Records()
    root_logging.addHandler(records)
    root_logging.setLevel(logging.INFO)
    CeleryInstrumentor().instrument(tracer_provider=mem.tracer_provider, meter_provider=mem.meter_provider)
    assert otelkit_celery.install(meter_provider=mem.meter_provider)
    yield records
    otelkit_celery.uninstall()
    CeleryInstrumentor().uninstrument()


def _make_app() -> Celery:
    app = memory_app("unit")
    log = logging.getLogger("unit.tasks")

    @app.task(name="unit.ok", shared=False)
    def ok(item: int) -> dict[str, Any]:
        log.info("ok ran", extra={"item": item})
        return {"request_id": get_request_id(), "item": item}

    @app.task(name="unit.fail", shared=False)
    def fail(item: int) -> None:
        log.info("fail ran")
        raise ValueError(f"item {item} is bad")

    @app.task(name="unit.flaky", shared=False, bind=True, max_retries=1, default_retry_delay=0)
    def flaky(self: Any, item: int) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return item

    @app.task(name="unit.own_id", shared=False)
    def own_id() -> None:
        log.info("own", extra={"celery.task.id": "mine"})

    return app


@pytest.fixture(scope="module")
def worker_app() -> Iterator[Celery]:
    """One embedded worker (solo pool, in a thread) for the module: stopping one takes seconds."""
    with embedded_worker(_make_app()) as app:
        yield app


@pytest.fixture
def app() -> Celery:
    """An app for tests without a worker."""
    return _make_app()


class _Finished:
    """Counts task_postrun signals (connected after otelkit's receivers, so it sees their work done)."""

    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()
        signals.task_postrun.connect(self, weak=False, dispatch_uid="unit-finished")

    def __call__(self, **kwargs: Any) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.count >= count, timeout), f"{self.count} of {count} tasks finished"

    def close(self) -> None:
        signals.task_postrun.disconnect(self, dispatch_uid="unit-finished")

    def last(self) -> None:
        """Connect again, after the receivers a test connected since (Celery calls them in that order)."""
        self.close()
        signals.task_postrun.connect(self, weak=False, dispatch_uid="unit-finished")


@pytest.fixture
def finished() -> Iterator[_Finished]:
    counter = _Finished()
    yield counter
    counter.close()


def _values(mem: InMemoryTelemetry, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    out = {}
    for point in mem.metric_points(name):
        out[tuple(sorted(point.attributes.items()))] = point.value if point.value is not None else point.count
    return out


def _key(**attributes: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(attributes.items()))


def test_celery_metrics_count_each_task_by_name_and_final_state(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    app = worker_app
    app.tasks["unit.ok"].delay(1)
    app.tasks["unit.ok"].delay(2)
    app.tasks["unit.fail"].delay(3)
    app.tasks["unit.flaky"].delay(4)
    finished.wait(5)  # the flaky task runs twice

    ok, fail, flaky = ({"celery.task.name": n, **COMMON} for n in ("unit.ok", "unit.fail", "unit.flaky"))
    assert _values(mem, "celery.task.started") == {_key(**ok): 2, _key(**fail): 1, _key(**flaky): 2}
    assert _values(mem, "celery.task.completed") == {
        _key(**ok, **{"celery.task.state": "success"}): 2,
        _key(**fail, **{"celery.task.state": "failure"}): 1,
        _key(**flaky, **{"celery.task.state": "retry"}): 1,
        _key(**flaky, **{"celery.task.state": "success"}): 1,
    }
    durations = _values(mem, "celery.task.duration")
    assert durations[_key(**ok, **{"celery.task.state": "success"})] == 2
    assert sum(durations.values()) == 5
    assert set(_values(mem, "celery.task.active").values()) == {0}
    waits = _values(mem, "celery.task.wait.duration")
    assert waits == {_key(**ok): 2, _key(**fail): 1, _key(**flaky): 2}


def test_celery_histograms_advise_buckets_from_5ms_to_10min(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    worker_app.tasks["unit.ok"].delay(1)
    finished.wait(1)
    for name in ("celery.task.duration", "celery.task.wait.duration"):
        (point,) = mem.metric_points(name)
        assert point.unit == "s"
        assert point.explicit_bounds == otelkit_celery.DURATION_BUCKETS
        assert point.explicit_bounds[0] == 0.005 and point.explicit_bounds[-1] == 600.0
        assert {60.0, 300.0} <= set(point.explicit_bounds)
    units = {p.name: p.unit for p in mem.metric_points() if p.name.startswith("celery.")}
    assert units["celery.task.started"] == units["celery.task.completed"] == units["celery.task.active"] == "{task}"


def test_celery_trace_continues_from_publisher_to_task_with_baggage(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    tracer = mem.tracer("unit")
    token = otel_context.attach(baggage.set_baggage("request.id", "req-unit-1"))
    try:
        with tracer.start_as_current_span("POST /orders/{order_id}", kind=trace.SpanKind.SERVER):
            result = worker_app.tasks["unit.ok"].delay(7)
        finished.wait(1)
    finally:
        otel_context.detach(token)

    spans = {s.name: s for s in mem.spans()}
    server, publish, run = spans["POST /orders/{order_id}"], spans["apply_async/unit.ok"], spans["run/unit.ok"]
    assert publish.parent_span_id == server.span_id
    assert run.parent_span_id == publish.span_id
    assert server.trace_id == publish.trace_id == run.trace_id
    (record,) = [r for r in hooks.records if r.getMessage() == "ok ran"]
    assert record.__dict__["celery.task.name"] == "unit.ok"
    assert record.__dict__["celery.task.id"] == result.id
    assert record.__dict__["item"] == 7
    # The task's histograms point at its run span (exemplars), though it ended before postrun.
    points = {p.name: p for p in mem.metric_points()}  # one collection: exemplars are reported once
    assert points["celery.task.duration"].exemplars == points["celery.task.wait.duration"].exemplars == 1


def test_celery_task_sees_the_request_id_from_the_message_baggage(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    seen: list[str | None] = []

    def remember(retval: Any = None, **kwargs: Any) -> None:
        seen.append(retval["request_id"])

    signals.task_postrun.connect(remember, weak=False, dispatch_uid="unit-remember")
    token = otel_context.attach(baggage.set_baggage("request.id", "req-unit-2"))
    try:
        worker_app.tasks["unit.ok"].delay(1)
        finished.wait(1)
    finally:
        otel_context.detach(token)
        signals.task_postrun.disconnect(remember, dispatch_uid="unit-remember")
    assert seen == ["req-unit-2"]


def test_celery_log_records_outside_tasks_have_no_task_fields(hooks: _Records) -> None:
    logging.getLogger("unit").info("not in a task")
    (record,) = hooks.records
    assert "celery.task.name" not in record.__dict__
    assert "celery.task.id" not in record.__dict__


def test_celery_log_fields_given_by_the_app_win(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    worker_app.tasks["unit.own_id"].delay()
    finished.wait(1)
    (record,) = [r for r in hooks.records if r.getMessage() == "own"]
    assert record.__dict__["celery.task.id"] == "mine"
    assert record.__dict__["celery.task.name"] == "unit.own_id"


def test_celery_log_filter_is_on_the_root_handlers(hooks: _Records) -> None:
    assert any(isinstance(f, otelkit_celery.TaskLogContext) for f in hooks.filters)


def test_celery_wait_duration_starts_at_the_eta(mem: InMemoryTelemetry) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)
    now = time.time()

    class Request:
        delivery_info: ClassVar[dict[str, str]] = {"routing_key": "default"}
        eta = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 2))
        otelkit_enqueued_at = now - 100  # published long ago with a countdown

    class Task:
        name = "unit.eta"
        request = Request()

    hooks.prerun(task_id="t-1", task=Task())
    hooks.postrun(task_id="t-1", task=Task(), state="SUCCESS")
    (point,) = mem.metric_points("celery.task.wait.duration")
    assert 1.5 < point.sum < 10
    assert point.attributes == {"celery.task.name": "unit.eta", "messaging.system": "celery"} | {
        "messaging.destination.name": "default"
    }


def test_celery_wait_duration_is_never_negative(mem: InMemoryTelemetry) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)

    class Request:
        delivery_info = None
        otelkit_enqueued_at = time.time() + 30  # the publisher's clock is ahead

    class Task:
        name = "unit.skew"
        request = Request()

    hooks.prerun(task_id="t-2", task=Task())
    hooks.postrun(task_id="t-2", task=Task(), state="SUCCESS")
    (point,) = mem.metric_points("celery.task.wait.duration")
    assert point.sum == 0
    assert "messaging.destination.name" not in point.attributes


def test_celery_no_wait_duration_without_the_enqueue_header(mem: InMemoryTelemetry) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)

    class Task:
        name = "unit.plain"
        request = type("Request", (), {"delivery_info": {}})()

    hooks.prerun(task_id="t-3", task=Task())
    hooks.postrun(task_id="t-3", task=Task(), state="SUCCESS")
    assert mem.metric_points("celery.task.wait.duration") == []
    assert [p.value for p in mem.metric_points("celery.task.started")] == [1]


def test_celery_retry_run_overlapping_its_failed_run_is_counted_once_each(mem: InMemoryTelemetry) -> None:
    # Threads pool: a task retried with countdown=0 keeps its id, and its next run can start in
    # another thread before the first run's task_postrun has been handled.
    hooks = otelkit_celery._Hooks(mem.meter_provider)

    class Task:
        name = "unit.retry"
        request = type("Request", (), {"delivery_info": {}})()

    first, second = contextvars.copy_context(), contextvars.copy_context()
    first.run(hooks.prerun, task_id="same-id", task=Task())
    second.run(hooks.prerun, task_id="same-id", task=Task())
    first.run(hooks.postrun, task_id="same-id", task=Task(), state="RETRY")
    second.run(hooks.postrun, task_id="same-id", task=Task(), state="SUCCESS")
    states = {p.attributes["celery.task.state"]: p.value for p in mem.metric_points("celery.task.completed")}
    assert states == {"retry": 1, "success": 1}
    assert [p.value for p in mem.metric_points("celery.task.active")] == [0]


def test_celery_publish_adds_the_enqueue_header() -> None:
    headers: dict[str, Any] = {"id": "x"}
    before = time.time()
    otelkit_celery._Hooks().before_publish(sender="unit.ok", headers=headers)
    assert before <= headers[otelkit_celery.ENQUEUED_AT_HEADER] <= time.time()


def test_celery_ignored_and_rejected_states_are_named(mem: InMemoryTelemetry) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)

    class Task:
        name = "unit.states"
        request = type("Request", (), {"delivery_info": {}})()

    for n, state in enumerate(("IGNORED", "REJECTED")):
        hooks.prerun(task_id=f"s-{n}", task=Task())
        hooks.postrun(task_id=f"s-{n}", task=Task(), state=state)
    states = {p.attributes["celery.task.state"] for p in mem.metric_points("celery.task.completed")}
    assert states == {"ignored", "rejected"}


def test_celery_revoked_task_counts_as_completed_revoked(mem: InMemoryTelemetry) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)
    request = type("Context", (), {"task": "unit.revoked", "delivery_info": {"routing_key": "low"}})()
    hooks.revoked(sender=None, request=request, terminated=False, signum=None, expired=False)
    (point,) = mem.metric_points("celery.task.completed")
    assert point.value == 1
    assert point.attributes == {
        "celery.task.name": "unit.revoked",
        "messaging.system": "celery",
        "messaging.destination.name": "low",
        "celery.task.state": "revoked",
    }
    assert mem.metric_points("celery.task.duration") == []


def test_celery_hooks_never_raise_into_the_worker(mem: InMemoryTelemetry, caplog: pytest.LogCaptureFixture) -> None:
    hooks = otelkit_celery._Hooks(mem.meter_provider)

    class Broken:
        @property
        def name(self) -> str:
            raise RuntimeError("broken task object")

    hooks.prerun(task_id="b-1", task=Broken())
    hooks.postrun(task_id="b-1", task=Broken(), state="SUCCESS")
    hooks.revoked(sender=Broken(), request=None)
    hooks.before_publish(headers="not a dict")
    assert mem.metric_points() == []


def test_celery_hooks_making_the_run_span_never_raise_and_leave_no_span_current(
    hooks: _Records, mem: InMemoryTelemetry
) -> None:
    """A task object whose request or name raises: no exception into the worker, no span left
    current, and a run span already started is ended rather than leaked."""
    installed = otelkit_celery._hooks[0]
    assert installed.run_spans is not None

    class BrokenRequest:
        name = "unit.broken"

        @property
        def request(self) -> Any:
            raise RuntimeError("broken request")

    class BrokenName:  # its name reads once (the span's), then raises (otelkit's metrics)
        request = type("Request", (), {"delivery_info": None, "hostname": "h"})()
        reads = 0

        @property
        def name(self) -> str:
            self.reads += 1
            if self.reads > 1:
                raise RuntimeError("broken name")
            return "unit.broken"

    before = otel_context.get_current()
    for task in (BrokenRequest(), BrokenName()):
        installed.prerun(task_id="b-2", task=task)
        installed.postrun(task_id="b-2", task=task, state="SUCCESS")
        assert otel_context.get_current() is before
    (span,) = mem.spans()  # BrokenName's: started, then ended by the failing hook itself
    assert span.name == "run/unit.broken" and span.end_time_ns >= span.start_time_ns


def test_celery_child_exit_and_worker_shutdown_flush(hooks: _Records, flushes: list[str]) -> None:
    signals.worker_process_shutdown.send(sender="celery@unit", pid=123, exitcode=0)
    assert flushes == ["flush"]
    signals.worker_shutdown.send(sender=None)
    assert flushes == ["flush", "finish"]


def test_celery_child_init_restores_the_flushing_sigterm_handler(hooks: _Records) -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # what Celery leaves in a child
    try:
        signals.worker_process_init.send(sender="celery@unit")
        assert signal.getsignal(signal.SIGTERM) is _shutdown._on_sigterm
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def celery_logging(
    app: Celery, hooks: _Records, root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], None]]:
    """Run Celery's worker logging set-up (as ``celery worker -l LEVEL`` does); ``hooks`` is the OTel handler."""
    from otelkit._runtime import state

    monkeypatch.setattr(state, "_otel_log_handler", hooks)
    app.conf.worker_hijack_root_logger = True  # Celery's default
    task_logger = logging.getLogger("celery.task")
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in (task_logger, logging.getLogger("celery"))]

    def setup(level: str) -> None:
        app.log.already_setup = False
        type(app.log)._setup = False
        app.log.setup_logging_subsystem(loglevel=level)

    yield setup
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _celery_console(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if type(h.formatter).__module__.startswith("celery")]


def test_celery_logging_is_celerys_own_and_runs_the_apps_receivers(
    celery_logging: Callable[[str], None], hooks: _Records, root_logging: logging.Logger
) -> None:
    ran: list[tuple[str, str]] = []

    def app_logger(logger: logging.Logger, **_: Any) -> None:
        ran.append(("after_setup_logger", logger.name))

    def app_task_logger(logger: logging.Logger, **_: Any) -> None:
        ran.append(("after_setup_task_logger", logger.name))

    signals.after_setup_logger.connect(app_logger)
    signals.after_setup_task_logger.connect(app_task_logger)
    try:
        celery_logging("WARNING")  # Celery's default -l
    finally:
        signals.after_setup_logger.disconnect(app_logger)
        signals.after_setup_task_logger.disconnect(app_task_logger)
    assert ran == [("after_setup_logger", "root"), ("after_setup_task_logger", "celery.task")]
    (console,) = _celery_console(root_logging)  # Celery's console, in Celery's format
    assert "%(processName)s" in console.formatter._fmt  # type: ignore[union-attr]
    # The OTel handler is back beside it, on the root logger and on the non-propagating task logger.
    assert hooks in root_logging.handlers
    task_logger = logging.getLogger("celery.task")
    assert hooks in task_logger.handlers and not task_logger.propagate
    assert root_logging.level == task_logger.level == logging.INFO
    logging.getLogger("celery.task.unit").info("task record")
    assert [r.getMessage() for r in hooks.records] == ["task record"]


def test_celery_logging_takes_the_more_verbose_level(
    celery_logging: Callable[[str], None], root_logging: logging.Logger
) -> None:
    celery_logging("DEBUG")
    assert root_logging.level == logging.getLogger("celery.task").level == logging.DEBUG


def test_celery_logging_leaves_celerys_own_loggers_at_the_workers_level(
    celery_logging: Callable[[str], None], hooks: _Records, root_logging: logging.Logger
) -> None:
    # Celery's default -l WARNING: the app's and the task's INFO records are exported, Celery's own
    # per-task INFO lines are not made, as without otelkit; its warnings still are.
    celery_logging("WARNING")
    assert root_logging.level == logging.INFO
    assert logging.getLogger("celery").level == logging.WARNING
    logging.getLogger("celery.worker.strategy").info("Task %s received", "t[1]")
    logging.getLogger("celery.app.trace").info("Task %s succeeded", "t[1]")
    logging.getLogger("celery.app.trace").warning("Task %s retry", "t[1]")
    logging.getLogger("celery.task.unit").info("task record")
    logging.getLogger("shop.views").info("app record")
    assert [r.getMessage() for r in hooks.records] == ["Task t[1] retry", "task record", "app record"]


def test_celery_logging_with_l_info_exports_celerys_own_records(
    celery_logging: Callable[[str], None], hooks: _Records
) -> None:
    celery_logging("INFO")
    logging.getLogger("celery.worker.strategy").info("Task %s received", "t[1]")
    assert [r.getMessage() for r in hooks.records] == ["Task t[1] received"]


def test_celery_logging_keeps_a_level_the_app_gave_celerys_logger(
    celery_logging: Callable[[str], None], hooks: _Records
) -> None:
    logging.getLogger("celery").setLevel(logging.DEBUG)
    celery_logging("WARNING")
    assert logging.getLogger("celery").level == logging.DEBUG
    logging.getLogger("celery.worker.strategy").info("Task %s received", "t[1]")
    assert [r.getMessage() for r in hooks.records] == ["Task t[1] received"]


def test_celery_logging_one_console_celerys_replaces_otelkits(
    celery_logging: Callable[[str], None], root_logging: logging.Logger
) -> None:
    from otelkit._runtime.logs import console as _logs

    root_logging.handlers[:] = []
    _logs.install_console("json", 30)
    celery_logging("INFO")
    consoles = [h for h in root_logging.handlers if isinstance(h, logging.StreamHandler)]
    assert consoles == _celery_console(root_logging) and len(consoles) == 1


def test_celery_logging_without_hijack_keeps_otelkits_console_and_adds_none(
    app: Celery, celery_logging: Callable[[str], None], root_logging: logging.Logger
) -> None:
    from otelkit._runtime.logs import console as _logs

    app.conf.worker_hijack_root_logger = False
    root_logging.handlers[:] = []
    console = _logs.install_console("json", 30)
    celery_logging("INFO")
    assert [h for h in root_logging.handlers if isinstance(h, logging.StreamHandler)] == [console]


def test_celery_without_otelkit_hooks_celery_empties_the_root_logger(root_logging: logging.Logger) -> None:
    # Celery's hijack: without otelkit's after_setup_logger receiver the OTel handler would be gone.
    app = Celery("plain", broker="memory://", set_as_current=False)
    marker = _Records()
    root_logging.addHandler(marker)
    app.log.already_setup = False
    type(app.log)._setup = False
    app.log.setup_logging_subsystem(loglevel="WARNING")
    assert marker not in root_logging.handlers


def test_celery_install_is_idempotent(hooks: _Records) -> None:
    assert otelkit_celery.install()
    ours = [r for r in signals.task_prerun.receivers if "otelkit.celery" in str(r[0])]
    assert len(ours) == 1


def test_celery_uninstall_disconnects_everything(mem: InMemoryTelemetry, root_logging: logging.Logger) -> None:
    otelkit_celery.install(meter_provider=mem.meter_provider)
    otelkit_celery.uninstall()
    for sig in (signals.task_prerun, signals.task_postrun, signals.after_setup_logger, signals.worker_process_shutdown):
        assert not [r for r in sig.receivers if "otelkit.celery" in str(r[0])]
    assert not any(isinstance(f, otelkit_celery.TaskLogContext) for h in root_logging.handlers for f in h.filters)


def test_celery_broker_client_commands_run_with_instrumentation_suppressed() -> None:
    seen: list[bool] = []

    class Pipeline:
        def execute(self) -> None:
            seen.append(is_instrumentation_enabled())

        def immediate_execute_command(self, *args: Any) -> None:
            seen.append(is_instrumentation_enabled())

    class Client:
        def execute_command(self, *args: Any) -> None:
            seen.append(is_instrumentation_enabled())

        def pipeline(self) -> Pipeline:
            return Pipeline()

    client = patches._quiet_client(Client())
    client.execute_command("PING")
    pipe = client.pipeline()
    pipe.execute()
    pipe.immediate_execute_command("WATCH")
    assert seen == [False, False, False]
    assert is_instrumentation_enabled()


def test_celery_broker_client_whose_class_cannot_change_is_returned_unharmed() -> None:
    class Slotted:  # no __dict__: neither a new class nor instance attributes can be given
        __slots__ = ("calls",)

        def __init__(self) -> None:
            self.calls = 0

        def execute_command(self, *args: Any) -> str:
            self.calls += 1
            return "PONG"

    client = Slotted()
    assert patches._quiet_client(client) is client
    assert type(client) is Slotted and client.execute_command("PING") == "PONG"


def test_celery_install_wraps_kombu_redis_channels_once_and_uninstall_restores(mem: InMemoryTelemetry) -> None:
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._create_client
    otelkit_celery.install(meter_provider=mem.meter_provider)
    try:
        wrapped = kombu_redis.Channel._create_client
        assert wrapped is not original
        patches.quiet_broker_redis()
        assert kombu_redis.Channel._create_client is wrapped
    finally:
        otelkit_celery.uninstall()
    assert kombu_redis.Channel._create_client is original


def test_celery_contrib_run_spans_of_one_task_id_are_kept_apart_per_thread(mem: InMemoryTelemetry) -> None:
    from opentelemetry.instrumentation.celery import utils

    otelkit_celery.install(meter_provider=mem.meter_provider)
    try:

        class Task:
            pass

        task, seen = Task(), {}
        barrier = threading.Barrier(2)

        def run(label: str) -> None:
            utils.attach_context(task, "same-id", label, None, None)
            barrier.wait()  # both runs attached before either looks
            seen[label] = utils.retrieve_context(task, "same-id")[0]
            utils.detach_context(task, "same-id")

        threads = [threading.Thread(target=run, args=(label,)) for label in ("first", "second")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"first": "first", "second": "second"}
    finally:
        otelkit_celery.uninstall()
    assert not hasattr(utils.attach_context, "_otelkit_original")


def test_api_load_instrumentor_celery_instruments_contrib_and_installs_hooks() -> None:
    try:
        assert instrument.instrument_by_name("celery", {}) is True
        assert CeleryInstrumentor().is_instrumented_by_opentelemetry
        assert otelkit_celery._hooks
        assert instrument.instrument_by_name("celery", {}) is True  # again: nothing changes, nothing raises
        assert len(otelkit_celery._hooks) == 1
    finally:
        otelkit_celery.uninstall()
        CeleryInstrumentor().uninstrument()


def test_api_instrument_all_logs_a_celery_failure_and_continues(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(kwargs: dict[str, Any]) -> None:
        raise RuntimeError("celery exploded")

    monkeypatch.setattr(instrument, "_instrument_celery", broken)
    monkeypatch.setattr(instrument, "_instrument_logging", lambda kwargs: None)
    monkeypatch.setattr(instrument, "instrument_by_name", lambda name, kwargs: True)
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        instrument.instrument_all(instrument.Settings())
    assert "otelkit: setting up celery after its import failed: celery exploded" in caplog.text


def test_celery_task_histograms_share_monitors_duration_buckets() -> None:
    # One definition of the 5 ms - 10 min boundaries (their 60 s and 300 s feed the SLO rules).
    from otelkit import celery
    from otelkit._runtime import monitor

    assert celery.DURATION_BUCKETS is monitor.DURATION_BUCKETS


# --- the run span, made in otelkit's receivers (sdk_compat "celery-run-span") ---------------------------


def _connected(signal: Any, receiver: Any) -> bool:
    return any(r == receiver for _, r in signal.receivers)


def _contrib_connected() -> tuple[bool, bool]:
    contrib = CeleryInstrumentor()
    prerun, postrun = contrib._trace_prerun, contrib._trace_postrun
    return _connected(signals.task_prerun, prerun), _connected(signals.task_postrun, postrun)


_PER_RUN = {"messaging.message.id", "messaging.message_id", "messaging.conversation_id"}  # the task id: new each run


def _run_shapes(worker_app: Celery, mem: InMemoryTelemetry, finished: _Finished) -> list[Any]:
    """Run unit.ok, unit.fail and unit.flaky (a retry, then a success); each run span's shape, ids out."""
    mem.clear()
    tracer = mem.tracer("unit")
    finished.count = 0  # before the tasks are sent: the worker may finish the first one at once
    with tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER):
        for name, arg in (("unit.ok", 3), ("unit.fail", 4), ("unit.flaky", 5)):
            worker_app.tasks[name].delay(arg)
    finished.wait(4)  # flaky runs twice
    # After uninstall() contrib's receivers are connected again after the counter's, so the last
    # run span can end just after the counter saw its task_postrun: wait for the four to end.
    deadline = time.monotonic() + 10
    while sum(s.name.startswith("run/") for s in mem.spans()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    spans = mem.spans()
    by_id = {s.span_id: s for s in spans}
    shapes = []
    for span in sorted((s for s in spans if s.name.startswith("run/")), key=lambda s: (s.name, s.start_time_ns)):
        parent = by_id.get(span.parent_span_id)
        attributes = {k: v for k, v in span.attributes.items() if k not in _PER_RUN}
        events = [
            (e.name, e.attributes.get("exception.type"), e.attributes.get("exception.message")) for e in span.events
        ]
        status = (span.status_code, span.status_message)
        ended = span.end_time_ns > span.start_time_ns
        shapes.append(
            (span.name, span.kind, parent and parent.name, attributes, *status, events, span.scope_name, ended)
        )
    return shapes


def test_celery_run_spans_made_by_otelkit_are_contribs_own(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    """The run span comes from otelkit's receivers, contrib's two disconnected (~40 µs a task less); a
    success, a failure (contrib's failure receiver still finds the span) and a retry give the spans
    contrib's own receivers give, and uninstall() connects contrib's back."""
    from otelkit._runtime import sdk_compat

    assert sdk_compat.CELERY_RUN_SPANS.on
    assert _contrib_connected() == (False, False)
    assert otelkit_celery._hooks[0].run_spans is not None
    otelkit = _run_shapes(worker_app, mem, finished)

    otelkit_celery.uninstall()
    assert _contrib_connected() == (True, True)
    contrib = _run_shapes(worker_app, mem, finished)

    assert [s[0] for s in otelkit] == ["run/unit.fail", "run/unit.flaky", "run/unit.flaky", "run/unit.ok"]
    assert otelkit == contrib
    fail = otelkit[0]
    assert fail[4] == "ERROR" and fail[6] == [("exception", "ValueError", "item 4 is bad")]
    assert otelkit[1][3]["celery.state"] == "RETRY" and otelkit[3][2] == "apply_async/unit.ok"


def test_celery_run_spans_taken_over_again_after_contrib_is_instrumented_again(
    worker_app: Celery, hooks: _Records, mem: InMemoryTelemetry, finished: _Finished
) -> None:
    """uninstrument() then instrument(): contrib connects its receivers again, otelkit takes them over
    again: one run span per run, never two; while uninstrumented, none."""
    CeleryInstrumentor().uninstrument()
    assert _contrib_connected() == (False, False)
    mem.clear()
    worker_app.tasks["unit.ok"].delay(1)
    finished.wait(1)
    assert [s.name for s in mem.spans() if s.name.startswith("run/")] == []

    CeleryInstrumentor().instrument(tracer_provider=mem.tracer_provider, meter_provider=mem.meter_provider)
    assert _contrib_connected() == (False, False)
    mem.clear()
    finished.count = 0
    worker_app.tasks["unit.ok"].delay(2)
    finished.wait(1)
    assert [s.name for s in mem.spans() if s.name.startswith("run/")] == ["run/unit.ok"]


def test_celery_run_spans_stay_contribs_when_it_links_or_the_path_is_off(
    worker_app: Celery, mem: InMemoryTelemetry, finished: _Finished, flushes: list[str]
) -> None:
    """contrib linking run spans to the publisher (use_span_links, contrib 0.62+) or the path's probe
    failing: contrib's receivers stay connected and make the one run span."""
    from otelkit._runtime import sdk_compat

    contrib = CeleryInstrumentor()
    for links, path_on in ((True, True), (False, False)):
        providers = {"tracer_provider": mem.tracer_provider, "meter_provider": mem.meter_provider}
        contrib.instrument(**providers, use_span_links=links)
        linking = getattr(contrib, "_use_span_links", False)  # contrib 0.61 has no links: otelkit takes over
        if not path_on:
            sdk_compat.CELERY_RUN_SPANS.switch_off("a test")
        try:
            assert otelkit_celery.install(meter_provider=mem.meter_provider)
            finished.last()  # contrib's receivers, connected since, end the run span when they make it
            made_by_contrib = linking or not path_on
            assert _contrib_connected() == (made_by_contrib, made_by_contrib)
            assert (otelkit_celery._hooks[0].run_spans is None) == made_by_contrib
            mem.clear()
            finished.count = 0
            with mem.tracer("unit").start_as_current_span("publisher"):
                worker_app.tasks["unit.ok"].delay(1)
            finished.wait(1)
            (run,) = [s for s in mem.spans() if s.name == "run/unit.ok"]
            (publish,) = [s for s in mem.spans() if s.name == "apply_async/unit.ok"]
            if linking:
                assert run.parent_span_id == "" and [link.span_id for link in run.links] == [publish.span_id]
            else:
                assert run.parent_span_id == publish.span_id
        finally:
            otelkit_celery.uninstall()
            contrib.uninstrument()
            sdk_compat.CELERY_RUN_SPANS.reset()
    assert _contrib_connected() == (False, False)
