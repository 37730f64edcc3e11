"""The command table: each command module is imported lazily here and mounted on the app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    # One block per command module; each module exposes ``register(app)``.
    from otelkit.cli import tail

    tail.register(app)

    from otelkit.cli import build

    build.register(app)

    from otelkit.cli import render_collector

    render_collector.register(app)

    from otelkit.cli import render_builder

    render_builder.register(app)

    from otelkit.cli import render_k8s

    render_k8s.register(app)

    from otelkit.cli import render_alerts

    render_alerts.register(app)

    from otelkit.cli import stack

    stack.register(app)
    pass
