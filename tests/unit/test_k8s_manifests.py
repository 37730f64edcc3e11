"""``otelkit render-k8s``: the committed deploy/kubernetes/, its schema check, its shape, and every refusal.

Regenerate deploy/kubernetes/ after an intended change (then review the diff):

    OTELKIT_UPDATE_GOLDEN=1 pytest tests/unit/test_k8s_manifests.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_runner import run_cli

from otelkit.ops.kubernetes import KUBERNETES_VERSIONS, K8sSpec, render_k8s

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
UPDATE = os.environ.get("OTELKIT_UPDATE_GOLDEN") == "1"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _by_kind(files: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for text in files.values() for d in _documents(text)}


def test_deploy_kubernetes_matches_render_k8s() -> None:
    files = render_k8s(K8sSpec())
    if UPDATE:
        DEPLOY.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (DEPLOY / name).write_text(text, encoding="utf-8")
    assert sorted(p.name for p in DEPLOY.glob("*.yaml")) == sorted(files)
    for name, text in files.items():
        assert (DEPLOY / name).read_text(encoding="utf-8") == text, (
            f"deploy/kubernetes/{name} drifted from `otelkit render-k8s -o deploy/kubernetes/`; run "
            "OTELKIT_UPDATE_GOLDEN=1 pytest tests/unit/test_k8s_manifests.py"
        )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_deploy_kubernetes_passes_strict_schema_validation(version: str) -> None:
    files = sorted(str(p) for p in DEPLOY.glob("*.yaml"))
    result = subprocess.run(
        [str(VALIDATE), "--strict", "--kubernetes-version", version, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {(d["kind"], d["metadata"]["name"]) for f in files for d in _documents(Path(f).read_text())}
    # One "passed" line per resource: nothing was skipped for lack of a schema.
    assert result.stdout.count(" passed for resource ") == len(kinds), result.stdout


def test_strict_schema_validation_rejects_a_misspelt_field(tmp_path: Path) -> None:
    # The check above can fail: a typo in a security setting is an unknown property under --strict.
    bad = tmp_path / "gateway.yaml"
    bad.write_text((DEPLOY / "gateway.yaml").read_text().replace("readOnlyRootFilesystem", "readOnlyRootFilesytem"))
    result = subprocess.run(
        [str(VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSIONS[0], str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "readOnlyRootFilesytem" in result.stdout + result.stderr


def test_render_k8s_layout() -> None:
    docs = _by_kind(render_k8s(K8sSpec()))
    assert set(docs) == {
        ("Namespace", "otelkit"),
        ("ServiceAccount", "otelkit-agent"),
        ("ClusterRole", "otelkit-agent-otelkit"),
        ("ClusterRoleBinding", "otelkit-agent-otelkit"),
        ("ConfigMap", "otelkit-agent"),
        ("DaemonSet", "otelkit-agent"),
        ("ServiceAccount", "otelkit-gateway"),
        ("ConfigMap", "otelkit-gateway"),
        ("Deployment", "otelkit-gateway"),
        ("Service", "otelkit-gateway"),
        ("HorizontalPodAutoscaler", "otelkit-gateway"),
        ("PodDisruptionBudget", "otelkit-gateway"),
        ("Deployment", "otelkit-redis"),
        ("Service", "otelkit-redis"),
        ("Deployment", "otelkit-example-api"),
        ("Service", "otelkit-example-api"),
        ("Deployment", "otelkit-example-worker"),
    }
    gateway = docs[("Deployment", "otelkit-gateway")]["spec"]
    assert gateway["replicas"] >= 2
    assert docs[("Service", "otelkit-gateway")]["spec"]["clusterIP"] == "None"
    assert docs[("HorizontalPodAutoscaler", "otelkit-gateway")]["spec"]["minReplicas"] == gateway["replicas"]
    assert docs[("PodDisruptionBudget", "otelkit-gateway")]["spec"]["maxUnavailable"] == 1
    assert docs[("ClusterRole", "otelkit-agent-otelkit")]["rules"] == [
        {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}
    ]
    # The agents resolve the headless Service, pod by pod; their config asks for k8s_attributes.
    agent = yaml.safe_load(docs[("ConfigMap", "otelkit-agent")]["data"]["config.yaml"])
    assert agent["exporters"]["load_balancing"]["resolver"] == {
        "dns": {"hostname": "otelkit-gateway.otelkit.svc.cluster.local", "port": "4317"}
    }
    assert "k8s_attributes" in agent["service"]["pipelines"]["traces"]["processors"]
    gw = yaml.safe_load(docs[("ConfigMap", "otelkit-gateway")]["data"]["config.yaml"])
    assert gw["service"]["pipelines"]["traces"]["exporters"] == ["span_metrics", "forward/sampling"]
    assert gw["processors"]["tail_sampling"]["policies"][2]["probabilistic"] == {"sampling_percentage": 10}


def _pods(docs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: d["spec"]["template"]["spec"] for (kind, name), d in docs.items() if kind in ("Deployment", "DaemonSet")
    }


def test_render_k8s_every_container_non_root_read_only_with_requests_and_limits() -> None:
    pods = _pods(_by_kind(render_k8s(K8sSpec())))
    assert len(pods) == 5
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert set(c["resources"]) == {"requests", "limits"}, name
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}, name


def test_render_k8s_apps_send_to_the_agent_on_their_node() -> None:
    docs = _by_kind(render_k8s(K8sSpec()))
    agent_ports = {
        p["name"]: p.get("hostPort")
        for p in docs[("DaemonSet", "otelkit-agent")]["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert agent_ports["otlp-http"] == 4318
    for name in ("otelkit-example-api", "otelkit-example-worker"):
        env = docs[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["env"]
        names = [e["name"] for e in env]
        by_name = {e["name"]: e for e in env}
        assert by_name["HOST_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
        # Defined before it is referenced: the kubelet expands $(HOST_IP) only from earlier entries.
        assert names.index("HOST_IP") < names.index("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert by_name["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://$(HOST_IP):4318"


def test_render_k8s_configmap_is_the_render_collector_output() -> None:
    from otelkit.ops.collector import render_collector
    from otelkit.ops.kubernetes import collector_specs

    spec = K8sSpec()
    docs = _by_kind(render_k8s(spec))
    for role, cspec in collector_specs(spec).items():
        assert docs[("ConfigMap", f"otelkit-{role}")]["data"]["config.yaml"] == render_collector(cspec)


def test_render_k8s_secrets_come_from_a_secret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys,
        "render-k8s",
        "-o",
        str(tmp_path / "k8s"),
        "--namespace",
        "observability",
        "--traces",
        "otlp",
        "--traces-endpoint",
        "https://otlp.vendor.example",
        "--traces-auth-env",
        "VENDOR_TOKEN",
        "--tail-sampling",
        "1",
    )
    assert (code, err) == (0, f"wrote 4 files to {tmp_path / 'k8s'}\n")
    text = (tmp_path / "k8s" / "gateway.yaml").read_text()
    assert text.splitlines()[1] == (
        f"#   otelkit render-k8s -o {tmp_path / 'k8s'}/ --namespace observability --traces otlp "
        "--traces-endpoint https://otlp.vendor.example --traces-auth-env VENDOR_TOKEN --tail-sampling 1"
    )
    docs = _by_kind({"gateway.yaml": text})
    env = docs[("Deployment", "otelkit-gateway")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "VENDOR_TOKEN", "valueFrom": {"secretKeyRef": {"name": "otelkit-gateway", "key": "VENDOR_TOKEN"}}}
    ]
    assert "${env:VENDOR_TOKEN}" in docs[("ConfigMap", "otelkit-gateway")]["data"]["config.yaml"]
    assert docs[("Deployment", "otelkit-gateway")]["metadata"]["namespace"] == "observability"


def test_render_k8s_user_text_like_an_env_reference_needs_no_secret_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The collector does not expand an escaped "$${env:EVIL}"; a secretKeyRef for it would keep the
    # pods from starting (CreateContainerConfigError) until someone adds that key to the Secret.
    argv = ["--traces", "otlp", "--traces-endpoint", "https://otlp.vendor.example/${env:EVIL2}"]
    argv += ["--traces-auth-env", "VENDOR_TOKEN", "--drop-route", "/${env:EVIL}"]
    code, _, err = run_cli(capsys, "render-k8s", "-o", str(tmp_path / "k8s"), *argv)
    assert code == 0, err
    docs = _by_kind({"gateway.yaml": (tmp_path / "k8s" / "gateway.yaml").read_text()})
    env = docs[("Deployment", "otelkit-gateway")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["VENDOR_TOKEN"]
    config = docs[("ConfigMap", "otelkit-gateway")]["data"]["config.yaml"]
    assert '"/$${env:EVIL}"' in config and "https://otlp.vendor.example/$${env:EVIL2}" in config


def test_render_k8s_header_is_the_command_quoted_for_a_shell(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A newline in -o ended the comment and started documents of its own; a value holding " --" cut
    # the gateway's flags short.
    out_dir = tmp_path / "k8s\n---\nkind: Secret"
    argv = ["--drop-route", "/a --role x", "--drop-route", "/b", "--no-span-metrics", "--traces", "jaeger,otlp"]
    argv += ["--traces-endpoint", "otlp=https://otlp.example"]
    code, _, err = run_cli(capsys, "render-k8s", "-o", str(out_dir), *argv)
    assert (code, err) == (0, f"wrote 4 files to $'{tmp_path}/k8s\\n---\\nkind: Secret'\n")
    for name in ("namespace.yaml", "agent.yaml", "gateway.yaml", "example.yaml"):
        lines = (out_dir / name).read_text().splitlines()
        assert lines[1] == (
            f"#   otelkit render-k8s -o $'{tmp_path}/k8s\\n---\\nkind: Secret/' --traces jaeger --traces otlp "
            "--traces-endpoint otlp=https://otlp.example --drop-route '/a --role x' --drop-route /b --no-span-metrics"
        )
        assert lines[3] == "---"


def test_render_k8s_output_that_cannot_be_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    long = tmp_path / ("k" * 300)
    code, out, err = run_cli(capsys, "render-k8s", "-o", str(long))
    assert (code, out, err) == (
        2,
        "",
        f"error: cannot write to {str(long)!r}: File name too long; choose another -o directory\n",
    )
    file = tmp_path / "file"
    file.write_text("x")
    code, out, err = run_cli(capsys, "render-k8s", "-o", str(file))
    assert (code, out, err) == (
        2,
        "",
        f"error: cannot write to {str(file)!r}: it is a file, not a directory; choose a directory\n",
    )
    orphan = tmp_path / "missing" / "k8s"
    code, out, err = run_cli(capsys, "render-k8s", "-o", str(orphan))
    assert (code, out, err) == (
        2,
        "",
        f"error: cannot create {str(orphan)!r}: No such file or directory; create its parent or choose another -o\n",
    )
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_render_k8s_tls_files_are_mounted_from_a_secret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The gateway's config names --ca-file/--cert-file/--key-file: without those files in the pod the
    # collector would not start. They come from the Secret otelkit-gateway-tls, each at its own path.
    out_dir = tmp_path / "k8s"
    code, _, err = run_cli(
        capsys,
        "render-k8s",
        "-o",
        str(out_dir),
        "--traces",
        "otlp",
        "--traces-endpoint",
        "https://otlp.vendor.example",
        "--ca-file",
        "/etc/ssl/vendor/ca.pem",
        "--cert-file",
        "/etc/ssl/vendor/client.pem",
        "--key-file",
        "/etc/ssl/vendor/client.key",
    )
    assert (code, err) == (0, f"wrote 4 files to {out_dir}\n")
    docs = _by_kind({"gateway.yaml": (out_dir / "gateway.yaml").read_text()})
    pod = docs[("Deployment", "otelkit-gateway")]["spec"]["template"]["spec"]
    assert pod["volumes"][1] == {
        "name": "tls",
        "secret": {
            "secretName": "otelkit-gateway-tls",
            "defaultMode": 0o440,
            "items": [
                {"key": "ca.crt", "path": "ca.crt"},
                {"key": "tls.crt", "path": "tls.crt"},
                {"key": "tls.key", "path": "tls.key"},
            ],
        },
    }
    assert pod["containers"][0]["volumeMounts"][1:] == [
        {"name": "tls", "mountPath": "/etc/ssl/vendor/ca.pem", "subPath": "ca.crt", "readOnly": True},
        {"name": "tls", "mountPath": "/etc/ssl/vendor/client.pem", "subPath": "tls.crt", "readOnly": True},
        {"name": "tls", "mountPath": "/etc/ssl/vendor/client.key", "subPath": "tls.key", "readOnly": True},
    ]
    config = yaml.safe_load(docs[("ConfigMap", "otelkit-gateway")]["data"]["config.yaml"])
    tls = config["exporters"]["otlp_http/traces"]["tls"]
    assert tls == {
        "ca_file": "/etc/ssl/vendor/ca.pem",
        "cert_file": "/etc/ssl/vendor/client.pem",
        "key_file": "/etc/ssl/vendor/client.key",
    }
    result = subprocess.run(
        [str(VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSIONS[-1], str(out_dir / "gateway.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_k8s_user_text_is_quoted() -> None:
    text = render_k8s(K8sSpec(namespace="null", app_image="registry.example/app:1.0"))["example.yaml"]
    assert '  namespace: "null"\n' in text
    assert 'image: "registry.example/app:1.0"' in text
    assert _documents(text)[0]["metadata"]["namespace"] == "null"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--namespace", "Obs"),
            "invalid --namespace 'Obs'; expected a DNS label: lower-case letters, digits and '-', at most 63 "
            "characters (e.g. observability)",
        ),
        (
            # "$" in a pattern also matches before a final newline: the names are checked whole.
            ("--namespace", "otelkit\n"),
            "invalid --namespace 'otelkit\\n'; expected a DNS label: lower-case letters, digits and '-', at most 63 "
            "characters (e.g. observability)",
        ),
        (
            ("--cluster-domain", "cluster.local\n"),
            "invalid --cluster-domain 'cluster.local\\n'; expected a DNS domain such as cluster.local",
        ),
        (
            ("--app-image", "app:1\n"),
            "invalid --app-image 'app:1\\n'; expected an image reference such as "
            "otel/opentelemetry-collector-contrib:0.161.0 (no spaces or quotes)",
        ),
        (
            ("--cluster-domain", "cluster..local"),
            "invalid --cluster-domain 'cluster..local'; expected a DNS domain such as cluster.local",
        ),
        (
            ("--app-image", "my app"),
            "invalid --app-image 'my app'; expected an image reference such as "
            "otel/opentelemetry-collector-contrib:0.161.0 (no spaces or quotes)",
        ),
        (
            ("--gateway-replicas", "1"),
            "invalid --gateway-replicas 1; expected 2 or more: with one gateway every trace is lost while it "
            "restarts, and its PodDisruptionBudget would block node drains; at most 1000",
        ),
        (
            ("--gateway-max-replicas", "1"),
            "invalid --gateway-max-replicas 1; expected at least --gateway-replicas (2) and at most 1000",
        ),
        (
            # maxReplicas is an int32: kubectl apply would refuse the autoscaler.
            ("--gateway-max-replicas", "100000000000000"),
            "invalid --gateway-max-replicas 100000000000000; expected at least --gateway-replicas (2) and at most 1000",
        ),
        (
            ("--gateway-replicas", "99999999999999999999"),
            "invalid --gateway-replicas 99999999999999999999; expected 2 or more: with one gateway every trace is "
            "lost while it restarts, and its PodDisruptionBudget would block node drains; at most 1000",
        ),
        (
            ("--tail-sampling", "5", "--no-tail-sampling"),
            "--tail-sampling and --no-tail-sampling contradict each other; give one",
        ),
        (
            ("--traces", "otlp", "--traces-endpoint", "https://otlp.example", "--ca-file", "certs/ca.pem"),
            "invalid --ca-file 'certs/ca.pem' for Kubernetes; expected an absolute path outside /etc/otelkit/, "
            "where the pod mounts the file from the Secret otelkit-gateway-tls (e.g. /etc/ssl/otelkit/ca.pem)",
        ),
        (
            ("--traces", "otlp", "--traces-endpoint", "https://otlp.example", "--ca-file", "/etc/otelkit/ca.pem"),
            "invalid --ca-file '/etc/otelkit/ca.pem' for Kubernetes; expected an absolute path outside "
            "/etc/otelkit/, where the pod mounts the file from the Secret otelkit-gateway-tls "
            "(e.g. /etc/ssl/otelkit/ca.pem)",
        ),
        (
            ("--traces", "otlp", "--traces-endpoint", "https://otlp.example", "--ca-file", "/etc/ssl/ca.pem\n"),
            "invalid --ca-file '/etc/ssl/ca.pem\\n' for Kubernetes; expected an absolute path outside /etc/otelkit/, "
            "where the pod mounts the file from the Secret otelkit-gateway-tls (e.g. /etc/ssl/otelkit/ca.pem)",
        ),
        (
            (
                *("--traces", "otlp", "--traces-endpoint", "https://otlp.example"),
                *("--cert-file", "/etc/ssl/c.pem", "--key-file", "/etc/ssl/c.pem"),
            ),
            "--key-file '/etc/ssl/c.pem' is also --cert-file; the pod mounts each file from its own key of the "
            "Secret otelkit-gateway-tls, so give each its own path",
        ),
        (
            ("--traces", "jeager"),
            "unknown traces backend 'jeager'; expected one of: jaeger, tempo, zipkin, otlp, debug, none "
            "(did you mean 'jaeger'?)",
        ),
    ],
)
def test_render_k8s_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    out_dir = tmp_path / "k8s"
    code, out, err = run_cli(capsys, "render-k8s", "-o", str(out_dir), *argv)
    assert (code, out, err) == (2, "", f"error: {message}\n")
    assert not out_dir.exists()


def test_render_k8s_writes_no_file_when_one_cannot_be_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "k8s"
    (out_dir / "gateway.yaml").mkdir(parents=True)
    code, out, err = run_cli(capsys, "render-k8s", "-o", str(out_dir))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot write '{out_dir / 'gateway.yaml'}': it is a directory")
    assert err.count("\n") == 1
    # Checked before the first write: not the namespace and the agent without the gateways.
    assert sorted(p.name for p in out_dir.iterdir()) == ["gateway.yaml"]


def test_render_k8s_imports_no_opentelemetry_sdk(tmp_path: Path) -> None:
    # Ops code: rendering manifests must not pull the SDK or the API in (the CLI's own `tail` command
    # brings the OTLP protobuf messages, which are neither).
    code = (
        "import sys\n"
        "from otelkit.cli import main\n"
        "try:\n"
        f"    main(['render-k8s', '-o', {str(tmp_path / 'k8s')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry') and not m.startswith("
        "('opentelemetry.proto', 'google.'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['opentelemetry']"  # the namespace package of opentelemetry.proto
    assert (tmp_path / "k8s" / "gateway.yaml").is_file()
