"""Alerts that reach people, for real: rendered rules → Prometheus → Alertmanager → receivers.

Two paths. The first posts alerts straight into a real Alertmanager running the configuration
``otelkit render-alerts --alertmanager`` writes, with one receiver of each kind pointed at local
stand-ins (webhook, Slack, PagerDuty over HTTP; e-mail over SMTP), their secrets in files: each
delivery carries the secret read from its file, and the page silences its own ticket-level alert.
The second runs the product's whole path: the example app under the launcher → the collector →
Prometheus scraping it and evaluating the rules rendered from ``tests/data/slo-e2e.yaml`` (windows of
seconds) → Alertmanager → a webhook; a burst of 5xx and 401 answers fires a page and a ticket,
recovery resolves both.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from launch import BIN, REPO, app_env, start_app, wait_until
from notify import HttpRecorder, Posted, SmtpRecorder
from stackrun import start_stack_collector, start_stack_prometheus

from otelkit.local import procs as _procs

pytestmark = pytest.mark.e2e

OTELKIT = str(BIN / "otelkit")
E2E_SPEC = REPO / "tests" / "data" / "slo-e2e.yaml"
ERROR_TRACES = urllib.parse.quote('{"error":"true"}', safe="")


def render(tmp_path: Path, spec: dict[str, Any] | str) -> tuple[Path, Path]:
    """Run ``otelkit render-alerts`` on ``spec``: the (rules, alertmanager config) paths."""
    spec_path = tmp_path / "slo.yaml"
    spec_path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec), encoding="utf-8")
    rules, routing = tmp_path / "alerts.yaml", tmp_path / "alertmanager.yaml"
    result = subprocess.run(
        [OTELKIT, "render-alerts", "--spec", str(spec_path), "-o", str(rules), "--alertmanager", str(routing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return rules, routing


def start_alertmanager(procs: _procs.ProcessGroup, binary: Path, config: Path) -> str:
    port = _procs.free_port()
    url = f"http://127.0.0.1:{port}"
    procs.start(
        "alertmanager",
        [
            str(binary),
            f"--config.file={config}",
            f"--storage.path={procs.path('alertmanager-data')}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={url}",
            "--cluster.listen-address=",
        ],
    ).wait_http_ready(f"{url}/-/ready", timeout=60)
    return url


def firing(post: Posted, alertname: str, status: str = "firing") -> bool:
    body = post.body
    return isinstance(body, dict) and body.get("status") == status and body["groupLabels"]["alertname"] == alertname


# --- every receiver kind, secrets from files, inhibition -----------------------------------------------------------


def test_every_receiver_kind_passes_amtool_check_config_and_routes_by_severity(
    amtool_bin: Path, tmp_path: Path
) -> None:
    secrets = "/etc/alertmanager/secrets"
    spec = {
        "alerting": {
            "routes": {"critical": ["pager", "hook"], "warning": ["chat"], "info": []},
            "receivers": {
                "pager": {"pagerduty": {"routing_key_file": f"{secrets}/pagerduty_routing_key"}},
                "hook": {"webhook": {"url": "https://hooks.example.com/a", "username": "am", "password_file": "/s/p"}},
                "chat": {
                    "slack": {"api_url_file": f"{secrets}/slack_api_url", "channel": "#alerts"},
                    "email": {
                        "to": "oncall@example.com",
                        "from": "am@example.com",
                        "smarthost": "smtp.example.com:587",
                        "auth_username": "am",
                        "auth_password_file": f"{secrets}/smtp_password",
                    },
                },
            },
        }
    }
    _, routing = render(tmp_path, spec)
    checked = subprocess.run(
        [str(amtool_bin), "check-config", str(routing)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 2 inhibit rules\n - 5 receivers\n" in checked.stdout
    for labels, receivers in [
        (["severity=critical"], "pager,hook"),
        (["severity=warning"], "chat"),
        (["severity=info"], "unrouted"),
    ]:
        routed = subprocess.run(
            [str(amtool_bin), "config", "routes", "test", f"--config.file={routing}", *labels],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (routed.returncode, routed.stdout.strip()) == (0, receivers), routed.stderr


def test_alertmanager_routes_to_every_receiver_kind_with_secrets_read_from_files(
    alertmanager_bin: Path, procs: _procs.ProcessGroup, tmp_path: Path
) -> None:
    with HttpRecorder() as http, SmtpRecorder() as smtp:
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        (secrets / "pagerduty").write_text("pd-routing-key-123\n")
        (secrets / "hook").write_text("hook-token-456\n")
        (secrets / "slack").write_text(f"{http.url}/slack/T000/B000/XXXX\n")
        # Alertmanager 0.25 sends an e-mail password file byte for byte (newline included), unlike
        # the other secret files, which it trims: docs/stack.md says to write it without one.
        (secrets / "smtp").write_text("smtp-password-789")
        spec = {
            "http": {"availability": {"objective": "99.9%"}},
            "alerting": {
                "jaeger_url": "http://jaeger.example:16686",
                "group_wait": "1s",
                "group_interval": "1s",
                "routes": {"critical": ["pager", "hook"], "warning": ["chat"], "info": []},
                "receivers": {
                    "pager": {
                        "pagerduty": {"routing_key_file": str(secrets / "pagerduty"), "url": f"{http.url}/pagerduty"}
                    },
                    "hook": {"webhook": {"url": f"{http.url}/hook", "bearer_token_file": str(secrets / "hook")}},
                    "chat": {
                        "slack": {"api_url_file": str(secrets / "slack"), "channel": "#alerts"},
                        "email": {
                            "to": "oncall@example.com",
                            "from": "alertmanager@example.com",
                            "smarthost": smtp.address,
                            "auth_username": "alertmanager",
                            "auth_password_file": str(secrets / "smtp"),
                            "require_tls": False,
                        },
                    },
                },
            },
        }
        _, routing = render(tmp_path, spec)
        text = routing.read_text(encoding="utf-8")
        for secret in ("pd-routing-key-123", "hook-token-456", "/slack/T000", "smtp-password-789"):
            assert secret not in text
        am = start_alertmanager(procs, alertmanager_bin, routing)

        common = {"service_name": "shop", "slo": "availability"}
        annotations = {"summary": "shop burns its budget", "description": "d", "runbook_url": "docs/runbooks/X.md"}
        alerts = [
            {"labels": {"alertname": "HTTPErrorBudgetBurnFast", "severity": "critical", **common}, "annotations": {
                **annotations, "runbook_url": "docs/runbooks/HTTPErrorBudgetBurnFast.md",
                "traces_url": "http://jaeger.example:16686/search?service=shop"}},
            # The ticket of the same SLO and service: silenced by the page above.
            {"labels": {"alertname": "HTTPErrorBudgetBurnSlow", "severity": "warning", **common},
             "annotations": annotations},
            # A ticket of another SLO goes through, to chat: Slack and e-mail.
            {"labels": {"alertname": "HTTPLatencyHigh", "severity": "warning", "service_name": "shop"},
             "annotations": {**annotations, "summary": "p95 of shop is above 2s",
                             "runbook_url": "docs/runbooks/HTTPLatencyHigh.md"}},
        ]  # fmt: skip
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.post(f"{am}/api/v2/alerts", json=alerts).status_code == 200

            pd = http.wait_for(lambda p: p.path == "/pagerduty", timeout=30, what="the PagerDuty event")
            assert pd.body["routing_key"] == "pd-routing-key-123"
            assert pd.body["event_action"] == "trigger"
            assert pd.body["payload"]["severity"] == "critical"
            assert pd.body["payload"]["summary"] == "HTTPErrorBudgetBurnFast: shop burns its budget"
            assert pd.body["links"] == [{"href": "docs/runbooks/HTTPErrorBudgetBurnFast.md", "text": "Runbook"}]
            assert pd.body["payload"]["custom_details"]["traces"] == "http://jaeger.example:16686/search?service=shop"

            hook = http.wait_for(lambda p: p.path == "/hook", timeout=30, what="the webhook")
            assert hook.headers["authorization"] == "Bearer hook-token-456"
            assert [a["labels"]["alertname"] for a in hook.body["alerts"]] == ["HTTPErrorBudgetBurnFast"]

            slack = http.wait_for(lambda p: p.path.startswith("/slack/"), timeout=30, what="the Slack message")
            assert slack.path == "/slack/T000/B000/XXXX"
            assert slack.body["channel"] == "#alerts"
            (attachment,) = slack.body["attachments"]
            assert attachment["title"] == "[FIRING:1] HTTPLatencyHigh (shop)"
            assert attachment["text"] == "*p95 of shop is above 2s*\nd\nRunbook: docs/runbooks/HTTPLatencyHigh.md\n"

            wait_until(lambda: smtp.mails, timeout=30, what="the e-mail")
            (mail,) = smtp.mails
            assert mail.auth == "\x00alertmanager\x00smtp-password-789"
            assert (mail.sender, mail.recipients) == ("<alertmanager@example.com>", ("<oncall@example.com>",))
            assert "Subject: [FIRING:1] HTTPLatencyHigh (shop)" in mail.data

            # The slow-burn ticket reached nobody: Alertmanager holds it as inhibited by the page.
            time.sleep(2)  # a few more group intervals
            assert not [p for p in http.posts if "HTTPErrorBudgetBurnSlow" in json.dumps(p.body)]
            assert not [m for m in smtp.mails if "HTTPErrorBudgetBurnSlow" in m.data]
            held = client.get(f"{am}/api/v2/alerts").json()
            states = {a["labels"]["alertname"]: a["status"] for a in held}
            assert states["HTTPErrorBudgetBurnSlow"]["state"] == "suppressed"
            assert states["HTTPErrorBudgetBurnSlow"]["inhibitedBy"] != []
            assert states["HTTPErrorBudgetBurnFast"]["state"] == "active"


# --- the product's path: app → collector → Prometheus → Alertmanager → webhook -------------------------------------


def _send(base: str, paths: list[str]) -> list[int]:
    # uvicorn closes the connection after an unhandled exception (/boom): no keep-alive here.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base, trust_env=False, timeout=10, limits=limits) as client:
        return [client.get(path).status_code for path in paths]


def test_app_failure_fires_a_page_and_a_ticket_that_reach_the_webhook_and_resolve(
    otelcol_bin: Path, prometheus_bin: Path, alertmanager_bin: Path, procs: _procs.ProcessGroup, tmp_path: Path
) -> None:
    with HttpRecorder() as hook:
        rules, routing = render(tmp_path, E2E_SPEC.read_text(encoding="utf-8").replace("$HOOK", hook.url))
        am = start_alertmanager(procs, alertmanager_bin, routing)

        # The collector and Prometheus as the stack runs them, on loopback, on the test's rules.
        collector = start_stack_collector(procs, otelcol_bin)
        prom = start_stack_prometheus(procs, prometheus_bin, collector, rules=rules, alertmanager=am)

        env = app_env(collector.otlp_http, OTEL_SERVICE_NAME="example-api", OTEL_METRIC_EXPORT_INTERVAL="1000")
        _, base = start_app(procs, env)

        # Healthy first: the request counters exist before they grow, and nothing fires.
        assert _send(base, ["/items/1", "/account"]) == [200, 401]
        wait_until(
            lambda: _procs.prometheus_query(
                prom, 'http_server_request_duration_seconds_count{service_name="example-api"}'
            ),
            timeout=60,
            what="the app's request counter in Prometheus",
        )
        for _ in range(20):
            _send(base, ["/items/1"] * 3)
            time.sleep(0.1)
        assert hook.posts == []

        # The burst: 2 in 5 requests fail with 500, 2 in 5 are refused with 401.
        deadline = time.monotonic() + 120
        while not (hook.at("/pager") and hook.at("/tickets")):
            assert time.monotonic() < deadline, f"no page and ticket after 120 s; received {hook.posts!r}"
            assert _send(base, ["/boom", "/account", "/items/1", "/boom", "/account"]) == [500, 401, 200, 500, 401]
            time.sleep(0.1)

        page = hook.wait_for(lambda p: p.path == "/pager" and firing(p, "HTTPErrorRateHigh"), timeout=5, what="page")
        assert page.body["receiver"] == "pager"
        assert page.body["groupLabels"] == {"alertname": "HTTPErrorRateHigh", "service_name": "example-api"}
        (alert,) = page.body["alerts"]
        assert alert["labels"] == {
            "alertname": "HTTPErrorRateHigh",
            "service_name": "example-api",
            "severity": "critical",
            "slo": "availability",
        }
        assert alert["annotations"]["runbook_url"] == "docs/runbooks/HTTPErrorRateHigh.md"
        assert (REPO / alert["annotations"]["runbook_url"]).is_file()
        assert alert["annotations"]["traces_url"] == (
            f"http://127.0.0.1:16686/search?service=example-api&tags={ERROR_TRACES}&lookback=1h&limit=20"
        )
        assert alert["annotations"]["summary"] == "example-api answers more than 20% of requests with 5xx"
        assert alert["generatorURL"].startswith(f"{prom}/graph?g0.expr=")

        ticket = hook.wait_for(
            lambda p: p.path == "/tickets" and firing(p, "HTTPAuthFailuresHigh"), timeout=5, what="ticket"
        )
        (alert,) = ticket.body["alerts"]
        assert (alert["labels"]["severity"], alert["labels"]["service_name"]) == ("warning", "example-api")
        assert alert["annotations"]["runbook_url"] == "docs/runbooks/HTTPAuthFailuresHigh.md"
        status_401 = urllib.parse.quote('{"http.response.status_code":"401"}', safe="")
        assert alert["annotations"]["traces_url"] == (
            f"http://127.0.0.1:16686/search?service=example-api&tags={status_401}&lookback=1h&limit=20"
        )
        # Routed by severity: the page went only to the pager, the ticket only to tickets.
        assert {p.body["groupLabels"]["alertname"] for p in hook.at("/pager")} == {"HTTPErrorRateHigh"}
        assert {p.body["groupLabels"]["alertname"] for p in hook.at("/tickets")} == {"HTTPAuthFailuresHigh"}

        # Recovery: only good requests; both alerts resolve and say so.
        deadline = time.monotonic() + 120
        while not (
            [p for p in hook.at("/pager") if firing(p, "HTTPErrorRateHigh", "resolved")]
            and [p for p in hook.at("/tickets") if firing(p, "HTTPAuthFailuresHigh", "resolved")]
        ):
            assert time.monotonic() < deadline, f"no resolved notifications after 120 s; received {hook.posts!r}"
            assert _send(base, ["/items/1", "/items/2"]) == [200, 200]
            time.sleep(0.1)
        resolved = next(p for p in hook.at("/pager") if firing(p, "HTTPErrorRateHigh", "resolved"))
        (alert,) = resolved.body["alerts"]
        assert alert["status"] == "resolved"
        assert alert["endsAt"] > alert["startsAt"]
        assert alert["annotations"]["runbook_url"] == "docs/runbooks/HTTPErrorRateHigh.md"
