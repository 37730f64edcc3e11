"""The structural check of a collector model: each inconsistency is a RenderError naming it."""

from __future__ import annotations

import dataclasses

import pytest

from otelkit.errors import RenderError
from otelkit.ops.collector import CollectorModel, Component, Kind, Listener, Pipeline, check

OTLP = Component(
    Kind.RECEIVER, "otlp", {}, module="otlpreceiver", listens=(Listener("0.0.0.0", 4317, "OTLP/gRPC receiver", "--a"),)
)
LIMITER = Component(Kind.PROCESSOR, "memory_limiter", {}, module="memorylimiterprocessor")
PROM = Component(Kind.EXPORTER, "prometheus", {}, module="prometheusexporter", signals=frozenset({"metrics"}))
DEBUG = Component(Kind.EXPORTER, "debug", {}, module="debugexporter")
SPANMETRICS = Component(
    Kind.CONNECTOR,
    "span_metrics",
    {},
    module="spanmetricsconnector",
    signals=frozenset({"traces"}),
    outputs=frozenset({"metrics"}),
)


def model(**changes: object) -> CollectorModel:
    base = CollectorModel(
        receivers=(OTLP,),
        processors=(LIMITER,),
        exporters=(DEBUG,),
        connectors=(),
        extensions=(),
        pipelines=(Pipeline("traces", ("otlp",), ("memory_limiter",), ("debug",)),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_check_accepts_a_consistent_model() -> None:
    check(model())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"pipelines": (Pipeline("traces", ("otlp",), ("memory_limiter",), ("otlp_grpc/jaeger",)),)},
            "pipeline 'traces' uses exporter 'otlp_grpc/jaeger', which is not defined",
        ),
        ({"exporters": (DEBUG, PROM)}, "exporter 'prometheus' is defined but no pipeline uses it"),
        (
            {"exporters": (PROM,), "pipelines": (Pipeline("traces", ("otlp",), (), ("prometheus",)),)},
            "exporter 'prometheus' accepts metrics, not traces (pipeline 'traces')",
        ),
        ({"pipelines": ()}, "the config has no pipelines; choose at least one backend that is not 'none'"),
        (
            {"pipelines": (Pipeline("traces", ("otlp",), (), ()),)},
            "pipeline 'traces' needs at least one receiver and one exporter",
        ),
        (
            {"pipelines": (Pipeline("profiles", ("otlp",), (), ("debug",)),)},
            "pipeline 'profiles' has unknown signal 'profiles'; expected one of: traces, metrics, logs",
        ),
        ({"exporters": (DEBUG, DEBUG)}, "exporter 'debug' is defined twice; give each a distinct '/name' suffix"),
        (
            {
                "processors": (LIMITER, Component(Kind.PROCESSOR, "batch", {}, module="batchprocessor")),
                "pipelines": (Pipeline("traces", ("otlp",), ("batch", "memory_limiter"), ("debug",)),),
            },
            "pipeline 'traces': memory_limiter must be the first processor, got ['batch', 'memory_limiter']",
        ),
        (
            {
                "connectors": (SPANMETRICS,),
                "pipelines": (Pipeline("traces", ("otlp",), (), ("debug", "span_metrics")),),
                "processors": (),
            },
            "connector 'span_metrics' must be an exporter of one pipeline and a receiver of another",
        ),
        (
            {
                "connectors": (SPANMETRICS,),
                "processors": (),
                "pipelines": (
                    Pipeline("traces", ("otlp",), (), ("span_metrics",)),
                    Pipeline("logs", ("span_metrics",), (), ("debug",)),
                ),
            },
            "connector 'span_metrics' emits metrics, not logs (pipeline 'logs')",
        ),
        (
            {"exporters": (dataclasses.replace(DEBUG, uses=("file_storage/queue",)),)},
            "exporter 'debug' uses extension 'file_storage/queue', which is not defined",
        ),
        (
            {
                "telemetry_listens": (Listener("127.0.0.1", 4317, "collector's own metrics", "--telemetry-port"),),
            },
            "port 4317 is used by both the OTLP/gRPC receiver (--a) and the collector's own metrics "
            "(--telemetry-port); give each its own port",
        ),
        (
            {"telemetry_listens": (Listener("127.0.0.1", 0, "collector's own metrics", "--telemetry-port"),)},
            "port 0 of the collector's own metrics is out of range 1-65535; change it with --telemetry-port",
        ),
    ],
)
def test_check_rejects_inconsistent_model(changes: dict[str, object], message: str) -> None:
    with pytest.raises(RenderError) as info:
        check(model(**changes))
    assert str(info.value) == message


def test_check_connector_links_traces_to_metrics() -> None:
    check(
        model(
            connectors=(SPANMETRICS,),
            exporters=(DEBUG, PROM),
            pipelines=(
                Pipeline("traces", ("otlp",), ("memory_limiter",), ("span_metrics", "debug")),
                Pipeline("metrics", ("otlp", "span_metrics"), ("memory_limiter",), ("prometheus",)),
            ),
        )
    )


def test_listener_clash_ignores_different_specific_hosts() -> None:
    a = Listener("127.0.0.1", 8888, "a", "--a")
    assert not a.clashes_with(Listener("127.0.0.2", 8888, "b", "--b"))
    assert a.clashes_with(Listener("0.0.0.0", 8888, "b", "--b"))
