"""``otelkit render-collector`` through the real entry point: output, --graph, -o, every error message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "render-collector", *argv)


def test_render_collector_writes_yaml_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert yaml.safe_load(out)["service"]["pipelines"]["traces"]["exporters"] == ["otlp_grpc/jaeger"]


def test_render_collector_writes_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "otelcol.yaml"
    code, out, err = run(capsys, "-o", str(target))
    assert (code, out, err) == (0, "", f"wrote {target}\n")
    assert "otlp_grpc/jaeger" in target.read_text()


def test_render_collector_graph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--profile", "dev", "--traces", "jaeger", "--traces", "otlp", "--graph")
    assert code == 0
    assert out == (
        "traces:  otlp → otlp_grpc/jaeger, otlp_http/traces, debug\n"
        "metrics: otlp → prometheus, debug\n"
        "logs:    otlp → otlp_http/loki, debug\n"
    )


def test_render_collector_comma_list_equals_repeated_flag(capsys: pytest.CaptureFixture[str]) -> None:
    _, repeated, _ = run(capsys, "--traces", "jaeger", "--traces", "tempo")
    _, comma, _ = run(capsys, "--traces", "jaeger,tempo")
    assert repeated == comma


def test_render_collector_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "Examples:\n    otelkit render-collector -o collector/otelcol.yaml\n" in out


ERRORS = [
    (
        ["--traces", "jeager"],
        "unknown traces backend 'jeager'; expected one of: jaeger, tempo, zipkin, otlp, debug, none "
        "(did you mean 'jaeger'?)",
    ),
    (
        ["--metrics", "foo"],
        "unknown metrics backend 'foo'; expected one of: prometheus, prometheusremotewrite, otlp, debug, none "
        "(choose with --metrics NAME)",
    ),
    (["--traces", "jaeger,jaeger"], "traces backend 'jaeger' is given twice; list each backend once"),
    (
        ["--logs", "none,loki"],
        "logs backend 'none' cannot be combined with loki; drop 'none' or pass --logs none alone",
    ),
    (
        ["--traces", "none", "--metrics", "none", "--logs", "none"],
        "every signal is 'none'; expected at least one of --traces/--metrics/--logs to name a backend",
    ),
    (
        ["--traces-endpoint", "jaeger 4317"],
        "malformed traces endpoint 'jaeger 4317' for backend 'jaeger'; expected host:port or http(s)://host:port "
        "(e.g. jaeger:4317); fix --traces-endpoint",
    ),
    (
        ["--logs-endpoint", "loki:3100"],
        "malformed logs endpoint 'loki:3100' for backend 'loki'; expected an http:// or https:// URL "
        "(e.g. http://loki:3100/otlp); fix --logs-endpoint",
    ),
    (
        ["--traces", "jaeger,tempo", "--traces-endpoint", "x:1"],
        "--traces-endpoint 'x:1' is ambiguous: traces goes to jaeger, tempo; write it as BACKEND=VALUE "
        "(e.g. jaeger=x:1)",
    ),
    (
        ["--traces-endpoint", "tempo=x:1"],
        "--traces-endpoint 'tempo=x:1' names backend 'tempo', which is not among the traces push backends "
        "(jaeger); add --traces tempo or drop the prefix",
    ),
    (
        ["--traces-endpoint", "jaeger=a:1", "--traces-endpoint", "jaeger=b:1"],
        "--traces-endpoint is given twice for traces backend 'jaeger'; give it once",
    ),
    (
        ["--metrics-endpoint", "http://x:1"],
        "--metrics-endpoint 'http://x:1' has no metrics backend to apply to (none of the chosen metrics backends "
        "sends over the network); choose a push backend or drop the option",
    ),
    (
        ["--otlp-http-port", "4317"],
        "port 4317 is used by both the OTLP/gRPC receiver (--otlp-grpc-port) and the OTLP/HTTP receiver "
        "(--otlp-http-port); give each its own port",
    ),
    (
        ["--prometheus-endpoint", "0.0.0.0:8888"],
        "port 8888 is used by both the prometheus exporter (--prometheus-endpoint) and the collector's own "
        "metrics (--telemetry-port); give each its own port",
    ),
    (
        ["--otlp-grpc-port", "0"],
        "port 0 of the OTLP/gRPC receiver is out of range 1-65535; change it with --otlp-grpc-port",
    ),
    (
        ["--collector-version", "0.99.0"],
        "unsupported collector version '0.99.0'; expected a version from 0.130.0 to 0.161.0 (otelkit checks "
        "component names per version; use --collector-version 0.161.0 or another version in that range)",
    ),
    (
        ["--profile", "prod"],
        "unknown profile 'prod'; expected one of: dev, production (did you mean 'production'?)",
    ),
    (["--batching", "x"], "unknown batching 'x'; expected one of: exporter, processor"),
    (
        ["--batching", "exporter", "--collector-version", "0.130.0"],
        "--batching exporter needs collector 0.138.0 or newer (got 0.130.0); use --batching processor or a "
        "newer --collector-version",
    ),
    (
        ["--logs-auth-env", "bad-name"],
        "invalid environment variable name 'bad-name' for --logs-auth-env; expected letters, digits and '_' "
        "(e.g. OTLP_TOKEN); pass the variable's name, never its value",
    ),
    (
        ["--header-env", "nope"],
        "malformed --header-env 'nope'; expected SIGNAL[.BACKEND]:Header-Name=ENV_VAR "
        "(e.g. logs:X-Scope-OrgID=LOKI_TENANT)",
    ),
    (
        ["--header-env", "logs:X Y=VAR"],
        "invalid header name 'X Y' in --header-env 'logs:X Y=VAR'; expected a token like X-Scope-OrgID",
    ),
    (
        ["--header-env", "metrics:X=VAR"],
        "--header-env 'metrics:X=VAR' has no metrics push backend to apply to (chosen: prometheus); "
        "choose a push backend or drop the option",
    ),
    (
        ["--bind", "not a host"],
        "invalid --bind 'not a host'; expected an IP address or host name (0.0.0.0 in containers, "
        "127.0.0.1 for local runs)",
    ),
    (
        ["--prometheus-endpoint", "localhost"],
        "malformed --prometheus-endpoint 'localhost'; expected host:port to serve /metrics on (e.g. 0.0.0.0:8889)",
    ),
    (
        ["--tail-sampling", "0"],
        "invalid --tail-sampling 0; expected a percentage in (0, 100] of the traces to keep besides errors and "
        "slow ones (e.g. 10)",
    ),
    (
        ["--max-attribute-length", "0"],
        "invalid --max-attribute-length 0; expected a positive number of characters (e.g. 4096)",
    ),
    (
        ["--drop-route", "health"],
        "invalid --drop-route 'health'; expected an http.route template starting with '/' without quotes or "
        "backslashes (e.g. /health/live)",
    ),
    (
        ["--span-metrics", "--metrics", "none"],
        "--span-metrics needs a metrics pipeline, but --metrics is 'none'; choose a metrics backend",
    ),
    (
        ["--persistent-queue", " "],
        "invalid --persistent-queue ''; expected a directory path (e.g. /var/lib/otelcol/queue)",
    ),
    (
        ["--ca-file", "/ca.pem"],
        "--ca-file/--cert-file/--key-file are set but no exporter endpoint uses https://; use https:// "
        "endpoints or drop the TLS options",
    ),
    (
        ["--cert-file", "/c.pem", "--traces-endpoint", "https://x:443"],
        "--cert-file and --key-file go together (client TLS); give both or neither",
    ),
    (
        ["-o", "/nonexistent/dir/otelcol.yaml"],
        "cannot write '/nonexistent/dir/otelcol.yaml': directory '/nonexistent/dir' does not exist; create it or "
        "choose another -o path",
    ),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_render_collector_error_message(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (2, "", f"error: {message}\n")


def test_render_collector_error_leaves_existing_output_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "otelcol.yaml"
    target.write_text("previous\n")
    code, _, err = run(capsys, "--traces", "jeager", "-o", str(target))
    assert code == 2
    assert err.startswith("error: unknown traces backend 'jeager'")
    assert target.read_text() == "previous\n"


def test_render_collector_unwritable_output_leaves_existing_target(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # chmod does not stop root, so the unwritable target is a directory that already exists.
    target = tmp_path / "otelcol.yaml"
    target.mkdir()
    (target / "keep").write_text("previous\n")
    code, out, err = run(capsys, "-o", str(target))
    assert (code, out) == (2, "")
    assert err == (
        f"error: cannot write '{target}': it is a directory, not a regular file; give -o a file path"
        " (or '-o -' for stdout)\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["otelcol.yaml"]
    assert (target / "keep").read_text() == "previous\n"
