"""A small model of a collector config: components, pipelines, and the structural check.

The renderer builds one :class:`CollectorModel` as data, :func:`check` proves it holds together,
and only then is it turned into text. ``otelcol validate`` misses some cross-pipeline mistakes
(an unused component, a port two components both bind), so the check here is stricter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from otelkit.errors import RenderError

__all__ = ["SIGNALS", "CollectorModel", "Component", "Kind", "Listener", "Pipeline", "check"]

#: Pipeline signal types otelkit renders, in the order pipelines are written.
SIGNALS: tuple[str, ...] = ("traces", "metrics", "logs")

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


class Kind(str, Enum):
    """Top-level section a component is defined in."""

    RECEIVER = "receivers"
    PROCESSOR = "processors"
    EXPORTER = "exporters"
    CONNECTOR = "connectors"
    EXTENSION = "extensions"


@dataclass(frozen=True)
class Listener:
    """A TCP address the collector binds, and the flag that moves it."""

    host: str
    port: int
    what: str
    flag: str

    def clashes_with(self, other: Listener) -> bool:
        if self.port != other.port:
            return False
        return self.host == other.host or self.host in _WILDCARD_HOSTS or other.host in _WILDCARD_HOSTS


@dataclass(frozen=True, eq=False)
class Component:
    """One receiver, processor, exporter, connector or extension.

    ``signals`` are the signal types it accepts; a connector also has ``outputs``, the signal types
    it emits into the pipelines that use it as a receiver. ``module`` is the ocb build module.
    """

    kind: Kind
    id: str
    config: Mapping[str, Any]
    module: str
    signals: frozenset[str] = frozenset(SIGNALS)
    outputs: frozenset[str] = frozenset()
    listens: tuple[Listener, ...] = ()
    uses: tuple[str, ...] = ()
    comment: str = ""

    @property
    def type(self) -> str:
        return self.id.split("/", 1)[0]


@dataclass(frozen=True)
class Pipeline:
    """One ``service.pipelines`` entry; its signal is the part of the name before ``/``."""

    name: str
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]

    @property
    def signal(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass(frozen=True, eq=False)
class CollectorModel:
    """A whole collector config as data."""

    receivers: tuple[Component, ...]
    processors: tuple[Component, ...]
    exporters: tuple[Component, ...]
    connectors: tuple[Component, ...]
    extensions: tuple[Component, ...]
    pipelines: tuple[Pipeline, ...]
    telemetry: Mapping[str, Any] = field(default_factory=dict)
    telemetry_listens: tuple[Listener, ...] = ()

    def sections(self) -> tuple[tuple[Kind, tuple[Component, ...]], ...]:
        return (
            (Kind.EXTENSION, self.extensions),
            (Kind.RECEIVER, self.receivers),
            (Kind.PROCESSOR, self.processors),
            (Kind.CONNECTOR, self.connectors),
            (Kind.EXPORTER, self.exporters),
        )

    def components(self) -> tuple[Component, ...]:
        return tuple(c for _, group in self.sections() for c in group)

    def listeners(self) -> tuple[Listener, ...]:
        return tuple(lst for c in self.components() for lst in c.listens) + self.telemetry_listens


def check(model: CollectorModel) -> None:
    """Check that ``model`` is a complete, consistent collector config.

    Every pipeline component is defined and every defined component is used; a connector is both
    exported to and received from; each component accepts its pipeline's signal; ``memory_limiter``
    comes first; no two listeners share a port.

    Raises:
        RenderError: naming the first inconsistency found.
    """
    defined: dict[Kind, dict[str, Component]] = {}
    for kind, group in model.sections():
        ids: dict[str, Component] = {}
        for c in group:
            if c.kind is not kind:
                raise RenderError(f"component {c.id!r} is a {c.kind.value[:-1]} but is listed under {kind.value}")
            if c.id in ids:
                raise RenderError(f"{kind.value[:-1]} {c.id!r} is defined twice; give each a distinct '/name' suffix")
            ids[c.id] = c
        defined[kind] = ids
    connectors = defined[Kind.CONNECTOR]

    used: set[tuple[Kind, str]] = set()
    connector_in: set[str] = set()
    connector_out: set[str] = set()
    names: set[str] = set()
    if not model.pipelines:
        raise RenderError("the config has no pipelines; choose at least one backend that is not 'none'")
    for p in model.pipelines:
        where = f"pipeline {p.name!r}"
        if p.name in names:
            raise RenderError(f"{where} is defined twice")
        names.add(p.name)
        if p.signal not in SIGNALS:
            raise RenderError(f"{where} has unknown signal {p.signal!r}; expected one of: {', '.join(SIGNALS)}")
        if not p.receivers or not p.exporters:
            raise RenderError(f"{where} needs at least one receiver and one exporter")
        for rid in p.receivers:
            if rid in connectors:
                c = connectors[rid]
                if p.signal not in c.outputs:
                    raise RenderError(f"connector {rid!r} emits {_join(c.outputs)}, not {p.signal} ({where})")
                connector_out.add(rid)
                used.add((Kind.CONNECTOR, rid))
            else:
                _use(defined, used, Kind.RECEIVER, rid, p)
        for pid in p.processors:
            _use(defined, used, Kind.PROCESSOR, pid, p)
        if "memory_limiter" in p.processors and p.processors[0] != "memory_limiter":
            raise RenderError(f"{where}: memory_limiter must be the first processor, got {list(p.processors)}")
        for eid in p.exporters:
            if eid in connectors:
                c = connectors[eid]
                if p.signal not in c.signals:
                    raise RenderError(f"connector {eid!r} accepts {_join(c.signals)}, not {p.signal} ({where})")
                connector_in.add(eid)
                used.add((Kind.CONNECTOR, eid))
            else:
                _use(defined, used, Kind.EXPORTER, eid, p)
    for cid in connectors:
        if cid not in connector_in or cid not in connector_out:
            raise RenderError(f"connector {cid!r} must be an exporter of one pipeline and a receiver of another")

    extensions = defined[Kind.EXTENSION]
    for c in model.components():
        for ext in c.uses:
            if ext not in extensions:
                raise RenderError(f"{c.kind.value[:-1]} {c.id!r} uses extension {ext!r}, which is not defined")
    used.update((Kind.EXTENSION, e) for e in extensions)
    for kind, ids in defined.items():
        for cid in ids:
            if (kind, cid) not in used:
                raise RenderError(f"{kind.value[:-1]} {cid!r} is defined but no pipeline uses it")

    seen: list[Listener] = []
    for lst in model.listeners():
        if not 0 < lst.port < 65536:
            raise RenderError(f"port {lst.port} of the {lst.what} is out of range 1-65535; change it with {lst.flag}")
        for other in seen:
            if lst.clashes_with(other):
                raise RenderError(
                    f"port {lst.port} is used by both the {other.what} ({other.flag}) and the {lst.what} "
                    f"({lst.flag}); give each its own port"
                )
        seen.append(lst)


def _use(
    defined: dict[Kind, dict[str, Component]], used: set[tuple[Kind, str]], kind: Kind, cid: str, p: Pipeline
) -> None:
    component = defined[kind].get(cid)
    if component is None:
        raise RenderError(f"pipeline {p.name!r} uses {kind.value[:-1]} {cid!r}, which is not defined")
    if p.signal not in component.signals:
        raise RenderError(
            f"{kind.value[:-1]} {cid!r} accepts {_join(component.signals)}, not {p.signal} (pipeline {p.name!r})"
        )
    used.add((kind, cid))


def _join(signals: frozenset[str]) -> str:
    return ", ".join(s for s in SIGNALS if s in signals) or "nothing"
