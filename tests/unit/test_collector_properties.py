"""Property tests: every combination of backends, profile, version and option renders a valid config.

"Valid" is checked on the parsed YAML, independently of the model's own check: every component a
pipeline names is defined in its section, every defined component is used, listen ports are unique,
type names are the ones the target version accepts, and the builder manifest covers every type.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otelkit.errors import UsageError
from otelkit.ops.collector import (
    BACKENDS,
    SUPPORTED_VERSIONS,
    CollectorSpec,
    render_builder,
    render_collector,
    version_info,
)

# Type name -> ocb module, for every type otelkit can render at any supported version.
TYPE_MODULES = {
    "otlp": {"otlpreceiver", "otlpexporter"},
    "otlp_grpc": {"otlpexporter"},
    "otlphttp": {"otlphttpexporter"},
    "otlp_http": {"otlphttpexporter"},
    "zipkin": {"zipkinexporter"},
    "prometheus": {"prometheusexporter"},
    "prometheusremotewrite": {"prometheusremotewriteexporter"},
    "prometheus_remote_write": {"prometheusremotewriteexporter"},
    "debug": {"debugexporter"},
    "memory_limiter": {"memorylimiterprocessor"},
    "batch": {"batchprocessor"},
    "attributes": {"attributesprocessor"},
    "filter": {"filterprocessor"},
    "transform": {"transformprocessor"},
    "tail_sampling": {"tailsamplingprocessor"},
    "spanmetrics": {"spanmetricsconnector"},
    "span_metrics": {"spanmetricsconnector"},
    "health_check": {"healthcheckextension"},
    "file_storage": {"filestorage"},
    "zpages": {"zpagesextension"},
    "forward": {"forwardconnector"},
    "load_balancing": {"loadbalancingexporter"},
    "k8s_attributes": {"k8sattributesprocessor"},
    "resource_detection": {"resourcedetectionprocessor"},
}


def backends(signal: str) -> st.SearchStrategy[tuple[str, ...]]:
    names = [n for n in BACKENDS[signal] if n != "none"]
    some = st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True).map(tuple)
    return st.one_of(some, st.just(("none",)))


specs = st.builds(
    CollectorSpec,
    traces=backends("traces"),
    metrics=backends("metrics"),
    logs=backends("logs"),
    profile=st.sampled_from(["dev", "production"]),
    collector_version=st.sampled_from(SUPPORTED_VERSIONS),
    bind=st.sampled_from(["0.0.0.0", "127.0.0.1", "::"]),
    persistent_queue=st.one_of(st.none(), st.just("/var/lib/otelcol/queue")),
    batching=st.one_of(st.none(), st.just("processor")),
    redact=st.one_of(st.none(), st.booleans()),
    span_metrics=st.booleans(),
    tail_sampling=st.one_of(st.none(), st.sampled_from([0.5, 10, 100])),
    drop_route=st.lists(st.sampled_from(["/health", "/metrics", "/items/{id}"]), unique=True, max_size=2).map(tuple),
    max_attribute_length=st.one_of(st.none(), st.just(4096)),
)

# Agents and gateways: only the combinations their roles accept (check_role's refusals have their
# own tests), at the one version that has the agent's components.
agents = st.builds(
    CollectorSpec,
    role=st.just("agent"),
    traces=st.sampled_from([("jaeger",), ("none",)]),
    metrics=st.sampled_from([("prometheus",), ("none",)]),
    logs=st.sampled_from([("loki",), ("none",)]),
    profile=st.sampled_from(["dev", "production"]),
    bind=st.sampled_from(["0.0.0.0", "127.0.0.1"]),
    gateway=st.sampled_from([("gw-1:4317",), ("gw-1:4317", "10.0.0.2:4317", "[fd00::3]:4317")]),
    persistent_queue=st.one_of(st.none(), st.just("/var/lib/otelcol/queue")),
    batching=st.one_of(st.none(), st.just("processor")),
    redact=st.one_of(st.none(), st.booleans()),
    k8s_attributes=st.booleans(),
    resource_detection=st.sampled_from([(), ("env",), ("env", "system", "docker")]),
    drop_route=st.lists(st.sampled_from(["/health", "/items/{id}"]), unique=True, max_size=2).map(tuple),
    max_attribute_length=st.one_of(st.none(), st.just(4096)),
)
gateways = st.builds(
    CollectorSpec,
    role=st.just("gateway"),
    traces=backends("traces"),
    metrics=backends("metrics"),
    logs=backends("logs"),
    profile=st.sampled_from(["dev", "production"]),
    collector_version=st.sampled_from(SUPPORTED_VERSIONS),
    persistent_queue=st.one_of(st.none(), st.just("/var/lib/otelcol/queue")),
    batching=st.one_of(st.none(), st.just("processor")),
    span_metrics=st.booleans(),
    tail_sampling=st.one_of(st.none(), st.sampled_from([1, 10])),
    decision_wait=st.one_of(st.none(), st.sampled_from([0.5, 30])),
)

SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")


def _render_or_usage_error(spec: CollectorSpec) -> str | None:
    try:
        return render_collector(spec)
    except UsageError as exc:
        # The only combinations refused: nothing to export, or an option needing a missing pipeline.
        assert re.match(r"(every signal is 'none'|--(span-metrics|tail-sampling|drop-route) needs a)", str(exc)), exc
        return None


def _check_structure(config: dict[str, Any], spec: CollectorSpec) -> None:
    v = version_info(spec.collector_version)
    defined = {s: set(config.get(s) or {}) for s in SECTIONS}
    used: dict[str, set[str]] = {s: set() for s in SECTIONS}
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for name, p in pipelines.items():
        signal = name.split("/")[0]
        assert signal in ("traces", "metrics", "logs")
        for rid in p["receivers"]:
            section = "connectors" if rid in defined["connectors"] else "receivers"
            assert rid in defined[section], (name, rid)
            used[section].add(rid)
        for pid in p.get("processors", []):
            assert pid in defined["processors"], (name, pid)
            used["processors"].add(pid)
        if "memory_limiter" in p.get("processors", []):
            assert p["processors"][0] == "memory_limiter"
        for eid in p["exporters"]:
            section = "connectors" if eid in defined["connectors"] else "exporters"
            assert eid in defined[section], (name, eid)
            used[section].add(eid)
            if eid.startswith("prometheus") and section == "exporters":
                assert signal == "metrics"
    used["extensions"] = set(config["service"].get("extensions", []))
    assert used == defined
    # Only the names the target version accepts (old aliases would load with a warning, new
    # names not at all).
    renamed = {
        ("otlp_grpc", "otlp"): v.otlp_grpc_exporter,
        ("otlp_http", "otlphttp"): v.otlp_http_exporter,
        ("prometheus_remote_write", "prometheusremotewrite"): v.prometheus_remote_write_exporter,
        ("span_metrics", "spanmetrics"): v.span_metrics_connector,
    }
    exporter_types = {cid.split("/")[0] for s in ("exporters", "connectors") for cid in defined[s]}
    for names, accepted in renamed.items():
        assert not exporter_types & (set(names) - {accepted}), (names, accepted)
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for cid in defined[kind]:
            assert re.fullmatch(r"[a-z][a-z0-9_]*(/[a-z_]+)?", cid), cid


def _ports(text: str) -> list[int]:
    config = yaml.safe_load(text)
    ports = [int(m) for m in re.findall(r"endpoint: (?:\[[^\]]+\]|[0-9.]+):([0-9]+)$", text, re.M)]
    ports.append(config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"])
    return ports


@settings(max_examples=300, deadline=None)
@given(specs)
def test_render_collector_every_combination_is_structurally_valid(spec: CollectorSpec) -> None:
    text = _render_or_usage_error(spec)
    if text is None:
        return
    assert render_collector(spec) == text
    config = yaml.safe_load(text)
    _check_structure(config, spec)
    ports = _ports(text)
    assert len(ports) == len(set(ports)), ports


def _decision_wait_without_sampling(spec: CollectorSpec) -> bool:
    return spec.decision_wait is not None and spec.tail_sampling is None


@settings(max_examples=150, deadline=None)
@given(st.one_of(agents, gateways))
def test_render_collector_roles_are_structurally_valid(spec: CollectorSpec) -> None:
    if _decision_wait_without_sampling(spec):
        return
    text = _render_or_usage_error(spec)
    if text is None:
        return
    config = yaml.safe_load(text)
    _check_structure(config, spec)
    pipelines = config["service"]["pipelines"]
    if spec.role == "agent":
        # Everything goes to the gateways, nothing to a backend.
        assert {e for p in pipelines.values() for e in p["exporters"]} <= {
            "load_balancing",
            "load_balancing/metrics",
            "debug",
        }
        for name, p in pipelines.items():
            lb = [e for e in p["exporters"] if e.startswith("load_balancing")]
            assert config["exporters"][lb[0]]["routing_key"] == ("streamID" if name == "metrics" else "traceID")
    elif spec.span_metrics and spec.tail_sampling is not None:
        # RED metrics see every span: span_metrics is fed before tail_sampling.
        assert "span_metrics" in pipelines["traces"]["exporters"] or "spanmetrics" in pipelines["traces"]["exporters"]
        assert "tail_sampling" not in pipelines["traces"].get("processors", [])
        assert pipelines["traces/sampling"]["processors"][0] == "tail_sampling"


@settings(max_examples=100, deadline=None)
@given(st.one_of(specs, agents, gateways))
def test_render_builder_covers_every_rendered_type(spec: CollectorSpec) -> None:
    if _decision_wait_without_sampling(spec):
        return
    text = _render_or_usage_error(spec)
    if text is None:
        return
    config = yaml.safe_load(text)
    manifest = yaml.safe_load(render_builder(spec))
    modules = {m["gomod"].split()[0].rsplit("/", 1)[-1] for k in SECTIONS for m in manifest.get(k, [])}
    types = {(s, cid.split("/")[0]) for s in SECTIONS for cid in config.get(s) or {}}
    needed = set()
    for section, t in types:
        candidates = TYPE_MODULES[t]
        if t == "otlp":
            candidates = {"otlpreceiver"} if section == "receivers" else {"otlpexporter"}
        needed |= candidates
    assert modules == needed
    everything = yaml.safe_load(render_builder(spec, all_components=True))
    assert modules <= {m["gomod"].split()[0].rsplit("/", 1)[-1] for k in SECTIONS for m in everything.get(k, [])}
