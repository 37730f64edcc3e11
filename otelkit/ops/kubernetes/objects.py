"""Building blocks of the manifests: labels, metadata, security contexts, resources, collector containers."""

from __future__ import annotations

import hashlib
from typing import Any

from otelkit.ops.kubernetes.spec import CONFIG_DIR, OTLP_GRPC, QUEUE_DIR
from otelkit.ops.templates import UserText

__all__ = [
    "CONFIG_DIR",
    "HEALTH",
    "OTLP_GRPC",
    "OTLP_HTTP",
    "PROMETHEUS",
    "QUEUE_DIR",
    "TELEMETRY",
    "checksum",
    "collector_container",
    "config_map",
    "container_security",
    "field_env",
    "labels",
    "meta",
    "pod_security",
    "resources",
    "selector",
]

OTLP_HTTP, HEALTH, TELEMETRY, PROMETHEUS = 4318, 13133, 8888, 8889
_PART_OF = "otelkit"


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"otelkit-{component}",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": _PART_OF,
    }


def selector(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"otelkit-{component}"}


def meta(name: str, component: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = UserText(namespace)
    meta["labels"] = labels(component)
    return meta


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu_req, "memory": mem_req}, "limits": {"cpu": cpu_lim, "memory": mem_lim}}


def field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_map(name: str, component: str, namespace: str, config: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(name, component, namespace),
        "data": {"config.yaml": config},
    }


def collector_container(
    name: str, image: str, ports: list[dict[str, Any]], env: list[dict[str, Any]], resources: dict[str, Any]
) -> dict[str, Any]:
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    if name == "agent":
        mounts.append({"name": "queue", "mountPath": QUEUE_DIR})
    probe = {"httpGet": {"path": "/", "port": HEALTH}}
    container: dict[str, Any] = {
        "name": "collector",
        "image": UserText(image),
        "imagePullPolicy": "IfNotPresent",
        "args": [f"--config={CONFIG_DIR}/config.yaml"],
    }
    if env:
        container["env"] = env
    return {
        **container,
        "ports": ports,
        "livenessProbe": {**probe, "initialDelaySeconds": 5, "periodSeconds": 10},
        "readinessProbe": {**probe, "periodSeconds": 5},
        "resources": resources,
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
