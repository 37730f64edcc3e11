"""``otelkit build-collector`` and ``otelkit build-backend``: build (once) and cache the Go binaries.

Progress goes to stderr; stdout gets the binary's path, so ``$(otelkit build-collector --print-path)``
works in scripts. A cached binary is returned at once; see :mod:`otelkit.local.gobuild` for the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from otelkit.local import gobuild


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_collector(
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="ocb manifest to build (default: the repo's collector/builder-manifest.yaml).",
            dir_okay=False,
        ),
    ] = None,
    print_path: Annotated[bool, typer.Option("--print-path", help="Print only the binary's path on stdout.")] = False,
) -> None:
    """Build the otelkit collector with ocb (first time ~5 min) and cache it by the manifest's hash."""
    path = gobuild.ensure_collector(manifest, progress=_progress)
    print(path if print_path else f"collector: {path}")


def build_backend(
    # A plain str, not an Enum: the domain error lists the choices and suggests the closest one.
    name: Annotated[
        str,
        typer.Argument(metavar="BACKEND", help="jaeger (~6.5 min first build) or loki (~8 min)."),
    ],
    print_path: Annotated[bool, typer.Option("--print-path", help="Print only the binary's path on stdout.")] = False,
) -> None:
    """Build a backend (Jaeger v2 or Loki 3) from its Go module and cache it by version."""
    path = gobuild.ensure_backend(name, progress=_progress)
    print(path if print_path else f"{name}: {path}")


def register(app: typer.Typer) -> None:
    app.command("build-collector")(build_collector)
    app.command("build-backend")(build_backend)
