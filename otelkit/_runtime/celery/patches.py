"""Repairs otelkit makes to libraries a Celery worker runs (see :mod:`otelkit.celery`, "Two repairs").

- The broker's own Redis traffic is left out of tracing: commands of kombu's Redis channels run
  with instrumentation suppressed (:func:`quiet_broker_redis`).
- opentelemetry-instrumentation-celery's per-task span store is keyed by thread too, so a retried
  task's runs in a threads pool never share an entry (:func:`key_contrib_spans_by_thread`).
- Not a repair, a saving: contrib's request-field copier sets its attributes in one batch
  (:func:`batch_contrib_attributes`).

Each has its undo, for :func:`otelkit.celery.uninstall`.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import types
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


def _quiet_client(client: Any) -> Any:
    """Make ``client``'s commands (and its pipelines') invisible to the Redis instrumentation.

    kombu creates a client for every ack and every delivered message, so this runs twice per task.
    Where the instrumentation wrapped redis-py's own methods (``wrapt``, at class level) and the
    client's class did not override them, the client gets the unwrapped functions: what the
    wrapper itself runs when instrumentation is suppressed, without a context switch per command.
    Otherwise (instrumented later, a subclass, another instrumentation) each call runs inside
    ``suppress_instrumentation()``.
    """
    raw = _unwrapped_cached(type(client), "execute_command", "Redis")
    client.execute_command = types.MethodType(raw, client) if raw is not None else _suppressed(client.execute_command)
    client.pipeline = functools.partial(_quiet_pipeline, client.pipeline)
    return client


def _quiet_pipeline(make_pipeline: Any, *args: Any, **kwargs: Any) -> Any:
    pipe = make_pipeline(*args, **kwargs)
    for name in ("execute", "immediate_execute_command"):
        if hasattr(pipe, name):
            raw = _unwrapped_cached(type(pipe), name, "client.Pipeline")
            setattr(pipe, name, types.MethodType(raw, pipe) if raw is not None else _suppressed(getattr(pipe, name)))
    return pipe


def _suppressed(method: Any) -> Any:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    def call(*args: Any, **kwargs: Any) -> Any:
        with suppress_instrumentation():
            return method(*args, **kwargs)

    return call


def _redis_class(path: str) -> Any:
    """``redis.<path>`` (``Redis``, ``client.Pipeline``) if redis is imported, else None."""
    obj: Any = sys.modules.get("redis")
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


_found: dict[tuple[type, str], tuple[type, Any, Any]] = {}
"""``(class, method name)`` -> (the class defining it, what it defines, :func:`_unwrapped`'s answer)."""


def _unwrapped_cached(cls: type, name: str, owner_path: str) -> Any:
    """:func:`_unwrapped` for ``redis.<owner_path>``, remembered per class while the definition stays the same.

    kombu creates two clients and two pipelines per task: looking up the MRO, the redis classes and
    wrapt each time cost ~25,000 instructions per task. The entry is checked against the defining
    class's ``__dict__`` on every use, so instrumenting or uninstrumenting Redis later is seen.
    """
    entry = _found.get((cls, name))
    if entry is not None:
        klass, attr, raw = entry
        if klass.__dict__.get(name) is attr:
            return raw
    raw = _unwrapped(cls, name, _redis_class(owner_path))
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            _found[(cls, name)] = (klass, attr, raw)
            break
    return raw


def _unwrapped(cls: type, name: str, owner: Any) -> Any:
    """The function a ``wrapt`` wrapper holds for ``cls.<name>``, if ``owner`` itself defines it so; else None.

    None when a subclass overrides the method (kombu's prefixed client does): its own code would
    still call the wrapped one.
    """
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            break
    else:
        return None
    if klass is not owner:
        return None
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
