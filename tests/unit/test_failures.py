"""Failures inside the user's process (hooks, flushes) are visible at otelkit's INFO level: the
first of each kind at WARNING with its traceback, then at most one line per interval."""

from __future__ import annotations

import logging

import pytest

from otelkit._runtime import failures
from otelkit._runtime.celery import hooks as celery_hooks
from otelkit.testing import InMemoryTelemetry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(failures, "_seen", {})
    monkeypatch.setattr(failures, "_clock", clock)
    return clock


class Broken:
    @property
    def name(self) -> str:
        raise RuntimeError("broken task object")


def test_celery_hook_failure_is_a_warning_with_traceback_then_rate_limited(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with InMemoryTelemetry() as mem:
        hooks = celery_hooks._Hooks(mem.meter_provider)
        with caplog.at_level(logging.INFO, logger="otelkit"):
            hooks.prerun(task_id="b-1", task=Broken())
            hooks.prerun(task_id="b-2", task=Broken())
            hooks.prerun(task_id="b-3", task=Broken())
            clock.now += 31  # past the default interval (OTELKIT_EXPORT_ERROR_INTERVAL, 30 s)
            hooks.prerun(task_id="b-4", task=Broken())
    records = [r for r in caplog.records if r.name == "otelkit"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "otelkit: the Celery task_prerun hook failed; continuing without it for this task"),
        (
            logging.WARNING,
            "otelkit: the Celery task_prerun hook failed; continuing without it for this task"
            " (2 more failures since the last report)",
        ),
    ]
    assert all(r.exc_info is not None and "broken task object" in str(r.exc_info[1]) for r in records)


def test_failures_of_different_kinds_are_reported_separately(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    with InMemoryTelemetry() as mem:
        hooks = celery_hooks._Hooks(mem.meter_provider)
        with caplog.at_level(logging.INFO, logger="otelkit"):
            hooks.prerun(task_id="b-1", task=Broken())
            hooks.revoked(sender=Broken(), request=None)
    assert [r.getMessage().split(" hook")[0] for r in caplog.records if r.name == "otelkit"] == [
        "otelkit: the Celery task_prerun",
        "otelkit: the Celery task_revoked",
    ]
