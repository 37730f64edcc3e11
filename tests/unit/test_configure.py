"""otelkit.configure(): explicit arguments beat the environment, which beats the defaults — without
writing into os.environ, which every child process would inherit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    import otelkit

    kwargs = json.loads(sys.argv[1])
    telemetry = otelkit.configure(instrument=False, **kwargs)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('OTEL_SERVICE_NAME'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(json.dumps({
        "resource": telemetry.tracer_provider.resource.attributes["service.name"],
        "environ": os.environ.get("OTEL_SERVICE_NAME"),
        "child": child,
    }))
    """
)


def _run(kwargs: dict[str, str], env_name: str | None) -> dict[str, str | None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
    if env_name is not None:
        env["OTEL_SERVICE_NAME"] = env_name
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(kwargs)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, str | None] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_configure_service_name_argument_beats_the_environment() -> None:
    result = _run({"service_name": "explicit-svc"}, env_name="from-env")
    assert result == {"resource": "explicit-svc", "environ": "from-env", "child": "from-env"}


def test_configure_service_name_argument_does_not_leak_into_child_processes() -> None:
    result = _run({"service_name": "explicit-svc"}, env_name=None)
    assert result == {"resource": "explicit-svc", "environ": None, "child": "None"}


def test_configure_without_argument_uses_the_environment() -> None:
    assert _run({}, env_name="from-env") == {"resource": "from-env", "environ": "from-env", "child": "from-env"}


def test_configure_without_argument_nor_environment_derives_the_default() -> None:
    # Derived from the command line (otelkit._runtime.env.default_service_name: the project folder
    # for `python -c`) and, as under the launcher, set as the OTEL_SERVICE_NAME default for child
    # processes too.
    from otelkit._runtime.env import default_service_name

    derived = default_service_name([sys.executable, "-c", "pass"], cwd=os.getcwd())
    assert derived not in ("c", "python-service")
    assert _run({}, env_name=None) == {"resource": derived, "environ": derived, "child": derived}
