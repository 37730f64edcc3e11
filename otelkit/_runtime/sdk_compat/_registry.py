"""The registry of fast paths: :class:`FastPath`, :func:`register`, and the probes' shared helpers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

__all__ = ["FastPath", "differs", "fallback_reason", "missing", "paths", "quiet", "register", "sdk_version", "short"]

_log = logging.getLogger("otelkit")

T = TypeVar("T")

_UNSET: Any = object()


class FastPath(Generic[T]):
    """A fast path and its fallback; :meth:`get` returns the one the installed SDK allows.

    Args:
        name: Short name, used in the INFO line and :func:`paths`.
        probe: Called once with ``fast``; returns None when ``fast`` gives what the SDK gives, or
            one line saying what differs. An exception counts as a mismatch.
        fast: The fast implementation (a function, a class, a value).
        fallback: The same through the SDK's public API.
    """

    __slots__ = ("_chosen", "_lock", "_reason", "fallback", "fast", "name", "probe")

    def __init__(self, name: str, probe: Callable[[T], str | None], fast: T, fallback: T) -> None:
        self.name = name
        self.probe = probe
        self.fast = fast
        self.fallback = fallback
        self._chosen: T = _UNSET
        self._reason: str | None = None
        self._lock = threading.RLock()

    def get(self) -> T:
        """The fast implementation if its probe passed (probing now if it has not run), else the fallback."""
        chosen = self._chosen
        if chosen is not _UNSET:
            return chosen
        with self._lock:
            if self._chosen is _UNSET:
                try:
                    reason = self.probe(self.fast)
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                if reason is None:
                    self._chosen = self.fast
                else:
                    self._off(reason)
            return self._chosen

    @property
    def on(self) -> bool:
        """Whether the fast implementation is in use (runs the probe if it has not run)."""
        self.get()
        return self._reason is None

    @property
    def reason(self) -> str | None:
        """Why the path is off, or None."""
        return self._reason

    def switch_off(self, reason: str) -> T:
        """Use the fallback from now on (a mismatch found at run time); returns it."""
        with self._lock:
            if self._reason is None:
                self._off(reason)
            return self._chosen

    def reset(self) -> None:
        """Forget the decision: the next :meth:`get` probes again (tests)."""
        with self._lock:
            self._chosen = _UNSET
            self._reason = None

    def _off(self, reason: str) -> None:
        self._reason = " ".join(reason.split()) or "probe failed"
        self._chosen = self.fallback
        _log.info(
            "otelkit: OpenTelemetry SDK %s: fast path %r off (%s); using the SDK's public API instead",
            sdk_version(),
            self.name,
            self._reason,
        )


_paths: dict[str, FastPath[Any]] = {}


def register(name: str, *, probe: Callable[[Any], str | None], fast: T, fallback: T) -> FastPath[T]:
    """Register a fast path (see the module docstring); its probe runs at the first :meth:`FastPath.get`."""
    path = FastPath(name, probe, fast, fallback)
    _paths[name] = path
    return path


def paths() -> dict[str, FastPath[Any]]:
    """Every registered path by name (registration happens when the module using it is imported)."""
    return dict(_paths)


def fallback_reason(name: str) -> str | None:
    """Why the path ``name`` is off (None when it is on or was never used)."""
    path = _paths.get(name)
    return None if path is None else path.reason


def sdk_version() -> str:
    """The installed opentelemetry-sdk version, or ``unknown``."""
    try:
        from opentelemetry.sdk.version import __version__

        return str(__version__)
    except Exception:
        try:
            from importlib.metadata import version

            return version("opentelemetry-sdk")
        except Exception:
            return "unknown"


def missing(obj: Any, names: Iterable[str]) -> str | None:
    """``None`` when ``obj`` has every attribute in ``names``, else a line naming the first missing one."""
    for name in names:
        if not hasattr(obj, name):
            owner = obj.__name__ if isinstance(obj, type) else type(obj).__name__
            return f"{owner} has no attribute {name!r}"
    return None


def differs(what: str, fast: Any, sdk: Any) -> str | None:
    if fast == sdk:
        return None
    return f"{what} differs: fast {short(fast)} vs SDK {short(sdk)}"


def short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Drop what ``loggers`` log from this thread in the block: a probe's inputs make the SDK complain."""
    muted = _ThisThread()
    for name in loggers:
        logging.getLogger(name).addFilter(muted)
    try:
        yield
    finally:
        for name in loggers:
            logging.getLogger(name).removeFilter(muted)
