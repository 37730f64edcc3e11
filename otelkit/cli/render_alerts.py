"""``otelkit render-alerts``: Prometheus alerting rules from a small SLO spec (see :mod:`otelkit.ops.slo`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from otelkit.ops import slo
from otelkit.ops.files import write_atomic

EPILOG = """\
\b
Examples:
  otelkit render-alerts                                   # the default SLOs, to stdout
  otelkit render-alerts --spec stack/slo.yaml -o stack/prometheus/alerts.yaml
  promtool check rules stack/prometheus/alerts.yaml
"""


def render_alerts(
    spec: Annotated[
        Path | None,
        typer.Option("--spec", metavar="FILE", help="SLO spec (YAML); without it the default SLOs are rendered."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
    ] = None,
) -> None:
    """Write Prometheus alerting rules for your SLOs: availability burn rate, HTTP errors and latency,
    Celery queue wait, run time and success, process memory, collector and scrape health."""
    parsed = slo.default_spec() if spec is None else slo.load_spec(spec)
    command = ["otelkit", "render-alerts"]
    if spec is not None:
        command += ["--spec", str(spec)]
    if output is not None:
        command += ["-o", str(output)]
    text = slo.render_alerts(parsed, command=shlex.join(command))
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text)
    print(f"wrote {output}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("render-alerts", epilog=EPILOG)(render_alerts)
