"""The SLO spec, the alert rules rendered from it, and ``otelkit render-alerts``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli

from otelkit.errors import ConfigError, UsageError
from otelkit.ops import slo

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "stack" / "slo.yaml"
ALERTS = REPO / "stack" / "prometheus" / "alerts.yaml"
ALERTMANAGER = REPO / "stack" / "alertmanager" / "alertmanager.yaml"
REGENERATE = (
    "otelkit render-alerts --spec stack/slo.yaml -o stack/prometheus/alerts.yaml"
    " --alertmanager stack/alertmanager/alertmanager.yaml"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "render-alerts", *argv)


def rules_by_name(spec: slo.SLOSpec) -> dict[str, slo.Rule]:
    return {rule.name: rule for group in slo.rule_groups(spec) for rule in group.rules}


# --- the committed files -------------------------------------------------------------------------


def test_slo_committed_alerts_match_the_committed_spec() -> None:
    rendered = slo.render_alerts(slo.load_spec(SPEC), command=REGENERATE)
    assert ALERTS.read_text(encoding="utf-8") == rendered, f"stack/prometheus/alerts.yaml is stale; run: {REGENERATE}"


def test_slo_committed_alertmanager_config_matches_the_committed_spec() -> None:
    rendered = slo.render_alertmanager(slo.load_spec(SPEC), command=REGENERATE)
    assert ALERTMANAGER.read_text(encoding="utf-8") == rendered, (
        f"stack/alertmanager/alertmanager.yaml is stale; run: {REGENERATE}"
    )


def test_slo_committed_spec_spells_out_the_defaults() -> None:
    assert slo.load_spec(SPEC) == slo.default_spec()
    # Every key the parser knows is written out, so the file documents the whole format.
    data = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert sorted(data) == [
        "alerting",
        "alertmanager",
        "celery",
        "collector",
        "http",
        "process",
        "security",
        "targets",
        "version",
    ]
    assert data["http"]["latency"] == {
        "quantile": 0.95,
        "max": "2s",
        "window": "5m",
        "for": "5m",
        "severity": "warning",
    }


def test_slo_default_alerts_cover_the_user_slos() -> None:
    rules = rules_by_name(slo.default_spec())
    alerts = {name: rule for name, rule in rules.items() if rule.kind == "alert"}
    assert sorted(alerts) == [
        "AlertmanagerNotificationsFailing",
        "CeleryBacklogGrowing",
        "CeleryQueueLatencyHigh",
        "CeleryTaskDurationHigh",
        "CeleryTaskSuccessRateLow",
        "CeleryWorkersOffline",
        "HTTPAuthFailuresHigh",
        "HTTPErrorBudgetBurnFast",
        "HTTPErrorBudgetBurnSlow",
        "HTTPErrorRateHigh",
        "HTTPLatencyHigh",
        "HTTPRateLimitedHigh",
        "OtelCollectorExporterFailing",
        "OtelCollectorQueueNearlyFull",
        "ProcessMemoryHigh",
        "ScrapeTargetDown",
    ]
    # Seed 003: service down 1m critical, error rate > 5% 2m critical, queue p95 > 60s 5m critical,
    # processing p95 > 300s 10m warning, memory > 1e9 10m info.
    assert (alerts["ScrapeTargetDown"].expr, alerts["ScrapeTargetDown"].for_) == ("up == 0", "1m")
    assert alerts["HTTPErrorRateHigh"].expr.endswith("\n> 0.05")
    assert alerts["CeleryQueueLatencyHigh"].labels == {"severity": "critical"}
    assert alerts["CeleryTaskDurationHigh"].expr.endswith("\n> 300")
    assert (alerts["ProcessMemoryHigh"].expr, alerts["ProcessMemoryHigh"].labels["severity"]) == (
        "process_memory_usage_bytes > 1000000000",
        "info",
    )


# --- rendering -----------------------------------------------------------------------------------


def test_slo_render_is_deterministic_whatever_the_key_order() -> None:
    forward = {"http": {"latency": {"max": "1s", "for": "3m"}, "error_rate": {"max": "2%"}}, "version": 1}
    backward = {"version": 1, "http": {"error_rate": {"max": "2%"}, "latency": {"for": "3m", "max": "1s"}}}
    first = slo.render_alerts(slo.parse_spec(forward))
    assert first == slo.render_alerts(slo.parse_spec(backward))
    assert first == slo.render_alerts(slo.parse_spec(forward))


def test_slo_render_is_valid_yaml_with_multiline_exprs() -> None:
    doc = yaml.safe_load(slo.render_alerts(slo.default_spec()))
    groups = {g["name"]: g["rules"] for g in doc["groups"]}
    assert list(groups) == [
        "otelkit-http-availability",
        "otelkit-http",
        "otelkit-security",
        "otelkit-celery",
        "otelkit-process",
        "otelkit-pipeline",
    ]
    fast = next(r for r in groups["otelkit-http-availability"] if r.get("alert") == "HTTPErrorBudgetBurnFast")
    assert fast["expr"] == (
        "(\n"
        "  service_name:http_server_request_errors:ratio_rate1h > (14.4 * 0.001)\n"
        "and\n"
        "  service_name:http_server_request_errors:ratio_rate5m > (14.4 * 0.001)\n"
        ")\n"
        "or\n"
        "(\n"
        "  service_name:http_server_request_errors:ratio_rate6h > (6 * 0.001)\n"
        "and\n"
        "  service_name:http_server_request_errors:ratio_rate30m > (6 * 0.001)\n"
        ")"
    )
    assert fast["annotations"]["summary"] == (
        "{{ $labels.service_name }} is burning its 99.9% availability error budget fast"
    )


def test_slo_overrides_change_only_their_objective() -> None:
    spec = slo.parse_spec({"http": {"latency": {"quantile": 0.99, "max": "500ms"}}})
    assert spec.latency == slo.Objective(0.5, "5m", "warning", quantile=0.99)
    assert spec.error_rate == slo.default_spec().error_rate
    latency = rules_by_name(spec)["HTTPLatencyHigh"]
    assert latency.expr == (
        "histogram_quantile(0.99, sum by (service_name, http_route, le) "
        "(rate(http_server_request_duration_seconds_bucket[5m])))\n> 0.5"
    )
    assert latency.annotations["summary"] == (
        "p99 latency of {{ $labels.service_name }} {{ $labels.http_route }} is above 500ms"
    )


def test_slo_period_scales_the_burn_rate_factors() -> None:
    spec = slo.parse_spec({"http": {"availability": {"objective": "99.5%", "period": "28d"}}})
    rules = rules_by_name(spec)
    # 2% of a 28d budget in 1h = 13.44× burn; 5% in 6h = 5.6×; 10% in 1d = 2.8×; 10% in 3d ≈ 0.93×.
    assert "ratio_rate1h > (13.44 * 0.005)" in rules["HTTPErrorBudgetBurnFast"].expr
    assert "ratio_rate6h > (5.6 * 0.005)" in rules["HTTPErrorBudgetBurnFast"].expr
    assert "ratio_rate1d > (2.8 * 0.005)" in rules["HTTPErrorBudgetBurnSlow"].expr
    assert "ratio_rate3d > (0.9333333333 * 0.005)" in rules["HTTPErrorBudgetBurnSlow"].expr


def test_slo_false_turns_off_an_objective_or_a_section() -> None:
    spec = slo.parse_spec(
        {"http": {"availability": False, "latency": False}, "celery": False, "security": {"rate_limited": False}}
    )
    names = [g.name for g in slo.rule_groups(spec)]
    assert names == ["otelkit-http", "otelkit-security", "otelkit-process", "otelkit-pipeline"]
    assert list(rules_by_name(spec)) == [
        "HTTPErrorRateHigh",
        "service_name:http_server_auth_failures:ratio_rate5m",
        "HTTPAuthFailuresHigh",
        "ProcessMemoryHigh",
        "OtelCollectorExporterFailing",
        "OtelCollectorQueueNearlyFull",
        "ScrapeTargetDown",
        "AlertmanagerNotificationsFailing",
    ]


def test_slo_empty_spec_and_empty_objective_mean_defaults() -> None:
    assert slo.parse_spec(None) == slo.default_spec()
    assert slo.parse_spec({"http": None, "celery": {"queue_latency": None}}) == slo.default_spec()
    assert slo.parse_spec({"targets": {"down": True}}) == slo.default_spec()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("500ms", 0.5), ("90s", 90), ("1h30m", 5400), ("2d", 172800), ("1w", 604800)],
)
def test_slo_parse_duration_reads_prometheus_durations(value: str, seconds: float) -> None:
    assert slo.parse_duration(value) == seconds


@pytest.mark.parametrize(("value", "size"), [(2048, 2048), ("512MB", 512e6), ("1.5GB", 1.5e9), ("2GiB", 2 * 2**30)])
def test_slo_memory_sizes(value: object, size: float) -> None:
    spec = slo.parse_spec({"process": {"memory": {"max": value}}})
    assert spec.memory is not None and spec.memory.threshold == size


# --- errors, word for word -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"htp": {}},
            "slo.yaml: htp: unknown key; expected one of: version, http, security, celery, process, collector,"
            " targets, alertmanager, alerting (did you mean 'http'?)",
        ),
        (
            {"http": {"latncy": {}}},
            "slo.yaml: http.latncy: unknown key; expected one of: availability, error_rate, latency"
            " (did you mean 'latency'?)",
        ),
        (
            {"targets": {"down": {"window": "5m"}}},
            "slo.yaml: targets.down.window: unknown key; expected one of: for, severity",
        ),
        (
            {"http": {"latency": {"max": "2 seconds"}}},
            "slo.yaml: http.latency.max: invalid duration '2 seconds'; expected a Prometheus duration from"
            " 1ms to 10y such as 30s, 5m, 1h or 1h30m",
        ),
        (
            {"celery": {"queue_latency": {"for": "5m1h"}}},
            "slo.yaml: celery.queue_latency.for: invalid duration '5m1h'; expected a Prometheus duration from"
            " 1ms to 10y such as 30s, 5m, 1h or 1h30m",
        ),
        (
            {"http": {"error_rate": {"max": 5}}},
            "slo.yaml: http.error_rate.max: invalid percentage 5; expected a number followed by %, such as 99.9% or 5%",
        ),
        (
            {"celery": {"success_rate": {"min": "100%"}}},
            "slo.yaml: celery.success_rate.min: percentage '100%' is out of range; expected from 0.000001% to"
            " 99.999999%",
        ),
        (
            {"http": {"error_rate": {"max": "1E-400%"}}},
            "slo.yaml: http.error_rate.max: percentage '1E-400%' is out of range; expected from 0.000001% to"
            " 99.999999%",
        ),
        (
            {"http": {"availability": {"objective": "99.99999999999999999%"}}},
            "slo.yaml: http.availability.objective: percentage '99.99999999999999999%' is out of range; expected"
            " from 0.000001% to 99.999999%",
        ),
        (
            {"process": {"memory": {"max": int("9" * 400)}}},
            "slo.yaml: process.memory.max: size 999999999999999999...9999999999999999999 is out of range; expected"
            " from 1B to 8PiB",
        ),
        (
            {"process": {"memory": {"max": "9" * 40 + "GB"}}},
            "slo.yaml: process.memory.max: size '9999999999999999999999999999999999999999GB' is out of range;"
            " expected from 1B to 8PiB",
        ),
        (
            {"process": {"memory": {"max": "0.5B"}}},
            "slo.yaml: process.memory.max: size '0.5B' is out of range; expected from 1B to 8PiB",
        ),
        (
            {"http": {"latency": {"max": "9" * 400 + "s"}}},
            "slo.yaml: http.latency.max: invalid duration '999999999999999999999999999...999999999999999999999999999s';"
            " expected a Prometheus duration from 1ms to 10y such as 30s, 5m, 1h or 1h30m",
        ),
        (
            {"http": {"latency": {"for": "11y"}}},
            "slo.yaml: http.latency.for: invalid duration '11y'; expected a Prometheus duration from 1ms to 10y such"
            " as 30s, 5m, 1h or 1h30m",
        ),
        (
            {"http": {"availability": {"objective": "90%"}}},
            "slo.yaml: http.availability.objective: objective 90% leaves an error budget too large for burn-rate"
            " alerts (the fast alert would need more than 100% errors); expected at least 93.06% for period 30d",
        ),
        (
            {"http": {"availability": {"period": "1d"}}},
            "slo.yaml: http.availability.period: period '1d' is too short; expected 7d or more (the slow alert"
            " looks back 3d)",
        ),
        (
            {"http": {"latency": {"quantile": 95}}},
            "slo.yaml: http.latency.quantile: invalid quantile 95; expected a number between 0 and 1, such as 0.95"
            " or 0.99",
        ),
        (
            {"http": {"latency": {"severity": "crit"}}},
            "slo.yaml: http.latency.severity: invalid severity 'crit'; expected one of: critical, warning, info"
            " (did you mean 'critical'?)",
        ),
        (
            {"process": {"memory": {"max": "1 gigabyte"}}},
            "slo.yaml: process.memory.max: invalid size '1 gigabyte'; expected bytes or a size such as 512MB, 1GB"
            " or 2GiB",
        ),
        ({"version": 2}, "slo.yaml: version: unsupported spec version 2; expected 1"),
        (
            ["http"],
            "slo.yaml: expected a mapping with keys version, http, security, celery, process, collector, targets,"
            " alertmanager, alerting; got ['http']",
        ),
        (
            {"http": ["latency"]},
            "slo.yaml: http: expected a mapping with keys availability, error_rate, latency; got ['latency']",
        ),
    ],
)
def test_slo_spec_errors_name_file_key_value_and_remedy(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        slo.parse_spec(data, "slo.yaml")
    assert str(info.value) == message


def test_slo_load_spec_reports_yaml_errors_with_position(tmp_path: Path) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text("http:\n  latency: {max: 2s\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        slo.load_spec(bad)
    assert str(info.value) == f"{bad}: invalid YAML at line 3, column 1: expected ',' or '}}', but got '<stream end>'"


def test_slo_load_spec_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UsageError) as info:
        slo.load_spec(missing)
    assert str(info.value) == (
        f"cannot read SLO spec '{missing}': No such file or directory; pass an existing file to --spec"
    )


# --- the command ---------------------------------------------------------------------------------


def test_render_alerts_without_spec_prints_the_default_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert out == slo.render_alerts(slo.default_spec())
    assert out.splitlines()[1] == "#   otelkit render-alerts"


def test_render_alerts_writes_the_output_file_and_names_the_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text("celery: false\n", encoding="utf-8")
    target = tmp_path / "alerts.yaml"
    code, out, err = run(capsys, "--spec", str(spec), "-o", str(target))
    assert (code, out, err) == (0, "", f"wrote {target}\n")
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[1] == f"#   otelkit render-alerts --spec {spec} -o {target}"
    assert "otelkit-celery" not in text


def test_render_alerts_bad_spec_is_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text("http:\n  error_rate:\n    max: 5\n", encoding="utf-8")
    target = tmp_path / "alerts.yaml"
    target.write_text("previous\n", encoding="utf-8")
    code, out, err = run(capsys, "--spec", str(spec), "-o", str(target))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {spec}: http.error_rate.max: invalid percentage 5; expected a number followed by %, such as"
        " 99.9% or 5%\n"
    )
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.yaml", "slo.yaml"]


def test_render_alerts_missing_spec_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "--spec", str(tmp_path / "missing.yaml"))
    assert (code, out) == (2, "")
    assert err == (
        f"error: cannot read SLO spec '{tmp_path / 'missing.yaml'}': No such file or directory;"
        " pass an existing file to --spec\n"
    )
