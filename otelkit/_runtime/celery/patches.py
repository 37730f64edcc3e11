"""Repairs otelkit makes to libraries a Celery worker runs (see :mod:`otelkit.celery`, "Two repairs").

- The broker's own Redis traffic is left out of tracing: commands of kombu's Redis channels call
  redis-py's own functions, not the instrumentation's wrappers (:func:`quiet_broker_redis`).
- opentelemetry-instrumentation-celery's per-task span store is keyed by thread too, so a retried
  task's runs in a threads pool never share an entry (:func:`key_contrib_spans_by_thread`).
- Not a repair, a saving: contrib's request-field copier sets its attributes in one batch
  (:func:`batch_contrib_attributes`).

Each has its undo, for :func:`otelkit.celery.uninstall`.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

__all__ = [
    "apply",
    "batch_contrib_attributes",
    "key_contrib_spans_by_thread",
    "quiet_broker_redis",
    "restore",
    "restore_broker_redis",
    "restore_contrib_attributes",
    "restore_contrib_context_functions",
]

_log = logging.getLogger("otelkit")


def apply() -> None:
    """Make every change below (each logs its own failure and never raises)."""
    try:
        quiet_broker_redis()
    except Exception as exc:
        _log.error("otelkit: hiding the broker's Redis commands from tracing failed: %s", exc)
    try:
        key_contrib_spans_by_thread()
    except ImportError:
        pass  # spans are not instrumented at all; nothing to fix
    except Exception as exc:
        _log.error("otelkit: keying Celery run spans by thread failed: %s", exc)
    try:
        batch_contrib_attributes()
    except ImportError:
        pass
    except Exception as exc:
        _log.debug("otelkit: keeping contrib's Celery attribute copier as it is: %s", exc)


def restore() -> None:
    """Undo :func:`apply`."""
    restore_broker_redis()
    restore_contrib_context_functions()
    restore_contrib_attributes()


class _QuietClient:
    """Mixed into a broker client's class by :func:`_quiet_client`: commands and pipelines untraced.

    No ``__slots__`` here: CPython refuses the ``__class__`` change when a mixin with empty slots
    comes first.
    """

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return _call_quiet(self, _QuietClient, "execute_command", "Redis", args, options)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = super().pipeline(*args, **kwargs)  # type: ignore[misc]
        try:
            return _swap_class(pipe, _QuietPipeline)
        except TypeError:
            pass
        try:
            return _suppress_each_call(pipe, ("execute", "immediate_execute_command"))
        except AttributeError:
            return pipe


class _QuietPipeline:
    """Mixed into the class of a quiet client's pipeline (no ``__slots__``, as :class:`_QuietClient`)."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _call_quiet(self, _QuietPipeline, "execute", "client.Pipeline", args, kwargs)

    def immediate_execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return _call_quiet(self, _QuietPipeline, "immediate_execute_command", "client.Pipeline", args, kwargs)


def _quiet_client(client: Any) -> Any:
    """Make ``client``'s commands (and its pipelines') invisible to the Redis instrumentation.

    kombu creates a client for every ack and every delivered message, so this runs twice per task.
    The client's class becomes a subclass of it (made once per class) whose ``execute_command``
    and ``pipeline`` — and its pipelines' ``execute`` and ``immediate_execute_command`` — call
    redis-py's own functions: the one the instrumentation's ``wrapt`` wrapper holds, when it wrapped
    redis-py's method at class level and the client's class did not override it; the method as it
    is, when nothing wrapped it. Otherwise (a subclass's override, another instrumentation) the
    call runs inside ``suppress_instrumentation()``. Which one is decided at each call from a
    cache checked against the class, so a client made before the instrumentation stays quiet.

    A class, not attributes on the client: a bound method stored on its own instance is a
    reference cycle, and kombu's clients (each with ~170 response callbacks) then waited for the
    garbage collector instead of being freed when kombu drops them (~50 µs per task, measured).
    Returns ``client``; a class that refuses the change keeps per-call suppression.
    """
    try:
        return _swap_class(client, _QuietClient)
    except TypeError:  # __class__ assignment refused (a C type, a different layout)
        pass
    try:
        _suppress_each_call(client, ("execute_command",))
        make_pipeline = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            return _suppress_each_call(make_pipeline(*args, **kwargs), ("execute", "immediate_execute_command"))

        client.pipeline = pipeline
    except AttributeError:  # no instance attributes either: its commands stay traced
        _log.debug("otelkit: cannot keep the commands of broker client %r out of tracing", type(client))
    return client


_quiet_types: dict[tuple[type, type], type] = {}


def _swap_class(obj: Any, mixin: type) -> Any:
    cls = type(obj)
    if issubclass(cls, mixin):
        return obj
    quiet = _quiet_types.get((cls, mixin))
    if quiet is None:
        namespace = {"__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        quiet = type(cls.__name__, (mixin, cls), namespace)
        quiet._otelkit_base = cls  # type: ignore[attr-defined]
        _quiet_types[(cls, mixin)] = quiet
    obj.__class__ = quiet
    return obj


def _call_quiet(obj: Any, mixin: type, name: str, owner_path: str, args: Any, kwargs: Any) -> Any:
    function = _direct_cached(type(obj)._otelkit_base, name, owner_path)
    if function is not None:
        return function(obj, *args, **kwargs)
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return getattr(super(mixin, obj), name)(*args, **kwargs)


def _suppress_each_call(obj: Any, names: tuple[str, ...]) -> Any:
    """``obj``'s methods ``names`` wrapped, on the instance, to run inside ``suppress_instrumentation()``."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    def suppressed(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with suppress_instrumentation():
                return method(*args, **kwargs)

        return call

    for name in names:
        if hasattr(obj, name):
            setattr(obj, name, suppressed(getattr(obj, name)))
    return obj


def _redis_class(path: str) -> Any:
    """``redis.<path>`` (``Redis``, ``client.Pipeline``) if redis is imported, else None."""
    obj: Any = sys.modules.get("redis")
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


_found: dict[tuple[type, str], tuple[type, Any, Any]] = {}
"""``(class, method name)`` -> (the class defining it, what it defines, :func:`_direct`'s answer)."""


def _direct_cached(cls: type, name: str, owner_path: str) -> Any:
    """:func:`_direct` for ``redis.<owner_path>``, remembered per class while the definition stays the same.

    Looking up the MRO, the redis classes and wrapt for every command would cost more than the
    command's own Python; the entry is checked against the defining class's ``__dict__`` on every
    use, so instrumenting or uninstrumenting Redis later is seen.
    """
    entry = _found.get((cls, name))
    if entry is not None:
        klass, attr, direct = entry
        if klass.__dict__.get(name) is attr:
            return direct
    direct = _direct(cls, name, _redis_class(owner_path))
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            _found[(cls, name)] = (klass, attr, direct)
            break
    return direct


def _direct(cls: type, name: str, owner: Any) -> Any:
    """redis-py's own function for ``cls.<name>``, when calling it makes no span; else None.

    The function a ``wrapt`` wrapper holds, when ``owner`` (redis-py's class) itself defines the
    method so; the method itself, when ``owner`` defines it and nothing wrapped it (its code is in
    ``owner``'s module). None when a subclass overrides the method (kombu's prefixed client does:
    its own code would still call the wrapped one) or another wrapper stands there.
    """
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            break
    else:
        return None
    if klass is not owner:
        return None
    held = _held_by_wrapt(attr)
    if held is not None:
        return held
    code = getattr(attr, "__code__", None)
    module = sys.modules.get(owner.__module__)
    if code is not None and module is not None and code.co_filename == getattr(module, "__file__", None):
        return attr
    return None


def _held_by_wrapt(attr: Any) -> Any:
    try:
        from wrapt import FunctionWrapper
    except ImportError:
        return None
    return attr.__wrapped__ if isinstance(attr, FunctionWrapper) else None


def quiet_broker_redis() -> None:
    """No spans for the Redis commands kombu's transport sends to the broker (module docstring)."""
    try:
        from kombu.transport import redis as kombu_redis
    except Exception:
        return
    channel = getattr(kombu_redis, "Channel", None)
    original = getattr(channel, "_create_client", None)
    if original is None or getattr(original, "_otelkit_original", None) is not None:
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        return _quiet_client(original(self, asynchronous=asynchronous))

    _create_client._otelkit_original = original  # type: ignore[attr-defined]
    channel._create_client = _create_client  # type: ignore[union-attr]


def restore_broker_redis() -> None:
    try:
        from kombu.transport import redis as kombu_redis
    except Exception:
        return
    channel = getattr(kombu_redis, "Channel", None)
    original = getattr(getattr(channel, "_create_client", None), "_otelkit_original", None)
    if original is not None:
        channel._create_client = original  # type: ignore[union-attr]


_CONTRIB_CONTEXT_FUNCTIONS = ("attach_context", "detach_context", "retrieve_context")


def key_contrib_spans_by_thread() -> None:
    """Key opentelemetry-instrumentation-celery's per-task span store by thread too (module docstring)."""
    from opentelemetry.instrumentation.celery import utils

    if any(getattr(getattr(utils, n, None), "_otelkit_original", None) for n in _CONTRIB_CONTEXT_FUNCTIONS):
        return
    originals = {n: getattr(utils, n, None) for n in _CONTRIB_CONTEXT_FUNCTIONS}
    if not all(callable(f) for f in originals.values()):
        _log.debug("otelkit: opentelemetry-instrumentation-celery changed its context helpers; not keyed by thread")
        return

    def keyed(original: Any) -> Any:
        def call(task: Any, task_id: Any, *args: Any, **kwargs: Any) -> Any:
            return original(task, (task_id, threading.get_ident()), *args, **kwargs)

        call._otelkit_original = original  # type: ignore[attr-defined]
        return call

    for name, original in originals.items():
        setattr(utils, name, keyed(original))


def restore_contrib_context_functions() -> None:
    try:
        from opentelemetry.instrumentation.celery import utils
    except ImportError:
        return
    for name in _CONTRIB_CONTEXT_FUNCTIONS:
        original = getattr(getattr(utils, name, None), "_otelkit_original", None)
        if original is not None:
            setattr(utils, name, original)


def batch_contrib_attributes() -> None:
    """contrib's ``set_attributes_from_context`` sets its attributes in one batch (sdk_compat ``celery-attributes``).

    It copies eight request fields per task run onto the run span, each ``set_attribute`` taking
    the span's lock and cleaning the value; batched, the same attributes in the same order.
    """
    from opentelemetry.instrumentation.celery import utils

    from otelkit._runtime import sdk_compat

    original = getattr(utils, "set_attributes_from_context", None)
    if not callable(original) or getattr(original, "_otelkit_original", None) is not None:
        return
    batched = sdk_compat.batched_context_attributes(original)
    if batched is not original:
        setattr(utils, "set_attributes_from_context", batched)  # noqa: B010  # contrib's annotation is narrower


def restore_contrib_attributes() -> None:
    try:
        from opentelemetry.instrumentation.celery import utils
    except ImportError:
        return
    original = getattr(getattr(utils, "set_attributes_from_context", None), "_otelkit_original", None)
    if original is not None:
        setattr(utils, "set_attributes_from_context", original)  # noqa: B010
