"""What to render: :class:`CollectorSpec`, the frozen input of ``render-collector`` and ``render-builder``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import TypeVar

from otelkit.errors import UsageError
from otelkit.ops.collector.versions import DEFAULT_VERSION
from otelkit.ops.yamltext import shell_join

__all__ = ["Batching", "CollectorSpec", "Profile", "Role"]


class Profile(str, Enum):
    """``dev``: debug exporter on every pipeline, zpages. ``production``: memory_limiter first,
    queued and retried exporters, redaction, health_check."""

    DEV = "dev"
    PRODUCTION = "production"


class Batching(str, Enum):
    """Where batching happens: in each exporter's ``sending_queue`` or in the ``batch`` processor."""

    EXPORTER = "exporter"
    PROCESSOR = "processor"


class Role(str, Enum):
    """Where the collector sits. ``standalone``: one collector, apps → backends. ``agent``: next to the
    apps, forwards everything to the gateways by trace id. ``gateway``: behind the agents, samples whole
    traces and exports to the backends."""

    STANDALONE = "standalone"
    AGENT = "agent"
    GATEWAY = "gateway"


def _tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


_TUPLE_FIELDS = (
    "traces",
    "metrics",
    "logs",
    "traces_endpoint",
    "metrics_endpoint",
    "logs_endpoint",
    "traces_auth_env",
    "metrics_auth_env",
    "logs_auth_env",
    "header_env",
    "drop_route",
    "gateway",
    "resource_detection",
)


@dataclass(frozen=True)
class CollectorSpec:
    """Everything that decides a rendered collector config; same spec, same bytes.

    Backends per signal are names from :data:`otelkit.ops.collector.BACKENDS` (comma lists allowed).
    ``*_endpoint`` and ``*_auth_env`` entries are ``VALUE`` (every push backend of the signal) or
    ``BACKEND=VALUE``; ``*_auth_env`` and ``header_env`` (``signal:Header-Name=VAR``) name
    environment variables, rendered as ``${env:VAR}`` and never read.
    """

    traces: tuple[str, ...] = ("jaeger",)
    metrics: tuple[str, ...] = ("prometheus",)
    logs: tuple[str, ...] = ("loki",)
    profile: Profile = Profile.PRODUCTION
    collector_version: str = DEFAULT_VERSION
    bind: str = "0.0.0.0"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    prometheus_endpoint: str | None = None
    telemetry_port: int = 8888
    health_port: int = 13133
    zpages_port: int = 55679
    traces_endpoint: tuple[str, ...] = ()
    metrics_endpoint: tuple[str, ...] = ()
    logs_endpoint: tuple[str, ...] = ()
    traces_auth_env: tuple[str, ...] = ()
    metrics_auth_env: tuple[str, ...] = ()
    logs_auth_env: tuple[str, ...] = ()
    header_env: tuple[str, ...] = ()
    persistent_queue: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    batching: Batching | None = None
    redact: bool | None = None
    span_metrics: bool = False
    tail_sampling: float | None = None
    drop_route: tuple[str, ...] = field(default=())
    max_attribute_length: int | None = None
    role: Role = Role.STANDALONE
    gateway: tuple[str, ...] = ()
    gateway_dns: str | None = None
    k8s_attributes: bool = False
    resource_detection: tuple[str, ...] = ()
    decision_wait: float | None = None
    slow_threshold: int | None = None

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        for signal in ("traces", "metrics", "logs", "resource_detection"):
            # "a,b" and ("a", "b") are the same spec: same bytes, same header command.
            split = tuple(p.strip() for v in getattr(self, signal) for p in v.split(","))
            object.__setattr__(self, signal, split)
        object.__setattr__(self, "profile", _choice(Profile, self.profile, "--profile"))
        object.__setattr__(self, "role", _choice(Role, self.role, "--role"))
        if self.batching is not None:
            object.__setattr__(self, "batching", _choice(Batching, self.batching, "--batching"))

    def option_args(self, default: CollectorSpec | None = None) -> list[tuple[str, ...]]:
        """The options that differ from ``default`` (``CollectorSpec()``), each as its arguments, unquoted:
        ``[("--traces", "otlp"), ("--span-metrics",)]``. Every value of a changed repeated option is listed."""
        default = default or CollectorSpec()
        out: list[tuple[str, ...]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(default, f.name):
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                out.append((flag if value else "--no-" + f.name.replace("_", "-"),))
            elif isinstance(value, tuple):
                out.extend((flag, str(v)) for v in value)
            elif isinstance(value, Enum):
                out.append((flag, str(value.value)))
            elif value is not None:
                out.append((flag, _num(value)))
        return out

    def command_line(self, command: str = "render-collector") -> str:
        """The ``otelkit`` command that renders this spec (only non-default options), quoted for a shell."""
        return shell_join(["otelkit", command, *(arg for group in self.option_args() for arg in group)])


_E = TypeVar("_E", bound=Enum)


def _choice(enum: type[_E], value: object, flag: str) -> _E:
    if isinstance(value, enum):
        return value
    choices = [str(m.value) for m in enum]
    if value in choices:
        return enum(value)
    hint = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
    tail = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise UsageError(f"unknown {flag.removeprefix('--')} {value!r}; expected one of: {', '.join(choices)}{tail}")


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
