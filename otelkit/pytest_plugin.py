"""pytest fixtures for testing OpenTelemetry instrumentation (registered as the ``otelkit`` plugin).

- ``otlp_receiver``: a started :class:`otelkit.testing.OTLPReceiver` on a free 127.0.0.1 port,
  stopped after the test. Point exporters or a subprocess at ``otlp_receiver.endpoint``.
- ``otel_memory``: an :class:`otelkit.testing.InMemoryTelemetry` (in-memory tracer, meter and
  logger providers, never installed globally), shut down after the test.

Without the entry point (e.g. inside otelkit's own repository before installation), enable it
with ``pytest_plugins = ["otelkit.pytest_plugin"]`` in a ``conftest.py``. The imports happen
inside the fixtures, so merely having otelkit installed costs other test suites nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from otelkit.testing import InMemoryTelemetry, OTLPReceiver

__all__ = ["otel_memory", "otlp_receiver"]


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A running OTLP/HTTP receiver on 127.0.0.1 and a free port, for one test."""
    from otelkit.testing import OTLPReceiver

    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def otel_memory() -> Iterator[InMemoryTelemetry]:
    """In-memory SDK providers for one test; pass its providers to the code under test."""
    from otelkit.testing import InMemoryTelemetry

    with InMemoryTelemetry() as telemetry:
        yield telemetry
