"""Building and caching the Go binaries otelkit runs: its collector, Jaeger v2 and Loki 3.

:func:`ensure_collector` and :func:`ensure_backend` return a cached binary, building it first when
needed (:mod:`otelkit.local.gobuild.build`, which describes the cache layout and the recipes);
:mod:`otelkit.local.gobuild.cache` knows where each binary lives.
"""

from __future__ import annotations

from otelkit.local.gobuild.build import ensure_backend, ensure_collector
from otelkit.local.gobuild.cache import (
    BACKENDS,
    OTELKIT_CACHE_DIR,
    BackendRecipe,
    cache_root,
    cached_backend_path,
    cached_collector_path,
    collector_cache_key,
    default_manifest,
)

__all__ = [
    "BACKENDS",
    "OTELKIT_CACHE_DIR",
    "BackendRecipe",
    "cache_root",
    "cached_backend_path",
    "cached_collector_path",
    "collector_cache_key",
    "default_manifest",
    "ensure_backend",
    "ensure_collector",
]
