"""Kubernetes manifests for the scale-out layout: agents on every node, gateways behind them.

``render_k8s(K8sSpec(...))`` returns ``{file name: YAML text}`` (:func:`manifests`: the same as
data); ``otelkit render-k8s -o DIR`` writes them. The collector configs inside the ConfigMaps come
from the same renderer as ``otelkit render-collector`` (``--role agent`` / ``--role gateway``).
What is in each file: :mod:`otelkit.ops.kubernetes.render`.
"""

from __future__ import annotations

from otelkit.ops.kubernetes.render import manifests, render_k8s
from otelkit.ops.kubernetes.spec import KUBERNETES_VERSIONS, K8sSpec, collector_specs

__all__ = ["KUBERNETES_VERSIONS", "K8sSpec", "collector_specs", "manifests", "render_k8s"]
