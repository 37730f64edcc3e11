"""Run a function right after a module is first imported: lazy instrumentation.

Why: the launcher instruments every installed library at start-up, importing it even when the app
never uses it (Celery alone is ~0.2 s). otelkit instruments Celery and bridges structlog the moment
the app first imports them instead; when they are already imported, at once.

A meta-path finder that only answers for the watched top-level names: it asks the other finders
for the real spec and wraps the loader's ``exec_module`` so the hooks run after the module body.
Hook failures are logged, never raised into the importing code.

Hooks never run in the middle of another module's import that otelkit started. An
instrumentation module often imports its library itself (``opentelemetry.instrumentation.httpx``
imports ``httpx`` and ``httpx2``): the library's hook, run right then, would load the same
instrumentation module while it is still partially initialized and fail ("partially initialized
module … (most likely due to a circular import)"). So hooks fired while otelkit loads an
instrumentation or runs another hook (:func:`deferring`) are queued and run when that outermost
block ends, every module complete.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = ["deferring", "when_imported"]

_log = logging.getLogger("otelkit")
_lock = threading.RLock()
_hooks: dict[str, list[Callable[[ModuleType], object]]] = {}


def _call(fn: Callable[[ModuleType], object], module: ModuleType) -> None:
    try:
        fn(module)
    except Exception as exc:
        _log.error("otelkit: setting up %s after its import failed: %s", module.__name__, exc)


class _Deferral(threading.local):
    depth = 0
    pending: list[tuple[Callable[[ModuleType], object], ModuleType]]


_deferral = _Deferral()


@contextmanager
def deferring() -> Iterator[None]:
    """Hooks of modules whose import completes in this block run when the outermost block ends."""
    state = _deferral
    state.depth += 1
    if state.depth == 1:
        state.pending = []
    try:
        yield
    finally:
        try:
            if state.depth == 1:
                while state.pending:  # a hook may import more watched modules: they queue here too
                    fn, module = state.pending.pop(0)
                    _call(fn, module)
        finally:
            state.depth -= 1


def _run(hooks: list[Callable[[ModuleType], object]], module: ModuleType) -> None:
    if _deferral.depth:
        _deferral.pending.extend((fn, module) for fn in hooks)
        return
    with deferring():
        for fn in hooks:
            _call(fn, module)


def when_imported(name: str, fn: Callable[[ModuleType], object]) -> None:
    """Call ``fn(module)`` once ``name`` (a top-level module) is imported; now if it already is."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(fn)
            if not any(isinstance(f, _Finder) for f in sys.meta_path):
                sys.meta_path.insert(0, _Finder())
            return
    _run([fn], module)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._inner.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        with _lock:
            hooks = _hooks.pop(self._name, [])
        _run(hooks, module)

    def __getattr__(self, attr: str) -> Any:  # get_filename, get_resource_reader, …
        return getattr(self._inner, attr)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._resolving: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _hooks or fullname in self._resolving:
            return None
        self._resolving.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._resolving.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)
        return spec
