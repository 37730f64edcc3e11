"""``otelkit render-collector --role agent|gateway`` through the real entry point: layouts and every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_runner import run_cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "render-collector", *argv)


def test_render_agent_static_graph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--role", "agent", "--gateway", "gw-1:4317", "--gateway", "gw-2:4317", "--graph")
    assert (code, err) == (0, "")
    assert out == (
        "traces:  otlp → memory_limiter → attributes/redact → load_balancing\n"
        "metrics: otlp → memory_limiter → load_balancing/metrics\n"
        "logs:    otlp → memory_limiter → attributes/redact → load_balancing\n"
    )


def test_render_agent_load_balances_by_trace_id_with_retries_at_the_balancer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--role", "agent", "--gateway", "gw-1:4317", "--gateway", "[fd00::2]:4317")
    assert code == 0
    exporters = yaml.safe_load(out)["exporters"]
    lb = exporters["load_balancing"]
    assert lb["routing_key"] == "traceID"
    assert lb["resolver"] == {"static": {"hostnames": ["gw-1:4317", "[fd00::2]:4317"]}}
    # The per-gateway exporter fails fast; the balancer's queue and retries re-route.
    assert lb["protocol"]["otlp"]["sending_queue"] == {"enabled": False}
    assert lb["protocol"]["otlp"]["retry_on_failure"] == {"enabled": False}
    assert lb["sending_queue"]["enabled"] is True
    assert lb["retry_on_failure"]["enabled"] is True
    assert exporters["load_balancing/metrics"]["routing_key"] == "streamID"


def test_render_agent_dns_persistent_queue_k8s(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--role",
        "agent",
        "--gateway-dns",
        "otelkit-gateway.obs.svc:4317",
        "--persistent-queue",
        "/var/lib/q",
        "--k8s-attributes",
        "--resource-detection",
        "env,system",
    )
    assert code == 0
    config = yaml.safe_load(out)
    lb = config["exporters"]["load_balancing"]
    assert lb["resolver"] == {"dns": {"hostname": "otelkit-gateway.obs.svc", "port": "4317"}}
    assert lb["sending_queue"]["storage"] == "file_storage/queue"
    assert config["processors"]["k8s_attributes"]["filter"] == {"node_from_env_var": "K8S_NODE_NAME"}
    assert config["processors"]["resource_detection"]["detectors"] == ["env", "system"]
    assert config["service"]["pipelines"]["traces"]["processors"][:3] == [
        "memory_limiter",
        "k8s_attributes",
        "resource_detection",
    ]


def test_render_gateway_span_metrics_before_sampling_graph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--role", "gateway", "--span-metrics", "--tail-sampling", "1", "--graph")
    assert code == 0
    assert out == (
        "traces:          otlp → memory_limiter → attributes/redact → span_metrics, forward/sampling\n"
        "traces/sampling: forward/sampling → tail_sampling → otlp_grpc/jaeger\n"
        "metrics:         otlp, span_metrics → memory_limiter → prometheus\n"
        "logs:            otlp → memory_limiter → attributes/redact → otlp_http/loki\n"
    )


def test_render_gateway_tail_sampling_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--role", "gateway", "--tail-sampling", "0.5", "--decision-wait", "2.5", "--slow-threshold", "250"
    )
    assert code == 0
    ts = yaml.safe_load(out)["processors"]["tail_sampling"]
    assert ts["decision_wait"] == "2500ms"
    assert ts["decision_cache"] == {"sampled_cache_size": 100000, "non_sampled_cache_size": 100000}
    assert [p["name"] for p in ts["policies"]] == ["errors", "slow", "sample"]
    assert ts["policies"][1]["ottl_condition"]["span"] == [
        "span.end_time_unix_nano - span.start_time_unix_nano > 250000000"
    ]
    assert ts["policies"][2]["probabilistic"] == {"sampling_percentage": 0.5}


AGENT = ("--role", "agent", "--gateway", "gw:4317")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--role", "agent"),
            "--role agent needs the gateways to send to: --gateway HOST:PORT (repeatable) or --gateway-dns "
            "NAME:PORT (a headless Service, e.g. otelkit-gateway.observability.svc:4317)",
        ),
        (
            ("--role", "agent", "--gateway", "gateway-1"),
            "invalid --gateway 'gateway-1'; expected HOST:PORT of a gateway's OTLP/gRPC receiver (e.g. gateway-1:4317)",
        ),
        (
            ("--role", "agent", "--gateway", "http://gw:4317"),
            "invalid --gateway 'http://gw:4317'; expected HOST:PORT of a gateway's OTLP/gRPC receiver "
            "(e.g. gateway-1:4317)",
        ),
        (
            ("--role", "agent", "--gateway", "gw:0"),
            "invalid --gateway 'gw:0'; expected HOST:PORT of a gateway's OTLP/gRPC receiver (e.g. gateway-1:4317)",
        ),
        (
            ("--role", "agent", "--gateway-dns", "gateways.svc"),
            "invalid --gateway-dns 'gateways.svc'; expected HOST:PORT of a gateway's OTLP/gRPC receiver "
            "(e.g. otelkit-gateway.observability.svc:4317)",
        ),
        (
            ("--role", "agent", "--gateway", "gw:4317", "--gateway", "gw:4317"),
            "--gateway 'gw:4317' is given twice; list each gateway once",
        ),
        (
            (*AGENT, "--gateway-dns", "gws:4317"),
            "--gateway and --gateway-dns are two resolvers; give one of them",
        ),
        (
            (*AGENT, "--tail-sampling", "10"),
            "--tail-sampling on an agent: an agent sees only its own node's spans, not whole traces; sample on the "
            "gateways (--role gateway --tail-sampling PERCENT)",
        ),
        (
            (*AGENT, "--span-metrics"),
            "--span-metrics on an agent would count spans twice once the gateways count them; derive span metrics "
            "on the gateways (--role gateway --span-metrics)",
        ),
        (
            (*AGENT, "--traces", "tempo"),
            "--traces 'tempo' on an agent: agents send every signal to the gateways; choose backends on the "
            "gateways (--role gateway --traces tempo), or --traces none here",
        ),
        (
            (*AGENT, "--logs-endpoint", "http://loki:3100/otlp"),
            "--logs-endpoint on an agent: agents talk only to the gateways; give --logs-endpoint to the gateways "
            "(--role gateway)",
        ),
        (
            (*AGENT, "--collector-version", "0.160.0"),
            "--role agent needs collector 0.161.0 (load_balancing, k8s_attributes and resource_detection are "
            "checked at that version only), got --collector-version 0.160.0; use --collector-version 0.161.0",
        ),
        (
            ("--role", "gateway", "--gateway", "gw:4317"),
            "--gateway is for --role agent (the gateways an agent sends to); a gateway sends to backends",
        ),
        (
            ("--gateway-dns", "gws:4317"),
            "--gateway-dns is for --role agent (the gateways an agent sends to); a standalone sends to backends",
        ),
        (
            ("--role", "gateway", "--k8s-attributes"),
            "--k8s-attributes on a gateway would see the agents' addresses, not the apps' pods; ask for it on the "
            "agents (--role agent --k8s-attributes)",
        ),
        (
            ("--role", "gateway", "--resource-detection", "env"),
            "--resource-detection on a gateway would stamp the gateway's host on every app's telemetry; ask for it "
            "on the agents (--role agent --resource-detection env,system)",
        ),
        (
            (*AGENT, "--resource-detection", "env,sytem"),
            "unknown --resource-detection detector 'sytem'; expected any of: env, system, docker, k8s_api, kubeadm, "
            "openshift, ec2, ecs, eks, lambda, elastic_beanstalk, gcp, azure, aks, azureappservice, "
            "azurecontainerapps, heroku, consul, alibaba_ecs, digitalocean, hetzner, scaleway, upcloud, vultr "
            "(did you mean 'system'?)",
        ),
        (
            ("--role", "gateway", "--decision-wait", "5"),
            "--decision-wait needs --tail-sampling PERCENT; add it or drop --decision-wait",
        ),
        (
            ("--role", "gateway", "--tail-sampling", "1", "--decision-wait", "0"),
            "invalid --decision-wait 0; expected seconds from 0.001 to 3600 to wait for a trace's late spans "
            "before deciding (e.g. 30)",
        ),
        (
            # Rendered in whole milliseconds: 0.1 ms would become "0ms", which validate accepts.
            ("--role", "gateway", "--tail-sampling", "1", "--decision-wait", "0.0001"),
            "invalid --decision-wait 0.0001; expected seconds from 0.001 to 3600 to wait for a trace's late spans "
            "before deciding (e.g. 30)",
        ),
        (
            ("--slow-threshold", "500"),
            "--slow-threshold needs --tail-sampling PERCENT; add it or drop --slow-threshold",
        ),
        (
            ("--tail-sampling", "1", "--slow-threshold", "0"),
            "invalid --slow-threshold 0; expected milliseconds from 1 to 86400000 (a day) (e.g. 1000)",
        ),
        (
            # In nanoseconds past int64: validate passes it, the collector fails to start (OTTL ParseInt).
            ("--tail-sampling", "1", "--slow-threshold", "99999999999999999999"),
            "invalid --slow-threshold 99999999999999999999; expected milliseconds from 1 to 86400000 (a day) "
            "(e.g. 1000)",
        ),
        (
            ("--role", "gatway"),
            "unknown role 'gatway'; expected one of: standalone, agent, gateway (did you mean 'gateway'?)",
        ),
    ],
)
def test_render_collector_role_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    target = tmp_path / "otelcol.yaml"
    code, out, err = run(capsys, *argv, "-o", str(target))
    assert (code, out, err) == (2, "", f"error: {message}\n")
    assert not target.exists()


def test_render_tail_sampling_slow_condition_before_0_150_has_no_context_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--tail-sampling", "1", "--collector-version", "0.144.0")
    assert code == 0
    slow = yaml.safe_load(out)["processors"]["tail_sampling"]["policies"][1]
    assert slow["ottl_condition"]["span"] == ["end_time_unix_nano - start_time_unix_nano > 1000000000"]


@pytest.mark.parametrize("flag", ["--gateway", "--gateway-dns"])
@pytest.mark.parametrize("port", ["9" * 5000, "٤٣١٧"])
def test_render_agent_port_of_many_or_non_ascii_digits_is_one_error_line(
    capsys: pytest.CaptureFixture[str], flag: str, port: str
) -> None:
    # 5000 digits: int() refuses them (its digit limit) with a ValueError, not a usage error.
    code, out, err = run(capsys, "--role", "agent", flag, f"gw:{port}")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: invalid {flag} 'gw:{port[:10]}")
    assert err.count("\n") == 1
