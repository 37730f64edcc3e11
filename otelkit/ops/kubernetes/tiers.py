"""The agent DaemonSet and the gateway Deployment, with what each needs around it."""

from __future__ import annotations

from typing import Any

from otelkit.ops.kubernetes.objects import (
    HEALTH,
    OTLP_GRPC,
    OTLP_HTTP,
    PROMETHEUS,
    TELEMETRY,
    checksum,
    collector_container,
    config_map,
    field_env,
    labels,
    meta,
    pod_security,
    resources,
    selector,
)
from otelkit.ops.kubernetes.spec import TLS_KEYS, TLS_SECRET, K8sSpec
from otelkit.ops.templates import UserText

__all__ = ["agent", "gateway"]


def agent(spec: K8sSpec, config: str) -> list[dict[str, Any]]:
    ns = spec.namespace
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta("otelkit-agent", "agent", ns),
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(UserText(f"otelkit-agent-{ns}"), "agent", None),
        # k8s_attributes: pod metadata and namespace names; deployment names come from the
        # ReplicaSet's name, so no access to replicasets is needed.
        "rules": [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(UserText(f"otelkit-agent-{ns}"), "agent", None),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": UserText(f"otelkit-agent-{ns}"),
        },
        "subjects": [{"kind": "ServiceAccount", "name": "otelkit-agent", "namespace": UserText(ns)}],
    }
    container = collector_container(
        "agent",
        spec.collector_image,
        # hostPort: apps reach the agent on their own node at status.hostIP.
        [
            {"name": "otlp-grpc", "containerPort": OTLP_GRPC, "hostPort": OTLP_GRPC, "protocol": "TCP"},
            {"name": "otlp-http", "containerPort": OTLP_HTTP, "hostPort": OTLP_HTTP, "protocol": "TCP"},
            {"name": "health", "containerPort": HEALTH, "protocol": "TCP"},
            {"name": "telemetry", "containerPort": TELEMETRY, "protocol": "TCP"},
        ],
        [field_env("K8S_NODE_NAME", "spec.nodeName")],
        resources("100m", "128Mi", "500m", "512Mi"),
    )
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta("otelkit-agent", "agent", ns),
        "spec": {
            "selector": {"matchLabels": selector("agent")},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": labels("agent"),
                    "annotations": {"otelkit.dev/config-sha256": checksum(config)},
                },
                "spec": {
                    "serviceAccountName": "otelkit-agent",
                    "securityContext": pod_security(10001),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "otelkit-agent"}},
                        # The persistent queue survives a container restart (crash, OOM kill) in the
                        # same pod; a new pod starts with an empty queue.
                        {"name": "queue", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }
    return [account, role, binding, config_map("otelkit-agent", "agent", ns, config), daemonset]


def gateway(spec: K8sSpec, config: str, secrets: list[str]) -> list[dict[str, Any]]:
    """The gateway's objects; ``secrets``: the variables of the ``${env:VAR}`` references its config makes."""
    ns = spec.namespace
    # Every ${env:VAR} otelkit writes into the config comes from the Secret, key VAR.
    env: list[dict[str, Any]] = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": "otelkit-gateway", "key": UserText(var)}}}
        for var in secrets
    ]
    container = collector_container(
        "gateway",
        spec.collector_image,
        [
            {"name": "otlp-grpc", "containerPort": OTLP_GRPC, "protocol": "TCP"},
            {"name": "otlp-http", "containerPort": OTLP_HTTP, "protocol": "TCP"},
            {"name": "health", "containerPort": HEALTH, "protocol": "TCP"},
            {"name": "telemetry", "containerPort": TELEMETRY, "protocol": "TCP"},
            {"name": "prometheus", "containerPort": PROMETHEUS, "protocol": "TCP"},
        ],
        env,
        resources("500m", "512Mi", "2", "2Gi"),
    )
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": "otelkit-gateway"}}]
    # --ca-file/--cert-file/--key-file: each file from its key of the Secret, at the path the config names.
    tls = [(UserText(getattr(spec.gateway, name)), key) for name, key in TLS_KEYS if getattr(spec.gateway, name)]
    if tls:
        items = [{"key": key, "path": key} for _, key in tls]
        volumes.append({"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440, "items": items}})
        container["volumeMounts"] += [
            {"name": "tls", "mountPath": path, "subPath": key, "readOnly": True} for path, key in tls
        ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("otelkit-gateway", "gateway", ns),
        "spec": {
            "replicas": spec.gateway_replicas,
            "selector": {"matchLabels": selector("gateway")},
            "template": {
                "metadata": {
                    "labels": labels("gateway"),
                    "annotations": {
                        "otelkit.dev/config-sha256": checksum(config),
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PROMETHEUS),
                    },
                },
                "spec": {
                    "serviceAccountName": "otelkit-gateway",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(10001),
                    # Tail sampling decides pending traces on shutdown and the exporters flush.
                    "terminationGracePeriodSeconds": 60,
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": selector("gateway")},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("otelkit-gateway", "gateway", ns),
        "spec": {
            # Headless: the name resolves to every ready gateway pod, which is what the agents'
            # DNS resolver balances over (a ClusterIP would hide the pods behind one address).
            "clusterIP": "None",
            "selector": selector("gateway"),
            "ports": [
                {"name": "otlp-grpc", "port": OTLP_GRPC, "targetPort": "otlp-grpc", "protocol": "TCP"},
                {"name": "otlp-http", "port": OTLP_HTTP, "targetPort": "otlp-http", "protocol": "TCP"},
            ],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta("otelkit-gateway", "gateway", ns),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "otelkit-gateway"},
            "minReplicas": spec.gateway_replicas,
            "maxReplicas": spec.gateway_max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            # Every change of the gateway set re-routes ~1/N of the traces: scale down slowly.
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 600,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                }
            },
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("otelkit-gateway", "gateway", ns),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector("gateway")}},
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta("otelkit-gateway", "gateway", ns),
        "automountServiceAccountToken": False,
    }
    return [account, config_map("otelkit-gateway", "gateway", ns, config), deployment, service, hpa, pdb]
