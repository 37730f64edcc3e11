"""From an :class:`~otelkit.ops.slo.SLOSpec` to Prometheus rule groups (data), then to the rules file.

All decisions — series names, label groupings, windows, thresholds, annotations — are made here;
``templates/prometheus/alerts.yaml.j2`` only lays the groups out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from textwrap import indent
from typing import Any

from otelkit.ops import templates
from otelkit.ops.slo.links import links
from otelkit.ops.slo.spec import (
    FAST_BURN,
    SIZE_FACTOR,
    SLOW_BURN,
    Availability,
    Objective,
    SLOSpec,
    number,
    parse_duration,
)

__all__ = ["Rule", "RuleGroup", "alert_names", "document", "render_alerts", "rule_groups"]

TEMPLATE = "prometheus/alerts.yaml.j2"

# Series names as Prometheus sees them (collector prometheus exporter translation).
HTTP_COUNT = "http_server_request_duration_seconds_count"
HTTP_BUCKET = "http_server_request_duration_seconds_bucket"
HTTP_5XX = 'http_response_status_code=~"5.."'
CELERY_WAIT_BUCKET = "celery_task_wait_duration_seconds_bucket"
CELERY_DURATION_BUCKET = "celery_task_duration_seconds_bucket"
CELERY_COMPLETED = "celery_task_completed_total"
CELERY_QUEUE_LENGTH = "celery_queue_length"
CELERY_WORKERS_ONLINE = "celery_workers_online"
HTTP_AUTH_FAILURES = 'http_response_status_code=~"401|403"'
HTTP_RATE_LIMITED = 'http_response_status_code="429"'
PROCESS_MEMORY = "process_memory_usage_bytes"
# The collector's own counters carry no `_total` in 0.161 (its telemetry exporter adds no suffixes);
# other versions or settings add it, so match both spellings. One selector per signal, each rate
# labelled with its signal: rate() drops the metric name, and series of two signals of one exporter
# would otherwise collide ("vector cannot contain metrics with the same labelset").
COLLECTOR_SIGNALS = (("traces", "spans"), ("metrics", "metric_points"), ("logs", "log_records"))


def collector_rate(prefix: str, window: str) -> str:
    """``rate()`` of the collector counter ``prefix<signal items>`` for each signal, with a ``signal`` label."""
    return "\nor\n".join(
        f'label_replace(rate({{__name__=~"{prefix}{items}(_total)?"}}[{window}]), "signal", "{signal}", "", "")'
        for signal, items in COLLECTOR_SIGNALS
    )


ERROR_RATIO = "service_name:http_server_request_errors:ratio_rate"

# Prometheus template fragments of the annotations (expanded by Prometheus, not by Jinja).
SERVICE = "{{ $labels.service_name }}"
ROUTE = "{{ $labels.http_route }}"
TASK = "{{ $labels.celery_task_name }}"
QUEUE = "{{ $labels.messaging_destination_name }}"
AS_PERCENT = "{{ $value | humanizePercentage }}"
AS_DURATION = "{{ $value | humanizeDuration }}"


@dataclass(frozen=True)
class Rule:
    """A recording (``kind="record"``) or alerting (``kind="alert"``) rule."""

    kind: str
    name: str
    expr: str
    for_: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    name: str
    comment: str
    rules: tuple[Rule, ...]


def _human_bytes(size: float) -> str:
    for unit in ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB"):
        if size >= SIZE_FACTOR[unit] and size % SIZE_FACTOR[unit] == 0:
            return f"{number(size / SIZE_FACTOR[unit])}{unit}"
    return f"{number(size)}B"


def _p(objective: Objective) -> str:
    """``p95`` for quantile 0.95."""
    return f"p{number(objective.quantile * 100)}"


def _human_seconds(seconds: float) -> str:
    return f"{number(seconds * 1000)}ms" if seconds < 1 else f"{number(seconds)}s"


def _availability_group(a: Availability) -> RuleGroup:
    budget = 1 - a.objective
    period = parse_duration(a.period)
    windows = sorted(
        {w for pairs in (FAST_BURN, SLOW_BURN) for _, lw, sw in pairs for w in (lw, sw)}, key=parse_duration
    )
    rules: list[Rule] = [
        Rule(
            "record",
            f"{ERROR_RATIO}{w}",
            f"sum by (service_name) (rate({HTTP_COUNT}{{{HTTP_5XX}}}[{w}]))\n"
            f"/\nsum by (service_name) (rate({HTTP_COUNT}[{w}]))",
        )
        for w in windows
    ]

    def burn(pairs: tuple[tuple[float, str, str], ...]) -> str:
        parts = []
        for share, long, short in pairs:
            factor = number(share * period / parse_duration(long))
            limit = f"({factor} * {number(budget)})"
            parts.append(f"(\n  {ERROR_RATIO}{long} > {limit}\nand\n  {ERROR_RATIO}{short} > {limit}\n)")
        return "\nor\n".join(parts)

    objective = f"{number(a.objective * 100)}%"
    for name, pairs, for_, severity, what in (
        ("HTTPErrorBudgetBurnFast", FAST_BURN, "2m", "critical", "fast"),
        ("HTTPErrorBudgetBurnSlow", SLOW_BURN, "15m", "warning", "steadily"),
    ):
        spent = " or ".join(f"{number(share * 100)}% in {long}" for share, long, _ in pairs)
        rules.append(
            Rule(
                "alert",
                name,
                burn(pairs),
                for_,
                {"severity": severity, "slo": "availability"},
                {
                    "summary": f"{SERVICE} is burning its {objective} availability error budget {what}",
                    "description": f"At this 5xx rate the {a.period} error budget of {SERVICE} "
                    f"loses {spent}. Break errors down by http_route in the HTTP dashboard, check recent deploys "
                    "and dependencies, then the failing traces in Jaeger.",
                },
            )
        )
    return RuleGroup(
        "otelkit-http-availability",
        f"Availability {objective} over {a.period}: 5xx ratio per service and window; multi-window burn-rate alerts.",
        tuple(rules),
    )


def _http_group(spec: SLOSpec) -> RuleGroup | None:
    rules: list[Rule] = []
    if (o := spec.error_rate) is not None:
        rules.append(
            Rule(
                "alert",
                "HTTPErrorRateHigh",
                f"sum by (service_name) (rate({HTTP_COUNT}{{{HTTP_5XX}}}[{o.window}]))\n"
                f"/\nsum by (service_name) (rate({HTTP_COUNT}[{o.window}]))\n> {number(o.threshold)}",
                o.for_,
                {"severity": o.severity, "slo": "availability"},
                {
                    "summary": f"{SERVICE} answers more than {number(o.threshold * 100)}% of requests with 5xx",
                    "description": f"5xx ratio over {o.window} is {AS_PERCENT}. "
                    "See which routes fail in the HTTP dashboard and their traces and logs.",
                },
            )
        )
    if (o := spec.latency) is not None:
        q = number(o.quantile)
        rules.append(
            Rule(
                "alert",
                "HTTPLatencyHigh",
                f"histogram_quantile({q}, sum by (service_name, http_route, le) (rate({HTTP_BUCKET}[{o.window}])))"
                f"\n> {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"{_p(o)} latency of {SERVICE} {ROUTE} is above {_human_seconds(o.threshold)}",
                    "description": f"{_p(o)} over {o.window} is {AS_DURATION}. "
                    "Open an exemplar of the slow bucket to get its trace.",
                },
            )
        )
    if not rules:
        return None
    return RuleGroup("otelkit-http", "HTTP error rate and latency per service (and per route).", tuple(rules))


def _celery_group(spec: SLOSpec) -> RuleGroup | None:
    rules: list[Rule] = []
    if (o := spec.queue_latency) is not None:
        rules.append(
            Rule(
                "alert",
                "CeleryQueueLatencyHigh",
                f"histogram_quantile({number(o.quantile)}, sum by (service_name, messaging_destination_name, le) "
                f"(rate({CELERY_WAIT_BUCKET}[{o.window}])))\n> {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"Tasks wait more than {_human_seconds(o.threshold)} in queue {QUEUE}",
                    "description": f"{_p(o)} time from publish to start over {o.window} is "
                    f"{AS_DURATION}. Check that workers are up and busy (celery_task_active), "
                    "then scale them or look for slow tasks.",
                },
            )
        )
    if (o := spec.task_duration) is not None:
        rules.append(
            Rule(
                "alert",
                "CeleryTaskDurationHigh",
                f"histogram_quantile({number(o.quantile)}, sum by (service_name, celery_task_name, le) "
                f"(rate({CELERY_DURATION_BUCKET}[{o.window}])))\n> {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"Task {TASK} runs longer than {_human_seconds(o.threshold)} ({_p(o)})",
                    "description": f"{_p(o)} run time over {o.window} is {AS_DURATION}. "
                    "Look at the slowest traces of the task in Jaeger.",
                },
            )
        )
    if (o := spec.success_rate) is not None:
        by = "sum by (service_name, celery_task_name)"
        rules.append(
            Rule(
                "alert",
                "CeleryTaskSuccessRateLow",
                f'{by} (rate({CELERY_COMPLETED}{{celery_task_state="success"}}[{o.window}]))\n'
                f'/\n{by} (rate({CELERY_COMPLETED}{{celery_task_state!~"retry|ignored"}}[{o.window}]))\n'
                f"< {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"Less than {number(o.threshold * 100)}% of {TASK} tasks succeed",
                    "description": f"Success ratio over {o.window} (retries and ignored tasks are not outcomes) is "
                    f"{AS_PERCENT}. Find the failures in the worker logs in Loki.",
                },
            )
        )
    if (o := spec.backlog) is not None:
        by = "max by (service_name, messaging_destination_name)"
        rules.append(
            Rule(
                "alert",
                "CeleryBacklogGrowing",
                f"{by} ({CELERY_QUEUE_LENGTH}) > {number(o.threshold)}\n"
                f"and\n{by} (delta({CELERY_QUEUE_LENGTH}[{o.window}])) > 0",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"Celery queue {QUEUE} holds more than {number(o.threshold)} messages and grows",
                    "description": f"{{{{ $value }}}} messages wait in {QUEUE} (as {SERVICE} reads the broker), "
                    f"more than {o.window} ago. Workers take tasks slower than they arrive: scale them or "
                    "throttle the producer.",
                },
            )
        )
    if (o := spec.workers) is not None:
        rules.append(
            Rule(
                "alert",
                "CeleryWorkersOffline",
                f"max by (service_name) ({CELERY_WORKERS_ONLINE}) < {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"{SERVICE} publishes Celery tasks but fewer than {number(o.threshold)} workers answer",
                    "description": f"{{{{ $value }}}} workers answered the broadcast ping of {SERVICE} for {o.for_}: "
                    "its tasks are not running. Start the workers or read why they exit.",
                },
            )
        )
    if not rules:
        return None
    return RuleGroup(
        "otelkit-celery", "Celery queue wait, run time and outcomes per task; backlog and workers.", tuple(rules)
    )


def _security_group(spec: SLOSpec) -> RuleGroup | None:
    rules: list[Rule] = []
    for o, alert, record, statuses, what in (
        (spec.auth_failures, "HTTPAuthFailuresHigh", "auth_failures", HTTP_AUTH_FAILURES, "refused with 401 or 403"),
        (spec.rate_limited, "HTTPRateLimitedHigh", "rate_limited", HTTP_RATE_LIMITED, "answered 429 (rate limited)"),
    ):
        if o is None:
            continue
        series = f"service_name:http_server_{record}:ratio_rate{o.window}"
        rules.append(
            Rule(
                "record",
                series,
                f"sum by (service_name) (rate({HTTP_COUNT}{{{statuses}}}[{o.window}]))\n"
                f"/\nsum by (service_name) (rate({HTTP_COUNT}[{o.window}]))",
            )
        )
        rules.append(
            Rule(
                "alert",
                alert,
                f"{series} > {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"{SERVICE}: more than {number(o.threshold * 100)}% of requests {what}",
                    "description": f"Share over {o.window} is {AS_PERCENT}. See which routes and clients in the "
                    "HTTP dashboard and the traces; block or contact the client, or fix its credentials.",
                },
            )
        )
    if not rules:
        return None
    return RuleGroup(
        "otelkit-security",
        "Security signals from the HTTP metrics: authentication failures (401/403) and rate-limit hits (429).",
        tuple(rules),
    )


def _process_group(spec: SLOSpec) -> RuleGroup | None:
    if (o := spec.memory) is None:
        return None
    rule = Rule(
        "alert",
        "ProcessMemoryHigh",
        f"{PROCESS_MEMORY} > {number(o.threshold)}",
        o.for_,
        {"severity": o.severity},
        {
            "summary": f"{SERVICE} instance {{{{ $labels.instance }}}} uses {{{{ $value | humanize1024 }}}}B of memory",
            "description": f"Resident memory has stayed above {_human_bytes(o.threshold)} for {o.for_} "
            "(needs OTELKIT_SYSTEM_METRICS=true).",
        },
    )
    return RuleGroup("otelkit-process", "Process resources (system metrics).", (rule,))


def _pipeline_group(spec: SLOSpec) -> RuleGroup | None:
    rules: list[Rule] = []
    if (o := spec.exporter_failures) is not None:
        rules.append(
            Rule(
                "alert",
                "OtelCollectorExporterFailing",
                "sum by (job, instance, exporter, signal) (\n"
                + indent(collector_rate("otelcol_exporter_send_failed_", o.window), "  ")
                + "\n) > 0",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": "Collector exporter {{ $labels.exporter }} fails to send {{ $labels.signal }}",
                    "description": '{{ printf "%.2g" $value }} items/s are dropped after retries. '
                    "Check that the backend is up, then read the collector's log.",
                },
            )
        )
    if (o := spec.queue_usage) is not None:
        rules.append(
            Rule(
                "alert",
                "OtelCollectorQueueNearlyFull",
                "max by (job, instance, exporter) (otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)"
                f"\n> {number(o.threshold)}",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": f"Collector exporter {{{{ $labels.exporter }}}} queue is {AS_PERCENT} full",
                    "description": "When the sending queue is full new data is dropped. The backend is slow or down.",
                },
            )
        )
    if (o := spec.target_down) is not None:
        rules.append(
            Rule(
                "alert",
                "ScrapeTargetDown",
                "up == 0",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
                    "description": f"The target has been down for {o.for_}. No metrics arrive from it: "
                    "every other alert on its data is blind meanwhile.",
                },
            )
        )
    if (o := spec.notifications) is not None:
        rules.append(
            Rule(
                "alert",
                "AlertmanagerNotificationsFailing",
                f"sum by (job, instance, integration) (rate(alertmanager_notifications_failed_total[{o.window}])) > 0",
                o.for_,
                {"severity": o.severity},
                {
                    "summary": "Alertmanager fails to deliver notifications through {{ $labels.integration }}",
                    "description": '{{ printf "%.2g" $value }} notifications/s fail: alerts fire but nobody hears. '
                    "Read Alertmanager's log: a missing secret file or a refused endpoint.",
                },
            )
        )
    if not rules:
        return None
    return RuleGroup(
        "otelkit-pipeline",
        "The telemetry pipeline itself: scrape targets, the collector and Alertmanager.",
        tuple(rules),
    )


def _with_links(group: RuleGroup, spec: SLOSpec) -> RuleGroup:
    thresholds = {
        "HTTPLatencyHigh": spec.latency.threshold if spec.latency else 0.0,
        "CeleryTaskDurationHigh": spec.task_duration.threshold if spec.task_duration else 0.0,
    }
    rules = tuple(
        replace(
            rule,
            annotations={
                **rule.annotations,
                **links(rule.name, spec.alerting, _human_seconds(thresholds.get(rule.name, 0.0))),
            },
        )
        if rule.kind == "alert"
        else rule
        for rule in group.rules
    )
    return replace(group, rules=rules)


def rule_groups(spec: SLOSpec) -> list[RuleGroup]:
    """The rule groups ``spec`` asks for, in a fixed order (empty groups are left out).

    Every alert carries ``runbook_url``, and alerts about a service ``traces_url`` (see
    :mod:`otelkit.ops.slo.links`).
    """
    groups = [
        _availability_group(spec.availability) if spec.availability is not None else None,
        _http_group(spec),
        _security_group(spec),
        _celery_group(spec),
        _process_group(spec),
        _pipeline_group(spec),
    ]
    return [_with_links(g, spec) for g in groups if g is not None]


def alert_names(spec: SLOSpec) -> set[str]:
    """Names of the alerts ``spec`` renders."""
    return {rule.name for group in rule_groups(spec) for rule in group.rules if rule.kind == "alert"}


def document(groups: list[RuleGroup]) -> dict[str, Any]:
    """The rules file for ``groups`` as data: what the rendered YAML must parse back to."""
    out = []
    for group in groups:
        rules = []
        for rule in group.rules:
            entry: dict[str, Any] = {rule.kind: rule.name, "expr": rule.expr}
            if rule.for_:
                entry["for"] = rule.for_
            if rule.labels:
                entry["labels"] = dict(rule.labels)
            if rule.annotations:
                entry["annotations"] = dict(rule.annotations)
            rules.append(entry)
        out.append({"name": group.name, "rules": rules})
    return {"groups": out}


def render_alerts(spec: SLOSpec, *, command: str = "otelkit render-alerts") -> str:
    """The Prometheus rules file for ``spec``; ``command`` is the one shown in its header."""
    groups = rule_groups(spec)
    return templates.render(TEMPLATE, document=document(groups), command=command, groups=groups)
