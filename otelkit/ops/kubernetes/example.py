"""The example API, its Celery worker and their Redis, sending to the agent on their own node."""

from __future__ import annotations

from typing import Any

from otelkit.ops.kubernetes.objects import (
    OTLP_HTTP,
    container_security,
    field_env,
    labels,
    meta,
    pod_security,
    resources,
    selector,
)
from otelkit.ops.kubernetes.spec import K8sSpec
from otelkit.ops.templates import UserText

__all__ = ["example"]


def _app_env(service: str) -> list[dict[str, Any]]:
    return [
        field_env("HOST_IP", "status.hostIP"),
        field_env("K8S_POD_UID", "metadata.uid"),
        {"name": "OTEL_PYTHON_DISTRO", "value": "otelkit"},
        # The agent on this pod's node (DaemonSet hostPort); $(HOST_IP) is expanded by the kubelet.
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": f"http://$(HOST_IP):{OTLP_HTTP}"},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_SERVICE_NAME", "value": service},
        # k8s_attributes finds the pod by uid even when the connection's source address is rewritten.
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "k8s.pod.uid=$(K8S_POD_UID)"},
        {"name": "OTELKIT_EXAMPLE_BROKER", "value": "redis://otelkit-redis:6379/0"},
    ]


def _workload(spec: K8sSpec, component: str, service: str, command: list[str] | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": component.removeprefix("example-"),
        "image": UserText(spec.app_image),
        "imagePullPolicy": "IfNotPresent",
    }
    if command is not None:
        container["command"] = command
    container["env"] = _app_env(service)
    if command is None:
        container["ports"] = [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        container["livenessProbe"] = {"httpGet": {"path": "/health/live", "port": "http"}, "periodSeconds": 10}
        container["readinessProbe"] = {"httpGet": {"path": "/health/ready", "port": "http"}, "periodSeconds": 5}
    container["resources"] = resources("100m", "128Mi", "1", "512Mi")
    container["securityContext"] = container_security()
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(f"otelkit-{component}", component, spec.namespace),
        "spec": {
            "replicas": 2 if command is None else 1,
            "selector": {"matchLabels": selector(component)},
            "template": {
                "metadata": {"labels": labels(component)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(10001),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def example(spec: K8sSpec) -> list[dict[str, Any]]:
    ns = spec.namespace
    redis = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("otelkit-redis", "redis", ns),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector("redis")},
            "template": {
                "metadata": {"labels": labels("redis")},
                "spec": {
                    "automountServiceAccountToken": False,
                    # The image's own redis user.
                    "securityContext": pod_security(999),
                    "containers": [
                        {
                            "name": "redis",
                            "image": "redis:7.4.7-alpine",
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--save", "", "--appendonly", "no"],
                            "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
                            "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5},
                            "resources": resources("50m", "64Mi", "500m", "256Mi"),
                            "securityContext": container_security(),
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "256Mi"}}],
                },
            },
        },
    }
    redis_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("otelkit-redis", "redis", ns),
        "spec": {
            "selector": selector("redis"),
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
        },
    }
    api = _workload(spec, "example-api", "example-api", None)
    api_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("otelkit-example-api", "example-api", ns),
        "spec": {
            "selector": selector("example-api"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    worker = _workload(
        spec,
        "example-worker",
        "example-worker",
        ["otelkit-instrument", "celery", "-A", "example.tasks", "worker", "--loglevel=INFO"],
    )
    return [redis, redis_service, api, api_service, worker]
