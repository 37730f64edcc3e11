from __future__ import annotations

import logging
import threading
import time

import pytest

from otelkit._runtime import shutdown as _shutdown


class Stuck:
    """A provider whose flush hangs like an exporter retrying against a dead collector."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.shutdown_called = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.release.wait(30)
        return False

    def shutdown(self) -> None:
        self.shutdown_called = True


class Quick:
    def __init__(self) -> None:
        self.flushed = 0
        self.shut = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushed += 1
        return True

    def shutdown(self) -> None:
        self.shut += 1


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no provider registered and nothing shut down (restored afterwards)."""
    monkeypatch.setattr(_shutdown, "_providers", [])
    monkeypatch.setattr(_shutdown, "_finished", [])
    monkeypatch.setattr(_shutdown, "_shut", [False])
    monkeypatch.setattr(_shutdown, "_stalled", [False])
    monkeypatch.setattr(_shutdown, "_timeout", [3.0])


def test_shutdown_shuts_down_each_provider_once():
    a, b = Quick(), Quick()
    _shutdown.register([a, b], timeout=2)
    assert _shutdown.shutdown_all()
    assert _shutdown.shutdown_all()
    assert (a.flushed, a.shut, b.flushed, b.shut) == (0, 1, 0, 1)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_shutdown_gives_up_on_a_stuck_provider_and_says_so():
    # A handler on the "otelkit" logger itself: other tests may reconfigure root logging.
    logger = logging.getLogger("otelkit")
    collect = _Collect()
    logger.addHandler(collect)
    logger.disabled = False
    stuck, quick = Stuck(), Quick()
    _shutdown.register([stuck, quick], timeout=0.3)
    started = time.monotonic()
    assert not _shutdown.flush_all()
    elapsed_first = time.monotonic() - started
    # A second call in the same exit sequence gets only the short grace, not the full timeout again.
    assert not _shutdown.flush_all()
    stuck.release.set()
    assert quick.flushed == 2
    assert elapsed_first < 5
    logger.removeHandler(collect)
    assert any("flushing of telemetry did not finish within 0.3s" in m for m in collect.messages)


def test_shutdown_signal_handler_only_over_default(monkeypatch):
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert _shutdown.install_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is _shutdown._on_sigterm

        def mine(signum, frame):
            pass

        signal.signal(signal.SIGTERM, mine)
        assert not _shutdown.install_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_flush_and_shutdown_run_exports_unpaced():
    from otelkit._runtime.otlp import fast as _otlp

    seen: list[int] = []

    class Recording(Quick):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            seen.append(_otlp._unpaced[0])
            return True

        def shutdown(self) -> None:
            seen.append(_otlp._unpaced[0])

    _shutdown.register([Recording()], timeout=2)
    assert _shutdown.flush_all()
    assert _shutdown.shutdown_all()
    assert seen == [1, 1]
    assert _otlp._unpaced[0] == 0


def test_flush_while_another_thread_is_importing_the_encoder(monkeypatch):
    """The deferred exporters' warm-up thread may be importing the fast exporters when the app flushes."""
    import sys
    import types

    name = "otelkit._runtime.otlp.fast"
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))  # no attributes yet
    quick = Quick()
    _shutdown.register([quick], timeout=2)
    assert _shutdown.flush_all()
    assert quick.flushed == 1


def test_shutdown_after_lifespan_end_exports_every_metric_series_once():
    import asyncio

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader

    from otelkit._runtime.http import asgi as _asgi

    class Counting(MetricExporter):
        def __init__(self) -> None:
            super().__init__()
            self.points: list[str] = []

        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
            for resource in metrics_data.resource_metrics:
                for scope in resource.scope_metrics:
                    self.points += [m.name for m in scope.metrics]
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
            pass

    exporter = Counting()
    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    meters.get_meter("t").create_counter("orders").add(1)
    spans = Quick()
    _shutdown.register([spans, meters], timeout=5)
    sent: list[str] = []

    async def send(message) -> None:
        sent.append(message["type"])

    # uvicorn's SIGTERM path: lifespan shutdown complete, then the exit hook.
    asyncio.run(_asgi._flush_on_shutdown(send)({"type": "lifespan.shutdown.complete"}))
    assert _shutdown.shutdown_all()
    assert sent == ["lifespan.shutdown.complete"]
    assert exporter.points == ["orders"]  # once, not once per flush and once more at shutdown
    assert (spans.flushed, spans.shut) == (1, 1)


def test_shutdown_while_the_fast_exporter_module_is_still_being_imported(monkeypatch):
    # A short script exits while the deferred exporters are being built on another thread: the
    # module is in sys.modules, half-initialized, without `unpaced` yet.
    import sys
    import types

    monkeypatch.setitem(sys.modules, "otelkit._runtime.otlp.fast", types.ModuleType("otelkit._runtime.otlp.fast"))
    provider = Quick()
    _shutdown.register([provider], timeout=2)
    assert _shutdown.shutdown_all()
    assert provider.shut == 1
