"""The links every alert carries: its runbook, and the traces to open first.

``runbook_url`` is ``alerting.runbooks`` + ``<alert>.md`` (by default ``docs/runbooks/<alert>.md``,
a file in this repository; ``tests/unit/test_runbooks.py`` keeps alerts and pages in step).
``traces_url`` is a Jaeger UI search for the alert's service over the last hour, narrowed to what
the alert is about: failed spans for error alerts, spans slower than the threshold for latency
alerts, the task's ``run/<task>`` spans for task alerts, the status code for security alerts.
Alerts that are not about a service (the collector, scrape targets, Alertmanager) have none.
Both are Prometheus templates (``$labels``), expanded when the alert fires.
"""

from __future__ import annotations

import urllib.parse

from otelkit.ops.slo.routing import Alerting

__all__ = ["TRACE_SEARCHES", "links"]

_ERROR = {"error": "true"}


def _tags(tags: dict[str, str]) -> str:
    # Jaeger's UI takes the tags as a JSON object in the query string.
    body = ",".join(f'"{k}":"{v}"' for k, v in tags.items())
    return "tags=" + urllib.parse.quote("{" + body + "}", safe="")


_TASK_OPERATION = "operation=run%2F{{ $labels.celery_task_name | urlquery }}"

TRACE_SEARCHES: dict[str, tuple[str, ...]] = {
    "HTTPErrorBudgetBurnFast": (_tags(_ERROR),),
    "HTTPErrorBudgetBurnSlow": (_tags(_ERROR),),
    "HTTPErrorRateHigh": (_tags(_ERROR),),
    "HTTPLatencyHigh": ("minDuration={threshold}",),
    "HTTPAuthFailuresHigh": (_tags({"http.response.status_code": "401"}),),
    "HTTPRateLimitedHigh": (_tags({"http.response.status_code": "429"}),),
    "CeleryQueueLatencyHigh": (),
    "CeleryTaskDurationHigh": (_TASK_OPERATION, "minDuration={threshold}"),
    "CeleryTaskSuccessRateLow": (_TASK_OPERATION, _tags(_ERROR)),
    "CeleryBacklogGrowing": (),
    "CeleryWorkersOffline": (),
    "ProcessMemoryHigh": (),
}
"""Alerts about a service, and what their Jaeger search adds to ``service`` (``{threshold}``: the
objective's threshold as a Jaeger duration)."""


def links(alert: str, alerting: Alerting, threshold: str = "") -> dict[str, str]:
    """The ``runbook_url`` (and, for alerts about a service, ``traces_url``) annotations of ``alert``."""
    result = {"runbook_url": alerting.runbook_url(alert)}
    if alerting.jaeger_url is not None and alert in TRACE_SEARCHES:
        query = [
            "service={{ $labels.service_name | urlquery }}",
            *(part.replace("{threshold}", threshold) for part in TRACE_SEARCHES[alert]),
            "lookback=1h",
            "limit=20",
        ]
        result["traces_url"] = f"{alerting.jaeger_url}/search?{'&'.join(query)}"
    return result
