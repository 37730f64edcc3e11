"""From a :class:`CollectorSpec` to a checked :class:`CollectorModel`, then to YAML text.

All decisions (which exporter, which names for the target version, profile settings) are made
here, as data; ``templates/collector/otelcol.yaml.j2`` only lays the result out.
"""

from __future__ import annotations

from typing import Any

from otelkit.errors import UsageError
from otelkit.ops import templates
from otelkit.ops.collector import roles
from otelkit.ops.collector.backends import parse_backends, valid_host
from otelkit.ops.collector.exporters import ExporterParts, hostport
from otelkit.ops.collector.model import SIGNALS, CollectorModel, Component, Kind, Listener, Pipeline, check
from otelkit.ops.collector.spec import Batching, CollectorSpec, Profile, Role
from otelkit.ops.collector.versions import VersionInfo, version_info

__all__ = ["build_model", "document", "graph", "render_collector"]

# Attribute keys that carry credentials; the production profile deletes them from spans and logs
# because instrumentations capture request headers when asked to, and a token in a trace store
# outlives its rotation.
_REDACT_PATTERN = (
    r"(?i)^(http\.(request|response)\.header\.(authorization|proxy-authorization|cookie|set-cookie|x-api-key)"
    r"|.*(password|passwd|secret|api[._-]?key|access[._-]?token))$"
)
_BIND_NOTE = (
    "Listens on {bind}: {why}.\nMove the ports with --otlp-grpc-port/--otlp-http-port and the interface with --bind."
)


class _Builder(ExporterParts):
    def __init__(self, spec: CollectorSpec) -> None:
        self.spec = spec
        self.v: VersionInfo = version_info(spec.collector_version)
        self.dev = spec.profile is Profile.DEV
        self.production = spec.profile is Profile.PRODUCTION
        batching = spec.batching or Batching.EXPORTER
        if batching is Batching.EXPORTER and not self.v.exporter_batching:
            if spec.batching is Batching.EXPORTER:
                raise UsageError(
                    f"--batching exporter needs collector 0.138.0 or newer (got {self.v.version}); "
                    "use --batching processor or a newer --collector-version"
                )
            batching = Batching.PROCESSOR
        self.batching = batching
        self.redact = self.production if spec.redact is None else spec.redact
        if not valid_host(spec.bind):
            raise UsageError(
                f"invalid --bind {spec.bind!r}; expected an IP address or host name (0.0.0.0 in containers, "
                "127.0.0.1 for local runs)"
            )
        self.backends = {s: parse_backends(s, getattr(spec, s)) for s in SIGNALS}
        self.active = [s for s in SIGNALS if self.backends[s] != ("none",)]
        if not self.active:
            raise UsageError(
                "every signal is 'none'; expected at least one of --traces/--metrics/--logs to name a backend"
            )
        self.storage_id = "file_storage/queue" if spec.persistent_queue is not None else None
        self._check_options()
        roles.check_role(spec, self.v)

    def _check_options(self) -> None:
        spec = self.spec
        needs = [
            (spec.span_metrics, "--span-metrics", ("traces", "metrics")),
            (spec.tail_sampling is not None, "--tail-sampling", ("traces",)),
            (bool(spec.drop_route), "--drop-route", ("traces",)),
        ]
        for on, flag, signals in needs:
            for s in signals:
                if on and s not in self.active:
                    raise UsageError(f"{flag} needs a {s} pipeline, but --{s} is 'none'; choose a {s} backend")
        if spec.tail_sampling is not None and not 0 < spec.tail_sampling <= 100:
            raise UsageError(
                f"invalid --tail-sampling {spec.tail_sampling:g}; expected a percentage in (0, 100] of the "
                "traces to keep besides errors and slow ones (e.g. 10)"
            )
        if spec.max_attribute_length is not None and spec.max_attribute_length < 1:
            raise UsageError(
                f"invalid --max-attribute-length {spec.max_attribute_length}; expected a positive number of "
                "characters (e.g. 4096)"
            )
        for route in spec.drop_route:
            if not route.startswith("/") or '"' in route or "\\" in route:
                raise UsageError(
                    f"invalid --drop-route {route!r}; expected an http.route template starting with '/' "
                    "without quotes or backslashes (e.g. /health/live)"
                )
        if spec.persistent_queue is not None and not spec.persistent_queue.strip():
            raise UsageError("invalid --persistent-queue ''; expected a directory path (e.g. /var/lib/otelcol/queue)")

    def exporters(self) -> dict[str, list[Component]]:
        """signal -> exporters; an agent's go to the gateways, everyone else's to the backends."""
        if self.spec.role is Role.AGENT:
            shared_debug = self._debug()
            return roles.agent_exporters(
                self.spec,
                self.active,
                queue=self._queue(),
                retry=self._retry() if self.production else None,
                debug=(lambda: shared_debug) if self.dev else None,
            )
        return super().exporters()

    # -- processors, connectors, extensions ------------------------------------------------------
    def processors(self) -> list[Component]:
        spec, v = self.spec, self.v
        out: list[Component] = []
        if self.production:
            out.append(
                Component(
                    Kind.PROCESSOR,
                    "memory_limiter",
                    {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
                    module="memorylimiterprocessor",
                    comment="First in every pipeline: refuses data before the collector runs out of memory.",
                )
            )
        if spec.k8s_attributes:
            out.append(roles.k8s_attributes())
        if spec.resource_detection:
            out.append(roles.resource_detection(spec.resource_detection))
        if spec.drop_route:
            if v.filter_trace_conditions:
                config: dict[str, Any] = {
                    "error_mode": "ignore",
                    "trace_conditions": [f'span.attributes["http.route"] == "{r}"' for r in spec.drop_route],
                }
            else:
                config = {
                    "error_mode": "ignore",
                    "traces": {"span": [f'attributes["http.route"] == "{r}"' for r in spec.drop_route]},
                }
            out.append(
                Component(
                    Kind.PROCESSOR,
                    "filter/routes",
                    config,
                    module="filterprocessor",
                    signals=frozenset({"traces"}),
                    comment="Drops spans of these routes (health probes, metrics scrapes).",
                )
            )
        if self.redact:
            out.append(
                Component(
                    Kind.PROCESSOR,
                    "attributes/redact",
                    {"actions": [{"action": "delete", "pattern": _REDACT_PATTERN}]},
                    module="attributesprocessor",
                    signals=frozenset({"traces", "logs"}),
                    comment="Deletes credential-carrying attributes (auth/cookie headers, *password*, *secret*).",
                )
            )
        if spec.max_attribute_length is not None:
            n = spec.max_attribute_length
            out.append(
                Component(
                    Kind.PROCESSOR,
                    "transform/truncate",
                    {
                        "error_mode": "ignore",
                        "trace_statements": [{"context": "span", "statements": [f"truncate_all(attributes, {n})"]}],
                        "log_statements": [{"context": "log", "statements": [f"truncate_all(attributes, {n})"]}],
                    },
                    module="transformprocessor",
                    signals=frozenset({"traces", "logs"}),
                    comment=f"Truncates string attributes to {n} characters.",
                )
            )
        if spec.tail_sampling is not None:
            out.append(self._tail_sampling(spec.tail_sampling))
        if self.batching is Batching.PROCESSOR:
            out.append(Component(Kind.PROCESSOR, "batch", {}, module="batchprocessor"))
        return out

    def _tail_sampling(self, pct: float) -> Component:
        spec = self.spec
        wait = spec.decision_wait if spec.decision_wait is not None else 30
        slow_ms = spec.slow_threshold if spec.slow_threshold is not None else 1000
        wait_text = f"{wait:g}s" if float(wait).is_integer() else f"{round(wait * 1000)}ms"
        # OTTL paths name their context ("span.") from 0.150 on, as the filter processor's do.
        p = "span." if self.v.filter_trace_conditions else ""
        return Component(
            Kind.PROCESSOR,
            "tail_sampling",
            {
                "decision_wait": wait_text,
                "num_traces": 100000,
                # Decisions outlive the buffered spans: a late span of a kept trace is kept, a late
                # span of a dropped trace is dropped (instead of starting a one-span "new" trace).
                "decision_cache": {"sampled_cache_size": 100000, "non_sampled_cache_size": 100000},
                "policies": [
                    {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                    {
                        # One slow span (a request, a task), not the trace's envelope: a Celery task that
                        # runs seconds after its request would make every such trace "slow".
                        "name": "slow",
                        "type": "ottl_condition",
                        "ottl_condition": {
                            "error_mode": "ignore",
                            "span": [f"{p}end_time_unix_nano - {p}start_time_unix_nano > {slow_ms * 1_000_000}"],
                        },
                    },
                    {
                        "name": "sample",
                        "type": "probabilistic",
                        "probabilistic": {"sampling_percentage": int(pct) if float(pct).is_integer() else pct},
                    },
                ],
            },
            module="tailsamplingprocessor",
            signals=frozenset({"traces"}),
            comment=f"Keeps every trace with an error or a span slower than {slow_ms}ms, and {pct:g}% of the rest,\n"
            f"deciding {wait_text} after a trace's first span arrives; later spans follow that decision.",
        )

    def extensions(self) -> list[Component]:
        spec = self.spec
        out: list[Component] = []
        if self.production:
            out.append(
                Component(
                    Kind.EXTENSION,
                    "health_check",
                    {"endpoint": hostport(spec.bind, spec.health_port)},
                    module="healthcheckextension",
                    listens=(Listener(spec.bind, spec.health_port, "health_check extension", "--health-port"),),
                    comment="Liveness for docker-compose/Kubernetes probes: GET / answers 200 when ready.",
                )
            )
        if self.storage_id is not None:
            out.append(
                Component(
                    Kind.EXTENSION,
                    self.storage_id,
                    {"directory": spec.persistent_queue, "create_directory": True},
                    module="filestorage",
                    comment="Persistent sending queues survive restarts; the directory is created if missing.",
                )
            )
        if self.dev:
            out.append(
                Component(
                    Kind.EXTENSION,
                    "zpages",
                    {"endpoint": hostport(spec.bind, spec.zpages_port)},
                    module="zpagesextension",
                    listens=(Listener(spec.bind, spec.zpages_port, "zpages extension", "--zpages-port"),),
                    comment="Live pipeline pages at /debug/pipelinez and /debug/tracez.",
                )
            )
        return out

    def receiver(self) -> Component:
        spec = self.spec
        why = (
            "every interface, on purpose: inside a container the app reaches the collector by its service name\n"
            "(collectors bind localhost by default since 0.104); use --bind 127.0.0.1 outside containers"
            if spec.bind in ("0.0.0.0", "::")
            else "only this interface"
        )
        return Component(
            Kind.RECEIVER,
            "otlp",
            {
                "protocols": {
                    "grpc": {"endpoint": hostport(spec.bind, spec.otlp_grpc_port)},
                    "http": {"endpoint": hostport(spec.bind, spec.otlp_http_port)},
                }
            },
            module="otlpreceiver",
            listens=(
                Listener(spec.bind, spec.otlp_grpc_port, "OTLP/gRPC receiver", "--otlp-grpc-port"),
                Listener(spec.bind, spec.otlp_http_port, "OTLP/HTTP receiver", "--otlp-http-port"),
            ),
            comment=_BIND_NOTE.format(bind=spec.bind, why=why),
        )

    def build(self) -> CollectorModel:
        spec = self.spec
        per_signal = self.exporters()
        processors = self.processors()
        receiver = self.receiver()
        connectors: list[Component] = []
        pipelines: list[Pipeline] = []
        span_metrics_id = self.v.span_metrics_connector
        if spec.span_metrics:
            connectors.append(
                Component(
                    Kind.CONNECTOR,
                    span_metrics_id,
                    # The connector's default is 60 s: RED metrics (and alerts on them) would lag a minute.
                    {"metrics_flush_interval": "15s"},
                    module="spanmetricsconnector",
                    signals=frozenset({"traces"}),
                    outputs=frozenset({"metrics"}),
                    comment="RED metrics (calls, duration) from every span, before any sampling.",
                )
            )

        def chain(signal: str, *, sampling: bool = True, ingress: bool = True) -> tuple[str, ...]:
            return tuple(
                p.id
                for p in processors
                if signal in p.signals
                and (sampling or p.id not in ("tail_sampling", "batch"))
                and (ingress or p.id in ("tail_sampling", "batch"))
            )

        for signal in self.active:
            receivers: tuple[str, ...] = (receiver.id,)
            exporters = tuple(dict.fromkeys(c.id for c in per_signal[signal]))
            if signal == "metrics" and spec.span_metrics:
                receivers += (span_metrics_id,)
            if signal == "traces" and spec.span_metrics:
                if spec.tail_sampling is None:
                    exporters = (span_metrics_id, *exporters)
                else:
                    # Span metrics count every span, so they are computed before tail sampling: one
                    # ingress pipeline (memory_limiter, redaction… once) feeds both the span_metrics
                    # connector and, through the forward connector, the sampling pipeline.
                    forward = roles.sampling_forward()
                    connectors.append(forward)
                    pipelines.append(
                        Pipeline("traces", receivers, chain("traces", sampling=False), (span_metrics_id, forward.id))
                    )
                    pipelines.append(
                        Pipeline("traces/sampling", (forward.id,), chain("traces", ingress=False), exporters)
                    )
                    continue
            pipelines.append(Pipeline(signal, receivers, chain(signal), exporters))
        pipelines.sort(key=lambda p: (SIGNALS.index(p.signal), p.name))

        exporters_all: dict[str, Component] = {}
        for signal in self.active:
            for c in per_signal[signal]:
                exporters_all.setdefault(c.id, c)
        used_processors = {pid for p in pipelines for pid in p.processors}
        telemetry: dict[str, Any] = {
            "logs": {"level": "info"},
            "metrics": {
                "level": "detailed" if self.dev else "normal",
                "readers": [{"pull": {"exporter": {"prometheus": {"host": spec.bind, "port": spec.telemetry_port}}}}],
            },
        }
        model = CollectorModel(
            receivers=(receiver,),
            processors=tuple(p for p in processors if p.id in used_processors),
            exporters=tuple(exporters_all.values()),
            connectors=tuple(connectors),
            extensions=tuple(self.extensions()),
            pipelines=tuple(pipelines),
            telemetry=telemetry,
            telemetry_listens=(
                Listener(spec.bind, spec.telemetry_port, "collector's own metrics", "--telemetry-port"),
            ),
        )
        check(model)
        return model


def build_model(spec: CollectorSpec) -> tuple[CollectorModel, VersionInfo]:
    """Build and check the model for ``spec``.

    Raises:
        UsageError: a bad backend, endpoint, version or option.
        RenderError: the resulting model does not hold together (e.g. a port clash).
    """
    builder = _Builder(spec)
    return builder.build(), builder.v


def document(model: CollectorModel) -> dict[str, Any]:
    """The collector config ``model`` describes, as data: what the rendered YAML must parse back to."""
    doc: dict[str, Any] = {}
    for kind, group in model.sections():
        if group:
            doc[kind.value] = {c.id: dict(c.config) for c in group}
    service: dict[str, Any] = {}
    if model.extensions:
        service["extensions"] = [e.id for e in model.extensions]
    service["telemetry"] = dict(model.telemetry)
    pipelines: dict[str, Any] = {}
    for p in model.pipelines:
        pipeline: dict[str, Any] = {"receivers": list(p.receivers)}
        if p.processors:
            pipeline["processors"] = list(p.processors)
        pipeline["exporters"] = list(p.exporters)
        pipelines[p.name] = pipeline
    service["pipelines"] = pipelines
    doc["service"] = service
    return doc


def render_collector(spec: CollectorSpec | None = None) -> str:
    """Render the collector config YAML for ``spec`` (the defaults when ``None``).

    Raises:
        UsageError: a bad backend, endpoint, version or option.
        RenderError: the pipelines do not hold together (e.g. a port clash).
    """
    spec = spec or CollectorSpec()
    model, v = build_model(spec)
    return templates.render(
        "collector/otelcol.yaml.j2",
        confmap=True,
        document=document(model),
        command=spec.command_line(),
        version=v.version,
        profile=spec.profile.value,
        sections=[(kind.value, group) for kind, group in model.sections() if group],
        extensions=[e.id for e in model.extensions],
        telemetry=model.telemetry,
        pipelines=model.pipelines,
    )


def graph(spec: CollectorSpec | None = None) -> str:
    """Each pipeline as ``name: receivers → processors → exporters``, one per line."""
    model, _ = build_model(spec or CollectorSpec())
    width = max(len(p.name) for p in model.pipelines)
    lines = []
    for p in model.pipelines:
        stages = [", ".join(p.receivers), *p.processors, ", ".join(p.exporters)]
        lines.append(f"{p.name + ':':<{width + 1}} " + " → ".join(stages))
    return "\n".join(lines) + "\n"
