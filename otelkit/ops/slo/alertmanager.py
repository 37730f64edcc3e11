"""From the ``alerting`` section of an :class:`~otelkit.ops.slo.SLOSpec` to an Alertmanager configuration.

The configuration is built as data here — route tree, inhibit rules, receivers — and laid out by
``templates/alertmanager/alertmanager.yaml.j2`` through the shared YAML filter, so every value the
user wrote reaches the file as a YAML scalar, never as raw text. It is valid for Alertmanager 0.25
(checked with ``amtool check-config`` in the tests) and newer:

- one route per (severity, receiver), in the order of the spec; a severity routed to several
  receivers gets one route each, all but the last with ``continue: true``. Alerts no route takes
  go to the silent ``unrouted`` receiver: visible in Alertmanager, sent nowhere;
- alerts are grouped by ``group_by`` (``alertname`` and ``service_name``): one notification per
  alert and service, updated as instances fire and resolve;
- inhibition: a critical alert of an SLO silences the warning and info alerts of the same SLO and
  service (label ``slo``: the fast burn-rate page silences the slow burn-rate ticket), and
  ``CeleryWorkersOffline`` silences ``CeleryBacklogGrowing`` of the same service;
- receivers read every secret from a file (``api_url_file``, ``routing_key_file``,
  ``auth_password_file``, ``credentials_file``); notifications link the runbook and the traces.
"""

from __future__ import annotations

from typing import Any

from otelkit.ops import templates
from otelkit.ops.slo.routing import UNROUTED, Alerting, Integration, Receiver
from otelkit.ops.slo.rules import alert_names
from otelkit.ops.slo.spec import SLOSpec

__all__ = ["alertmanager_config", "render_alertmanager"]

TEMPLATE = "alertmanager/alertmanager.yaml.j2"

# Notification text (Go templates that Alertmanager expands; written by otelkit, not user text).
_TITLE = (
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] '
    "{{ .CommonLabels.alertname }}{{ with .CommonLabels.service_name }} ({{ . }}){{ end }}"
)
_SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "{{ with .Annotations.runbook_url }}Runbook: {{ . }}{{ end }}"
    "{{ with .Annotations.traces_url }}\nTraces: {{ . }}{{ end }}\n{{ end }}"
)
_PAGERDUTY_DESCRIPTION = "{{ .CommonLabels.alertname }}: {{ .CommonAnnotations.summary }}"


def _webhook(i: Integration) -> dict[str, Any]:
    config: dict[str, Any] = {"url": i.get("url"), "send_resolved": i.get("send_resolved", True)}
    if i.get("max_alerts") is not None:
        config["max_alerts"] = i.get("max_alerts")
    if i.get("bearer_token_file"):
        config["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": i.get("bearer_token_file")}}
    elif i.get("username"):
        config["http_config"] = {"basic_auth": {"username": i.get("username"), "password_file": i.get("password_file")}}
    return config


def _slack(i: Integration) -> dict[str, Any]:
    config: dict[str, Any] = {"api_url_file": i.get("api_url_file"), "send_resolved": i.get("send_resolved", True)}
    if i.get("channel"):
        config["channel"] = i.get("channel")
    config.update({"title": _TITLE, "text": _SLACK_TEXT})
    return config


def _pagerduty(i: Integration) -> dict[str, Any]:
    config: dict[str, Any] = {
        "routing_key_file": i.get("routing_key_file"),
        "send_resolved": i.get("send_resolved", True),
    }
    if i.get("url"):
        config["url"] = i.get("url")
    config.update(
        {
            "severity": '{{ or .CommonLabels.severity "error" }}',
            "description": _PAGERDUTY_DESCRIPTION,
            "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}],
            "details": {"traces": "{{ .CommonAnnotations.traces_url }}"},
        }
    )
    return config


def _email(i: Integration) -> dict[str, Any]:
    config: dict[str, Any] = {
        "to": i.get("to"),
        "from": i.get("from"),
        "smarthost": i.get("smarthost"),
        "require_tls": i.get("require_tls", True),
        "send_resolved": i.get("send_resolved", True),
    }
    if i.get("auth_username"):
        config["auth_username"] = i.get("auth_username")
        config["auth_password_file"] = i.get("auth_password_file")
    config["headers"] = {"Subject": _TITLE}
    return config


_BUILDERS = {"webhook": _webhook, "slack": _slack, "pagerduty": _pagerduty, "email": _email}


def _receiver(receiver: Receiver) -> dict[str, Any]:
    config: dict[str, Any] = {"name": receiver.name}
    for integration in receiver.integrations:
        config[f"{integration.kind}_configs"] = [_BUILDERS[integration.kind](integration)]
    return config


def _routes(alerting: Alerting) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for severity, names in alerting.routes:
        for position, name in enumerate(names):
            route: dict[str, Any] = {"matchers": [f'severity="{severity}"'], "receiver": name}
            if position < len(names) - 1:
                route["continue"] = True
            routes.append(route)
    return routes


def _inhibit_rules(alert_names: set[str]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "source_matchers": ['severity="critical"', 'slo=~".+"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["slo", "service_name"],
        }
    ]
    if {"CeleryWorkersOffline", "CeleryBacklogGrowing"} <= alert_names:
        rules.append(
            {
                "source_matchers": ['alertname="CeleryWorkersOffline"'],
                "target_matchers": ['alertname="CeleryBacklogGrowing"'],
                "equal": ["service_name"],
            }
        )
    return rules


def alertmanager_config(alerting: Alerting, alerts: set[str]) -> dict[str, Any]:
    """The Alertmanager configuration as data; ``alert_names`` are the alerts the rules define."""
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": UNROUTED,
            "group_by": list(alerting.group_by),
            "group_wait": alerting.group_wait,
            "group_interval": alerting.group_interval,
            "repeat_interval": alerting.repeat_interval,
            "routes": _routes(alerting),
        },
        "inhibit_rules": _inhibit_rules(alerts),
        "receivers": [{"name": UNROUTED}, *(_receiver(r) for r in alerting.receivers)],
    }


def render_alertmanager(spec: SLOSpec, *, command: str = "otelkit render-alerts") -> str:
    """The Alertmanager configuration file for ``spec``; ``command`` is the one shown in its header."""
    config = alertmanager_config(spec.alerting, alert_names(spec))
    return templates.render(TEMPLATE, document=config, command=command, config=config)
