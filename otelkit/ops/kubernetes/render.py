"""The manifests of ``otelkit render-k8s``, built as data and dumped through the shared YAML layer.

Layout (namespace ``otelkit`` by default):

- ``agent.yaml``: a DaemonSet, one agent per node, taking OTLP on the node's ports 4317/4318
  (``hostPort``) and forwarding by trace id to the gateways; its ServiceAccount and the ClusterRole
  ``k8s_attributes`` needs (get/list/watch pods and namespaces); its config in a ConfigMap.
- ``gateway.yaml``: a Deployment (≥ 2 replicas) behind a headless Service, which the agents'
  DNS resolver lists pod by pod; a HorizontalPodAutoscaler on CPU and a PodDisruptionBudget; its
  config in a ConfigMap; backend credentials from the Secret ``otelkit-gateway`` (one key per
  ``${env:VAR}`` the config names; never in these files); the files of ``--ca-file``,
  ``--cert-file`` and ``--key-file`` from the Secret ``otelkit-gateway-tls`` (keys ``ca.crt``,
  ``tls.crt``, ``tls.key``), each mounted at its path.
- ``example.yaml``: the example API and Celery worker, exporting to the agent on their own node
  (``status.hostIP`` from the downward API), and the Redis they use as broker.

Every container runs as a non-root user with a read-only root filesystem, no privilege
escalation, no capabilities, the runtime's seccomp profile, and resource requests and limits. Pod
templates carry a checksum of their config, so a changed config rolls the pods.
"""

from __future__ import annotations

from typing import Any

from otelkit.ops import templates
from otelkit.ops.collector import build_model, render_collector
from otelkit.ops.collector.render import document as collector_document
from otelkit.ops.kubernetes.example import example
from otelkit.ops.kubernetes.objects import meta
from otelkit.ops.kubernetes.spec import KUBERNETES_VERSIONS, K8sSpec, check_spec, collector_specs
from otelkit.ops.kubernetes.tiers import agent, gateway
from otelkit.ops.templates import UserText
from otelkit.ops.yamltext import check_stream, env_vars

__all__ = ["manifests", "render_k8s"]


def manifests(spec: K8sSpec | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every manifest as data: ``{file name: [document, …]}``, what :func:`render_k8s` must parse back to.

    Raises:
        UsageError: a bad option (namespace, image, replicas, or a gateway option).
        RenderError: the gateway's pipelines do not hold together.
    """
    spec = spec or K8sSpec()
    check_spec(spec)
    specs = collector_specs(spec)
    configs = {role: render_collector(s) for role, s in specs.items()}
    # From the model: a user's "${env:X}" is escaped text in the config, not a Secret key to mount.
    secrets = env_vars(collector_document(build_model(specs["gateway"])[0]))
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(UserText(spec.namespace), "namespace", None),
    }
    return {
        "namespace.yaml": [namespace],
        "agent.yaml": agent(spec, configs["agent"]),
        "gateway.yaml": gateway(spec, configs["gateway"], secrets),
        "example.yaml": example(spec),
    }


def render_k8s(spec: K8sSpec | None = None, *, output: str = "deploy/kubernetes/") -> dict[str, str]:
    """Render every manifest: ``{file name: YAML text}``, in the order to apply them.

    Each file is a header of comment lines (the command that renders it, quoted for a shell) and
    the documents of :func:`manifests`; it is parsed back and must be exactly those documents.

    Raises:
        UsageError: a bad option (namespace, image, replicas, or a gateway option).
        RenderError: the gateway's pipelines do not hold together.
        TemplateError: a file does not parse back to its documents (a bug in otelkit).
    """
    spec = spec or K8sSpec()
    documents = manifests(spec)
    header = (
        "# Kubernetes manifests rendered by otelkit; edit the command, not this file:\n"
        f"#   {spec.command_line(output)}\n"
        f"# Checked against the Kubernetes {' and '.join(KUBERNETES_VERSIONS)} API schemas.\n"
    )
    files = {name: header + templates.dump_documents(docs) for name, docs in documents.items()}
    for name, text in files.items():
        check_stream(text, documents[name])
    return files
