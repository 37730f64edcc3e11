"""Where otelkit's built Go binaries live, and which binary a manifest or backend name means.

The cache layout and the build recipes are described in :mod:`otelkit.local.gobuild.build`; this
module only answers "where" and "is it there": the cache root, the repository's manifest, the
collector's cache key, the pinned backends (:data:`BACKENDS`), and the cached paths.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import otelkit
from otelkit.errors import UsageError

__all__ = [
    "BACKENDS",
    "OTELKIT_CACHE_DIR",
    "BackendRecipe",
    "Manifest",
    "backend_target",
    "cache_root",
    "cached_backend_path",
    "cached_collector_path",
    "collector_cache_key",
    "collector_target",
    "default_manifest",
    "find_backend",
    "is_executable",
    "load_manifest",
]

OTELKIT_CACHE_DIR = "OTELKIT_CACHE_DIR"
"""Root of otelkit's build cache (built binaries, ocb, the test venv). Default:
``$XDG_CACHE_HOME/otelkit``, else ``~/.cache/otelkit``."""


@dataclass(frozen=True)
class BackendRecipe:
    """A backend built from one Go module at a pinned version."""

    name: str
    module: str
    version: str
    package: str
    minutes: float
    """Rough first-build time on 2 cores, told to the user before starting."""
    check_args: tuple[str, ...]
    """Arguments of a quick run that must exit 0 before the binary is cached."""
    ldflags: str = ""
    """``go build -ldflags`` (version stamping, as upstream's Makefile does)."""


BACKENDS: dict[str, BackendRecipe] = {
    "jaeger": BackendRecipe(
        name="jaeger",
        module="github.com/jaegertracing/jaeger",
        # The v1.x tags carry the Jaeger v2 binary (cmd/jaeger).
        version="v1.76.0",
        package="./cmd/jaeger",
        minutes=6.5,
        check_args=("--help",),
    ),
    "loki": BackendRecipe(
        name="loki",
        module="github.com/grafana/loki/v3",
        version="v3.7.8",
        package="./cmd/loki",
        minutes=8,
        check_args=("-version",),
        ldflags="-X github.com/grafana/loki/v3/pkg/util/build.Version=3.7.8",
    ),
}


# --- cache locations -------------------------------------------------------------------------


def cache_root() -> Path:
    """otelkit's cache directory: ``$OTELKIT_CACHE_DIR``, ``$XDG_CACHE_HOME/otelkit`` or ``~/.cache/otelkit``."""
    explicit = os.environ.get(OTELKIT_CACHE_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg and os.path.isabs(os.path.expanduser(xdg)) else Path.home() / ".cache"
    return base / "otelkit"


def default_manifest() -> Path:
    """The repository's ``collector/builder-manifest.yaml`` (beside the ``otelkit`` package)."""
    return Path(otelkit.__file__).resolve().parent.parent / "collector" / "builder-manifest.yaml"


def collector_cache_key(manifest_bytes: bytes) -> str:
    """The collector cache key: the first 16 hex digits of the manifest's SHA-256."""
    return hashlib.sha256(manifest_bytes).hexdigest()[:16]


@dataclass(frozen=True)
class Manifest:
    path: Path
    raw: bytes
    data: dict[str, Any]
    name: str
    ocb_version: str

    @property
    def key(self) -> str:
        return collector_cache_key(self.raw)


_COMPONENT_SECTIONS = ("receivers", "processors", "exporters", "connectors", "extensions")
_VERSION = re.compile(r"^v0\.(\d+)\.(\d+)$")


def load_manifest(manifest: Path | None) -> Manifest:
    path = Path(manifest) if manifest is not None else default_manifest()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read collector manifest {str(path)!r}: {exc.strerror or exc}; pass --manifest with an ocb"
            " manifest such as collector/builder-manifest.yaml"
        ) from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UsageError(f"collector manifest {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dist"), dict):
        raise UsageError(
            f"collector manifest {str(path)!r} has no 'dist' section; expected an ocb manifest with 'dist' and"
            " 'receivers'/'processors'/'exporters'/… lists of 'gomod' lines"
        )
    versions: set[tuple[int, int]] = set()
    for section in _COMPONENT_SECTIONS:
        for entry in data.get(section) or []:
            gomod = entry.get("gomod", "") if isinstance(entry, dict) else ""
            parts = str(gomod).split()
            if len(parts) == 2 and (m := _VERSION.match(parts[1])):
                versions.add((int(m.group(1)), int(m.group(2))))
    if not versions:
        raise UsageError(
            f"collector manifest {str(path)!r} names no component at a v0.x version, so the ocb version is unknown;"
            " expected 'gomod: MODULE v0.N.M' lines under receivers/processors/exporters/connectors/extensions"
        )
    # Core and contrib components share one v0.x version; ocb must be that version.
    minor, patch = max(versions)
    name = str(data["dist"].get("name") or "otelcol-otelkit")
    return Manifest(path=path, raw=raw, data=data, name=name, ocb_version=f"v0.{minor}.{patch}")


def collector_target(m: Manifest) -> Path:
    return cache_root() / "otelcol" / m.key / m.name


def find_backend(name: str) -> BackendRecipe:
    try:
        return BACKENDS[name]
    except KeyError:
        accepted = sorted(BACKENDS)
        hint = difflib.get_close_matches(name, accepted, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise UsageError(f"unknown backend {name!r}; expected one of: {', '.join(accepted)}{suggestion}") from None


def backend_target(b: BackendRecipe) -> Path:
    return cache_root() / b.name / b.version / b.name


def cached_collector_path(manifest: Path | None = None) -> Path | None:
    """The cached collector built from ``manifest`` (default: the repo's), or None if not built yet.

    Raises:
        UsageError: the manifest cannot be read or is not an ocb manifest.
    """
    target = collector_target(load_manifest(manifest))
    return target if is_executable(target) else None


def cached_backend_path(name: str) -> Path | None:
    """The cached binary of backend ``name`` (``jaeger`` or ``loki``), or None if not built yet.

    Raises:
        UsageError: ``name`` is not a known backend.
    """
    target = backend_target(find_backend(name))
    return target if is_executable(target) else None


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
