"""The ``alerting`` section of the SLO spec and the Alertmanager configuration rendered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import run_cli

from otelkit.errors import ConfigError
from otelkit.ops import slo

SECRETS = "/etc/alertmanager/secrets"
EVERY_RECEIVER: dict[str, Any] = {
    "routes": {"critical": ["pager", "hook"], "warning": ["chat"], "info": []},
    "receivers": {
        "pager": {
            "pagerduty": {"routing_key_file": f"{SECRETS}/pd", "url": "https://events.eu.pagerduty.com/v2/enqueue"}
        },
        "chat": {
            "slack": {"api_url_file": f"{SECRETS}/slack", "channel": "#alerts"},
            "email": {
                "to": "oncall@example.com",
                "from": "am@example.com",
                "smarthost": "smtp.example.com:587",
                "auth_username": "am",
                "auth_password_file": f"{SECRETS}/smtp",
            },
        },
        "hook": {"webhook": {"url": "https://hooks.example.com/alerts", "bearer_token_file": f"{SECRETS}/hook"}},
    },
}


def config(alerting: Any) -> dict[str, Any]:
    spec = slo.parse_spec({"alerting": alerting}, "slo.yaml")
    return dict(yaml.safe_load(slo.render_alertmanager(spec)))


def receivers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["receivers"]}


# --- the default ---------------------------------------------------------------------------------


def test_alertmanager_default_routes_by_severity_to_silent_receivers() -> None:
    doc = config(None)
    route = doc["route"]
    assert route["receiver"] == "unrouted"
    assert route["group_by"] == ["alertname", "service_name"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    assert [(r["matchers"], r["receiver"], r.get("continue", False)) for r in route["routes"]] == [
        (['severity="critical"'], "pager", False),
        (['severity="warning"'], "tickets", False),
        (['severity="info"'], "tickets", False),
    ]
    assert doc["receivers"] == [{"name": "unrouted"}, {"name": "pager"}, {"name": "tickets"}]


def test_alertmanager_inhibit_rules_let_a_page_silence_its_own_tickets() -> None:
    rules = config(None)["inhibit_rules"]
    assert rules == [
        {
            "source_matchers": ['severity="critical"', 'slo=~".+"'],
            "target_matchers": ['severity=~"warning|info"'],
            "equal": ["slo", "service_name"],
        },
        {
            "source_matchers": ['alertname="CeleryWorkersOffline"'],
            "target_matchers": ['alertname="CeleryBacklogGrowing"'],
            "equal": ["service_name"],
        },
    ]
    # Both burn-rate alerts and the error-rate page belong to the availability SLO.
    labels = {r.name: r.labels for g in slo.rule_groups(slo.default_spec()) for r in g.rules if r.kind == "alert"}
    assert labels["HTTPErrorBudgetBurnFast"] == {"severity": "critical", "slo": "availability"}
    assert labels["HTTPErrorBudgetBurnSlow"] == {"severity": "warning", "slo": "availability"}
    assert labels["HTTPErrorRateHigh"] == {"severity": "critical", "slo": "availability"}
    # Without the backlog alert there is nothing for the workers alert to silence.
    spec = slo.parse_spec({"celery": {"backlog": False}})
    assert len(yaml.safe_load(slo.render_alertmanager(spec))["inhibit_rules"]) == 1


# --- receivers -----------------------------------------------------------------------------------


def test_alertmanager_every_integration_reads_its_secret_from_a_file() -> None:
    doc = config(EVERY_RECEIVER)
    got = receivers(doc)
    assert [(r["matchers"], r["receiver"], r.get("continue", False)) for r in doc["route"]["routes"]] == [
        (['severity="critical"'], "pager", True),
        (['severity="critical"'], "hook", False),
        (['severity="warning"'], "chat", False),
    ]
    (pd,) = got["pager"]["pagerduty_configs"]
    assert (pd["routing_key_file"], pd["url"], pd["send_resolved"]) == (
        f"{SECRETS}/pd",
        "https://events.eu.pagerduty.com/v2/enqueue",
        True,
    )
    assert pd["links"] == [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "Runbook"}]
    (slack,) = got["chat"]["slack_configs"]
    assert (slack["api_url_file"], slack["channel"]) == (f"{SECRETS}/slack", "#alerts")
    assert ".Annotations.runbook_url" in slack["text"] and ".Annotations.traces_url" in slack["text"]
    (email,) = got["chat"]["email_configs"]
    assert (email["to"], email["smarthost"], email["auth_username"], email["auth_password_file"]) == (
        "oncall@example.com",
        "smtp.example.com:587",
        "am",
        f"{SECRETS}/smtp",
    )
    assert email["require_tls"] is True
    (hook,) = got["hook"]["webhook_configs"]
    assert hook == {
        "url": "https://hooks.example.com/alerts",
        "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials_file": f"{SECRETS}/hook"}},
    }
    # Routes and receivers merge with the defaults: the silent "tickets" is still there.
    assert list(got) == ["unrouted", "pager", "tickets", "chat", "hook"]


def test_alertmanager_user_text_stays_a_scalar() -> None:
    channel = "#alerts: ops # on-call\n---\nroute: {receiver: x}"
    with pytest.raises(ConfigError):
        config({"receivers": {"chat": {"slack": {"api_url_file": "/s", "channel": channel}}}})
    # What is accepted comes back out of the YAML exactly as written.
    odd = "#alerts: ops # 'on-call' \"x\" ${HOME}"
    doc = config({"receivers": {"chat": {"slack": {"api_url_file": "/run/secrets/a b: c", "channel": odd}}}})
    (slack,) = receivers(doc)["chat"]["slack_configs"]
    assert (slack["channel"], slack["api_url_file"]) == (odd, "/run/secrets/a b: c")


def test_alertmanager_secrets_never_reach_the_file() -> None:
    text = slo.render_alertmanager(slo.parse_spec({"alerting": EVERY_RECEIVER}))
    for key in ("api_url:", "routing_key:", "service_key:", "auth_password:", "bearer_token:", "credentials:"):
        assert key not in text


# --- errors, word for word -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        (
            {"receivers": {"chat": {"slack": {"channel": "#alerts"}}}},
            "slo.yaml: alerting.receivers.chat.slack: missing api_url_file; a Slack receiver reads its webhook URL"
            " from a file (api_url_file: /etc/alertmanager/secrets/slack_api_url); secrets are never written into"
            " the Alertmanager config",
        ),
        (
            {"receivers": {"pager": {"pagerduty": {}}}},
            "slo.yaml: alerting.receivers.pager.pagerduty: missing routing_key_file; a PagerDuty receiver reads its"
            " Events API v2 routing key from a file (routing_key_file:"
            " /etc/alertmanager/secrets/pagerduty_routing_key); secrets are never written into the Alertmanager"
            " config",
        ),
        (
            {
                "receivers": {
                    "mail": {"email": {"to": "a@b.c", "from": "d@b.c", "smarthost": "smtp:25", "auth_username": "u"}}
                }
            },
            "slo.yaml: alerting.receivers.mail.email: missing auth_password_file; auth_username 'u' needs its"
            " password in a file (auth_password_file: /etc/alertmanager/secrets/…); secrets are never written into"
            " the Alertmanager config",
        ),
        (
            {"receivers": {"chat": {"slack": {"api_url": "https://hooks.slack.com/services/T0/B0/XXXX"}}}},
            "slo.yaml: alerting.receivers.chat.slack.api_url: secrets are never written into the Alertmanager"
            " config; put the value in a file and name that file with api_url_file",
        ),
        (
            {"receivers": {"pager": {"pagerduty": {"routing_key": "abc"}}}},
            "slo.yaml: alerting.receivers.pager.pagerduty.routing_key: secrets are never written into the"
            " Alertmanager config; put the value in a file and name that file with routing_key_file",
        ),
        (
            {"receivers": {"hook": {"webhook": {"url_file": "/s"}}}},
            "slo.yaml: alerting.receivers.hook.webhook.url_file: Alertmanager 0.25 has no url_file for webhooks;"
            " put the URL in url and its token in bearer_token_file (or password_file with username)",
        ),
        (
            {"receivers": {"hook": {"webhook": {"url": "hooks.example.com"}}}},
            "slo.yaml: alerting.receivers.hook.webhook.url: invalid URL 'hooks.example.com'; expected an http:// or"
            " https:// URL",
        ),
        (
            # The password would be written into alertmanager.yaml (and the error never echoes it).
            {"receivers": {"hook": {"webhook": {"url": "https://ops:s3cret@hooks.example.com/alerts"}}}},
            "slo.yaml: alerting.receivers.hook.webhook.url: the URL carries credentials (user:password@ before the"
            " host), which would be written into the rendered file; remove them (a webhook authenticates with"
            " username and password_file, or bearer_token_file)",
        ),
        (
            {"receivers": {"hook": {"webhook": {"url": "https://ghp_t0ken@hooks.example.com/alerts"}}}},
            "slo.yaml: alerting.receivers.hook.webhook.url: the URL carries credentials (user:password@ before the"
            " host), which would be written into the rendered file; remove them (a webhook authenticates with"
            " username and password_file, or bearer_token_file)",
        ),
        (
            {"jaeger_url": "http://admin:s3cret@jaeger:16686"},
            "slo.yaml: alerting.jaeger_url: the URL carries credentials (user:password@ before the host), which"
            " would be written into the rendered file; remove them (a webhook authenticates with username and"
            " password_file, or bearer_token_file)",
        ),
        (
            # Alertmanager reads max_alerts as a uint64: 10**23 failed amtool check-config (0.25).
            {"receivers": {"hook": {"webhook": {"url": "https://h.example.com", "max_alerts": 10**23}}}},
            "slo.yaml: alerting.receivers.hook.webhook.max_alerts: expected a whole number from 0 to 4294967295;"
            " got 100000000000000000000000",
        ),
        (
            {"receivers": {"hook": {"webhok": {}}}},
            "slo.yaml: alerting.receivers.hook.webhok: unknown key; expected one of: webhook, slack, pagerduty,"
            " email (did you mean 'webhook'?)",
        ),
        (
            {"routes": {"critical": ["pagr"]}},
            "slo.yaml: alerting.routes.critical: unknown receiver 'pagr'; expected one of: pager, tickets (did you"
            " mean 'pager'?) (define it under alerting.receivers)",
        ),
        (
            {"routes": {"page": ["pager"]}},
            "slo.yaml: alerting.routes.page: unknown key; expected one of: critical, warning, info",
        ),
        (
            {"receivers": {"unrouted": {}}},
            "slo.yaml: alerting.receivers.unrouted: receiver name 'unrouted' is reserved for alerts no route takes;"
            " choose another name",
        ),
        (
            {"runbooks": "docs/runbooks"},
            "slo.yaml: alerting.runbooks: 'docs/runbooks' does not end with /; expected the URL or path each alert's"
            " <name>.md is appended to, such as docs/runbooks/ or https://github.com/acme/shop/blob/main/docs/runbooks/",
        ),
        (
            {"jaeger_url": "http://jaeger:16686/{{ $labels.x }}"},
            "slo.yaml: alerting.jaeger_url: templates are not supported here;"
            " got 'http://jaeger:16686/{{ $labels.x }}'",
        ),
        (
            {"group_wait": "soon"},
            "slo.yaml: alerting.group_wait: invalid duration 'soon'; expected a Prometheus duration from 1ms to 10y"
            " such as 30s, 5m, 1h or 1h30m",
        ),
    ],
)
def test_alertmanager_spec_errors_name_key_value_and_remedy(alerting: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        slo.parse_spec({"alerting": alerting}, "slo.yaml")
    assert str(info.value) == message


# --- links in the rules --------------------------------------------------------------------------


def test_alertmanager_links_follow_the_alerting_section() -> None:
    spec = slo.parse_spec(
        {"alerting": {"runbooks": "https://git.example.com/ops/runbooks/", "jaeger_url": "https://jaeger.example.com/"}}
    )
    rules = {r.name: r for g in slo.rule_groups(spec) for r in g.rules if r.kind == "alert"}
    assert (
        rules["HTTPLatencyHigh"].annotations["runbook_url"] == "https://git.example.com/ops/runbooks/HTTPLatencyHigh.md"
    )
    assert rules["HTTPLatencyHigh"].annotations["traces_url"] == (
        "https://jaeger.example.com/search?service={{ $labels.service_name | urlquery }}&minDuration=2s"
        "&lookback=1h&limit=20"
    )
    assert rules["CeleryTaskSuccessRateLow"].annotations["traces_url"] == (
        "https://jaeger.example.com/search?service={{ $labels.service_name | urlquery }}"
        "&operation=run%2F{{ $labels.celery_task_name | urlquery }}&tags=%7B%22error%22%3A%22true%22%7D"
        "&lookback=1h&limit=20"
    )
    # Alerts that are not about a service link no traces.
    assert "traces_url" not in rules["ScrapeTargetDown"].annotations
    no_jaeger = slo.parse_spec({"alerting": {"jaeger_url": False}})
    assert all(
        "traces_url" not in r.annotations for g in slo.rule_groups(no_jaeger) for r in g.rules if r.kind == "alert"
    )


# --- the command ---------------------------------------------------------------------------------


def test_render_alerts_writes_rules_and_alertmanager_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(yaml.safe_dump({"alerting": EVERY_RECEIVER}), encoding="utf-8")
    rules, routing = tmp_path / "alerts.yaml", tmp_path / "am" / "alertmanager.yaml"
    routing.parent.mkdir()
    code, out, err = run_cli(
        capsys, "render-alerts", "--spec", str(spec), "-o", str(rules), "--alertmanager", str(routing)
    )
    assert (code, out, err) == (0, "", f"wrote {rules}\nwrote {routing}\n")
    assert routing.read_text(encoding="utf-8") == slo.render_alertmanager(
        slo.load_spec(spec), command=f"otelkit render-alerts --spec {spec} -o {rules} --alertmanager {routing}"
    )
    assert "groups:" in rules.read_text(encoding="utf-8")


def test_render_alerts_receiver_without_its_secret_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text("alerting:\n  receivers:\n    chat:\n      slack: {channel: '#alerts'}\n", encoding="utf-8")
    rules, routing = tmp_path / "alerts.yaml", tmp_path / "alertmanager.yaml"
    code, out, err = run_cli(
        capsys, "render-alerts", "--spec", str(spec), "-o", str(rules), "--alertmanager", str(routing)
    )
    assert (code, out) == (2, "")
    assert err == (
        f"error: {spec}: alerting.receivers.chat.slack: missing api_url_file; a Slack receiver reads its webhook"
        " URL from a file (api_url_file: /etc/alertmanager/secrets/slack_api_url); secrets are never written into"
        " the Alertmanager config\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slo.yaml"]


def test_render_alerts_missing_alertmanager_directory_writes_neither_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules, routing = tmp_path / "alerts.yaml", tmp_path / "nope" / "alertmanager.yaml"
    code, out, err = run_cli(capsys, "render-alerts", "-o", str(rules), "--alertmanager", str(routing))
    assert (code, out) == (2, "")
    assert err == (
        f"error: cannot write {str(routing)!r}: directory {str(routing.parent)!r} does not exist;"
        " create it or choose another -o path\n"
    )
    assert list(tmp_path.iterdir()) == []
