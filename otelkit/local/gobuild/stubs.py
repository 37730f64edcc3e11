"""Stand-in Go modules that ``otelkit build-collector`` writes where a manifest's ``replaces:`` points.

A manifest may replace a module with a relative path (relative to ``dist.output_path``) that
otelkit provides itself: :data:`STUB_MODULES` lists them. k8s_attributes v1.0.0 requires
``pkg/semconvtest``, a test-only module no version of which the Go module proxy serves; an empty
package satisfies the build. Any other relative replace must point at an existing directory.
"""

from __future__ import annotations

from pathlib import Path

from otelkit.errors import UsageError
from otelkit.local.gobuild.cache import Manifest

__all__ = ["STUB_MODULES", "write_stubs"]

STUB_MODULES: dict[str, dict[str, str]] = {
    "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/semconvtest": {
        "go.mod": "module github.com/open-telemetry/opentelemetry-collector-contrib/pkg/semconvtest\n\ngo 1.25.0\n",
        "doc.go": "// Package semconvtest stands in for a test-only module the collector never imports.\n"
        "package semconvtest\n",
    },
}
"""Module path -> files of the stub otelkit writes where a manifest's relative ``replaces:`` points."""


def write_stubs(m: Manifest, output_path: Path, root: Path) -> None:
    """Write the stubs ``m``'s relative ``replaces:`` need, resolved against ``output_path`` (inside ``root``).

    Raises:
        UsageError: a relative replace otelkit cannot provide, or one pointing outside ``root``.
    """
    for entry in m.data.get("replaces") or []:
        old, sep, new = str(entry).partition("=>")
        new = new.strip()
        if not sep or not new.startswith(("./", "../")):
            continue
        module = old.split()[0] if old.split() else ""
        target = (output_path / new).resolve()
        files = STUB_MODULES.get(module)
        if files is None:
            if not target.is_dir():
                raise UsageError(
                    f"collector manifest {str(m.path)!r} replaces {module or old.strip()!r} with {new!r}, which otelkit"
                    f" cannot provide; replace it with a module version (MODULE => MODULE vX.Y.Z) instead"
                )
            continue
        if not target.is_relative_to(root.resolve()):
            raise UsageError(
                f"collector manifest {str(m.path)!r} replaces {module!r} with {new!r}, outside the build directory;"
                " use a path next to dist.output_path such as ../stubs/semconvtest"
            )
        target.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (target / name).write_text(text, encoding="utf-8")
