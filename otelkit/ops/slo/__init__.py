"""Service level objectives → Prometheus alerting rules.

A small YAML spec (``stack/slo.yaml`` is the annotated default) names the objectives; every key is
optional and defaults to the values below, and an objective set to ``false`` renders no alert::

    version: 1
    http:
      availability: {objective: 99.9%, period: 30d}     # multi-window burn-rate alerts (page + ticket)
      error_rate: {max: 5%, window: 5m, for: 2m, severity: critical}
      latency: {quantile: 0.95, max: 2s, window: 5m, for: 5m, severity: warning}   # per route
    celery:
      queue_latency: {quantile: 0.95, max: 60s, window: 5m, for: 5m, severity: critical}
      task_duration: {quantile: 0.95, max: 300s, window: 5m, for: 10m, severity: warning}
      success_rate: {min: 95%, window: 15m, for: 10m, severity: warning}
    process:
      memory: {max: 1GB, for: 10m, severity: info}
    collector:
      exporter_failures: {window: 5m, for: 5m, severity: warning}
      queue_usage: {max: 80%, for: 5m, severity: warning}
    targets:
      down: {for: 1m, severity: critical}

:func:`load_spec` parses and checks a spec (one :class:`~otelkit.errors.ConfigError` naming the file,
the key, the bad value and what is accepted); :func:`rule_groups` turns it into rule groups as data;
:func:`render_alerts` lays them out with ``templates/prometheus/alerts.yaml.j2``.

The rules query the names the collector's ``prometheus`` exporter gives otelkit's metrics (dots →
``_``, unit suffix, ``_total`` on counters) and group by ``service_name``, the label the exporter
makes of the ``service.name`` resource attribute. The availability SLI counts a request as good
unless it was answered with a 5xx; its burn-rate thresholds follow the Google SRE workbook
(2 % of the budget in 1 h or 5 % in 6 h pages; 10 % in 1 d or 3 d opens a ticket), scaled to
``period``.
"""

from __future__ import annotations

from otelkit.ops.slo.alertmanager import alertmanager_config, render_alertmanager
from otelkit.ops.slo.routing import INTEGRATIONS, Alerting, Integration, Receiver
from otelkit.ops.slo.rules import Rule, RuleGroup, alert_names, render_alerts, rule_groups
from otelkit.ops.slo.spec import (
    SEVERITIES,
    Availability,
    Objective,
    SLOSpec,
    default_spec,
    load_spec,
    parse_duration,
    parse_spec,
)

__all__ = [
    "INTEGRATIONS",
    "SEVERITIES",
    "Alerting",
    "Availability",
    "Integration",
    "Objective",
    "Receiver",
    "Rule",
    "RuleGroup",
    "SLOSpec",
    "alert_names",
    "alertmanager_config",
    "default_spec",
    "load_spec",
    "parse_duration",
    "parse_spec",
    "render_alertmanager",
    "render_alerts",
    "rule_groups",
]
