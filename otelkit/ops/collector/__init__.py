"""Collector configs and builder manifests, built as data and rendered from ``templates/collector``.

``render_collector(CollectorSpec(...))`` returns a complete OpenTelemetry Collector config that
receives OTLP and fans signals out to the chosen backends; ``render_builder(...)`` returns the ocb
manifest with exactly the components that config (or, with ``all_components=True``, any config
otelkit renders) uses. Names and settings follow the target collector version
(:data:`SUPPORTED_VERSIONS`, default :data:`DEFAULT_VERSION`).
"""

from __future__ import annotations

from otelkit.ops.collector.backends import BACKENDS, Backend
from otelkit.ops.collector.builder import render_builder
from otelkit.ops.collector.model import CollectorModel, Component, Kind, Listener, Pipeline, check
from otelkit.ops.collector.render import build_model, graph, render_collector
from otelkit.ops.collector.spec import Batching, CollectorSpec, Profile
from otelkit.ops.collector.versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, VersionInfo, version_info

__all__ = [
    "BACKENDS",
    "DEFAULT_VERSION",
    "SUPPORTED_VERSIONS",
    "Backend",
    "Batching",
    "CollectorModel",
    "CollectorSpec",
    "Component",
    "Kind",
    "Listener",
    "Pipeline",
    "Profile",
    "VersionInfo",
    "build_model",
    "check",
    "graph",
    "render_builder",
    "render_collector",
    "version_info",
]
