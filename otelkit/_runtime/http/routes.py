"""Which route served a request, when the scope does not say: mounts, docs, otelkit's health router.

FastAPI's routes put themselves in the scope (``scope["route"]``); Starlette's plain routes
(``/docs``, ``/openapi.json``) and mounts (a socket.io or static-files app) do not, on FastAPI
0.108 as on the newest. Without a route, a request served by them would be named ``GET`` and share
the 404s' metric series. :class:`Unrouted` finds the route again by matching the app's routes,
only for requests that were served (not 404s), cached per path.

:class:`HealthPaths` remembers where otelkit's own health router (:mod:`otelkit.health`) answered,
wherever the app mounted it, so later probes of those paths make no telemetry at all. An app's own
``/health`` route, or a ``/health`` the app does not have, is traced like any other request.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__all__ = ["HealthPaths", "Unrouted", "find_route", "is_otelkit_health"]

_MISSING = object()


def is_otelkit_health(route: Any) -> bool:
    """Whether ``route`` (a ``scope["route"]``, or None) is an endpoint of otelkit's health router."""
    if route is None:
        return False
    return str(getattr(getattr(route, "endpoint", None), "__module__", "")).startswith("otelkit.health")


def find_route(routes: Any, scope: dict[str, Any], prefix: str = "") -> str | None:
    """The template of the route in ``routes`` that fully matches ``scope``, mounts included."""
    from starlette.routing import Match, Mount

    for route in routes:
        match, child = route.matches(scope)
        if match is not Match.FULL:
            continue
        if isinstance(route, Mount):
            mount = prefix + str(route.path)  # "/ws" (its path_format is "/ws/{path}")
            inner = getattr(getattr(route.app, "router", route.app), "routes", None)
            if inner:
                return find_route(inner, {**scope, **child}, mount) or mount
            return mount
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        return prefix + str(template) if template else None
    return None


class Unrouted:
    """Route templates of requests an app served without naming the route in the scope."""

    def __init__(self, limit: int = 256) -> None:
        self._cache: dict[tuple[int, str], str | None] = {}
        self._limit = limit

    def template(self, app: Any, scope: MutableMapping[str, Any], path: str, root_path: str) -> str | None:
        """The template for ``path`` (as received) in ``app``; None when nothing matches."""
        key = (id(app), path)
        cached = self._cache.get(key, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        routes = getattr(getattr(app, "router", None), "routes", None)
        probe = {"type": scope["type"], "path": path, "root_path": root_path, "method": scope.get("method", "GET")}
        try:
            found = find_route(routes, probe) if routes else None
        except Exception:  # a route whose matching fails outside a real request: leave it unnamed
            found = None
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[key] = found
        return found


class HealthPaths:
    """Paths at which otelkit's health router answered: left out up front from then on."""

    def __init__(self, limit: int = 64) -> None:
        self.paths: frozenset[str] = frozenset()
        self._limit = limit

    def learn(self, path: str) -> None:
        if len(self.paths) < self._limit:
            self.paths = self.paths | {path}
