"""The exporters of a collector config: one per chosen backend and signal, with the options that apply.

Part of :class:`otelkit.ops.collector.render` (its builder inherits :class:`ExporterParts`): which
exporter type a backend gets at the target version, endpoints, headers and credentials from
environment variables, TLS, sending queues and retries.
"""

from __future__ import annotations

import re
from typing import Any

from otelkit.errors import UsageError
from otelkit.ops.collector.backends import BACKENDS, Backend, valid_host, validate_endpoint
from otelkit.ops.collector.model import SIGNALS, Component, Kind, Listener
from otelkit.ops.collector.spec import Batching, CollectorSpec
from otelkit.ops.collector.versions import VersionInfo
from otelkit.ops.yamltext import env_ref

__all__ = ["ExporterParts", "hostport"]

_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _env(var: str, what: str) -> str:
    # The one place a collector config gets a `${…}` on purpose; every other `$` is escaped as `$$`.
    return env_ref(var, what)


def _per_backend(signal: str, option: str, values: tuple[str, ...], push: list[Backend]) -> dict[str, list[str]]:
    """Spread ``VALUE`` / ``BACKEND=VALUE`` option entries over the signal's push backends."""
    out: dict[str, list[str]] = {b.name: [] for b in push}
    names = [b.name for b in push]
    for entry in values:
        name, sep, value = entry.partition("=")
        if sep and name in BACKENDS[signal]:
            if name not in out:
                raise UsageError(
                    f"--{option} {entry!r} names backend {name!r}, which is not among the {signal} push backends "
                    f"({', '.join(names) or 'none'}); add --{signal} {name} or drop the prefix"
                )
            targets = [name]
        else:
            value = entry
            if not push:
                raise UsageError(
                    f"--{option} {entry!r} has no {signal} backend to apply to (none of the chosen {signal} "
                    "backends sends over the network); choose a push backend or drop the option"
                )
            if len(push) > 1:
                raise UsageError(
                    f"--{option} {entry!r} is ambiguous: {signal} goes to {', '.join(names)}; "
                    f"write it as BACKEND=VALUE (e.g. {names[0]}={entry})"
                )
            targets = names
        for t in targets:
            if out[t]:
                raise UsageError(f"--{option} is given twice for {signal} backend {t!r}; give it once")
            out[t].append(value)
    return out


class ExporterParts:
    """The exporter half of the collector builder; the builder sets these attributes."""

    spec: CollectorSpec
    v: VersionInfo
    dev: bool
    production: bool
    batching: Batching
    storage_id: str | None
    backends: dict[str, tuple[str, ...]]
    active: list[str]

    # -- exporters -----------------------------------------------------------------------------
    def exporters(self) -> dict[str, list[Component]]:
        """signal -> exporters (shared ones, like debug, appear in several lists)."""
        spec = self.spec
        per_signal: dict[str, list[Component]] = {}
        debug: Component | None = None
        any_https = False
        for signal in self.active:
            chosen = [BACKENDS[signal][n] for n in self.backends[signal]]
            push = [b for b in chosen if b.pushes]
            endpoints = _per_backend(signal, f"{signal}-endpoint", getattr(spec, f"{signal}_endpoint"), push)
            auth = _per_backend(signal, f"{signal}-auth-env", getattr(spec, f"{signal}_auth_env"), push)
            headers = self._headers(signal, push)
            comps: list[Component] = []
            for b in chosen:
                if b.exporter == "debug":
                    debug = debug or self._debug()
                    comps.append(debug)
                    continue
                if b.exporter == "prometheus":
                    comps.append(self._prometheus())
                    continue
                endpoint = validate_endpoint(signal, b, (endpoints[b.name] or [b.default_endpoint or ""])[0])
                any_https = any_https or endpoint.startswith("https://")
                hdrs = dict(headers.get(b.name, {}))
                if auth[b.name]:
                    hdrs = {"Authorization": _env(auth[b.name][0], f"--{signal}-auth-env"), **hdrs}
                comps.append(self._push(signal, b, endpoint, hdrs))
            if self.dev and debug not in comps:
                debug = debug or self._debug()
                comps.append(debug)
            per_signal[signal] = comps
        if (spec.ca_file or spec.cert_file or spec.key_file) and not any_https:
            raise UsageError(
                "--ca-file/--cert-file/--key-file are set but no exporter endpoint uses https://; "
                "use https:// endpoints or drop the TLS options"
            )
        if bool(spec.cert_file) != bool(spec.key_file):
            raise UsageError("--cert-file and --key-file go together (client TLS); give both or neither")
        return per_signal

    def _headers(self, signal: str, push: list[Backend]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for entry in self.spec.header_env:
            m = re.fullmatch(r"(?P<sig>[a-z]+)(?:\.(?P<backend>[a-z_]+))?:(?P<name>[^=]+)=(?P<var>.*)", entry)
            if not m or m["sig"] not in SIGNALS:
                raise UsageError(
                    f"malformed --header-env {entry!r}; expected SIGNAL[.BACKEND]:Header-Name=ENV_VAR "
                    "(e.g. logs:X-Scope-OrgID=LOKI_TENANT)"
                )
            if m["sig"] != signal:
                continue
            if not _HEADER.fullmatch(m["name"]):
                raise UsageError(
                    f"invalid header name {m['name']!r} in --header-env {entry!r}; expected a token like X-Scope-OrgID"
                )
            value = _env(m["var"], "--header-env")
            targets = [b.name for b in push if m["backend"] in (None, b.name)]
            if not targets:
                raise UsageError(
                    f"--header-env {entry!r} has no {signal} push backend to apply to "
                    f"(chosen: {', '.join(self.backends[signal])}); choose a push backend or drop the option"
                )
            for t in targets:
                out.setdefault(t, {})[m["name"]] = value
        return out

    def _debug(self) -> Component:
        return Component(
            Kind.EXPORTER,
            "debug",
            {"verbosity": "detailed" if self.dev else "basic"},
            module="debugexporter",
        )

    def _prometheus(self) -> Component:
        spec = self.spec
        endpoint = spec.prometheus_endpoint or hostport(spec.bind, 8889)
        host, _, port = endpoint.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not valid_host(host.strip("[]")):
            raise UsageError(
                f"malformed --prometheus-endpoint {endpoint!r}; expected host:port to serve /metrics on "
                "(e.g. 0.0.0.0:8889)"
            )
        config: dict[str, Any] = {"endpoint": endpoint, "enable_open_metrics": True, **self._resource_labels()}
        return Component(
            Kind.EXPORTER,
            "prometheus",
            config,
            module="prometheusexporter",
            signals=frozenset({"metrics"}),
            listens=(Listener(host.strip("[]"), int(port), "prometheus exporter", "--prometheus-endpoint"),),
            comment="Scraped by Prometheus at /metrics; OpenMetrics carries exemplars; service_* resource labels.",
        )

    def _resource_labels(self) -> dict[str, Any]:
        """The resource attributes both Prometheus exporters turn into labels, as the version spells it."""
        if self.v.resource_constant_labels:
            return {
                "resource_constant_labels": {
                    "included": ["service.name", "service.namespace", "service.version", "deployment.environment.name"]
                }
            }
        return {"resource_to_telemetry_conversion": {"enabled": True}}

    def _tls(self, endpoint: str, grpc: bool) -> dict[str, Any] | None:
        spec = self.spec
        if endpoint.startswith("https://"):
            tls = {
                k: v
                for k, v in (("ca_file", spec.ca_file), ("cert_file", spec.cert_file), ("key_file", spec.key_file))
                if v
            }
            return tls or None
        if grpc:
            # A scheme-less or http:// gRPC endpoint is plaintext inside the compose network.
            return {"insecure": True}
        return None

    def _queue(self, *, persistent: bool = True) -> dict[str, Any]:
        queue: dict[str, Any] = {}
        if self.production:
            queue["enabled"] = True
            queue["queue_size"] = 1000
            if self.storage_id and persistent:
                queue["storage"] = self.storage_id
        if self.batching is Batching.EXPORTER:
            queue["batch"] = {}
        return queue

    def _retry(self) -> dict[str, Any]:
        return {"enabled": True, "initial_interval": "5s", "max_interval": "30s", "max_elapsed_time": "300s"}

    def _push(self, signal: str, b: Backend, endpoint: str, headers: dict[str, str]) -> Component:
        v = self.v
        grpc = b.exporter == "otlp_grpc"
        tls = self._tls(endpoint, grpc)
        client: dict[str, Any] = {"endpoint": endpoint}
        if tls:
            client["tls"] = tls
        if headers:
            client["headers"] = headers
        config: dict[str, Any]
        comment = f"{signal} → {b.name}: {b.description}."
        signals = frozenset({signal})
        uses: tuple[str, ...] = ()
        if b.exporter == "prometheus_remote_write":
            config = {"http": client} if v.remote_write_http_block else dict(client)
            config.update(self._resource_labels())
            if self.production:
                config["retry_on_failure"] = self._retry()
            # It queues and batches in remote_write_queue, not sending_queue: no persistent queue.
            return Component(
                Kind.EXPORTER,
                v.prometheus_remote_write_exporter,
                config,
                module="prometheusremotewriteexporter",
                signals=signals,
                comment=comment,
            )
        config = dict(client)
        queue = self._queue()
        if queue:
            config["sending_queue"] = queue
            if "storage" in queue:
                uses = (queue["storage"],)
        if self.production:
            config["retry_on_failure"] = self._retry()
        if b.exporter == "zipkin":
            type_name, module, cid = "zipkin", "zipkinexporter", "zipkin"
        elif grpc:
            type_name, module = v.otlp_grpc_exporter, "otlpexporter"
            cid = f"{type_name}/{b.name}"
        else:
            type_name, module = v.otlp_http_exporter, "otlphttpexporter"
            cid = f"{type_name}/{b.name if b.name != 'otlp' else signal}"
        return Component(Kind.EXPORTER, cid, config, module=module, signals=signals, uses=uses, comment=comment)
