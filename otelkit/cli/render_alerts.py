"""``otelkit render-alerts``: Prometheus alerting rules, and the Alertmanager configuration that routes
them, from a small SLO spec (see :mod:`otelkit.ops.slo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from otelkit.cli._output import emit, is_stdout
from otelkit.errors import UsageError
from otelkit.ops import slo
from otelkit.ops.files import check_target
from otelkit.ops.yamltext import shell_join

EPILOG = """\
\b
Examples:
  otelkit render-alerts                                   # the default SLOs, to stdout
  otelkit render-alerts --spec stack/slo.yaml -o stack/prometheus/alerts.yaml \\
      --alertmanager stack/alertmanager/alertmanager.yaml
  promtool check rules stack/prometheus/alerts.yaml
  amtool check-config stack/alertmanager/alertmanager.yaml
"""


def render_alerts(
    spec: Annotated[
        Path | None,
        typer.Option("--spec", metavar="FILE", help="SLO spec (YAML); without it the default SLOs are rendered."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write here (atomically; through a symlink to its target) instead of stdout; - is stdout.",
        ),
    ] = None,
    alertmanager: Annotated[
        Path | None,
        typer.Option(
            "--alertmanager",
            metavar="FILE",
            help="Also write the Alertmanager configuration (routes, inhibit rules, receivers) here.",
        ),
    ] = None,
) -> None:
    """Write Prometheus alerting rules for your SLOs: availability burn rate, HTTP errors and latency,
    security signals, Celery queue wait, run time, success, backlog and workers, process memory,
    collector, scrape and Alertmanager health; with --alertmanager, the Alertmanager config too."""
    parsed = slo.default_spec() if spec is None else slo.load_spec(spec)
    command = ["otelkit", "render-alerts"]
    if spec is not None:
        command += ["--spec", str(spec)]
    if output is not None:
        command += ["-o", str(output)]
    if alertmanager is not None:
        command += ["--alertmanager", str(alertmanager)]
    if alertmanager is not None and is_stdout(alertmanager) and is_stdout(output):
        raise UsageError("the rules and --alertmanager would both go to stdout; give -o or --alertmanager a file")
    shown = shell_join(command)
    rules = slo.render_alerts(parsed, command=shown)
    routing = slo.render_alertmanager(parsed, command=shown) if alertmanager is not None else None
    # Both files or neither: check every target before writing the first one.
    for target in (output, alertmanager):
        if target is not None and not is_stdout(target):
            check_target(target)
    emit(output, rules)
    if routing is not None:
        emit(alertmanager, routing)


def register(app: typer.Typer) -> None:
    app.command("render-alerts", epilog=EPILOG)(render_alerts)
