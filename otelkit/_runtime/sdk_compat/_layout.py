"""SDK objects built from a template: what the SDK's constructor would make, without running it.

The SDK's ``_Span.__init__`` (through ``ReadableSpan.__init__``) binds ~15 keyword arguments and
builds a ``BoundedAttributes``, two ``BoundedList``\\ s and three locks, every span; otelkit's
server span is one per request. :func:`layout` learns, from two objects the SDK's own constructor
built for the same owner, which fields every object shares (the same object in both: the
resource, the span processor, the limits, a default status, plain values) and which each gets
anew (a lock, an empty container, a nested SDK object laid out the same way); :meth:`Layout.new`
then builds an object with the same fields, in the same order, with one attribute store each.

Anything else that differs between the two — a field derived from an argument, a mutable object
of a kind not listed here, a class with ``__slots__`` — makes :func:`layout` return None, and the
caller keeps the constructor. The probe of the caller's fast path compares what both build.
"""

from __future__ import annotations

import collections
import functools
import keyword
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Layout", "copier", "layout", "sharing", "state"]

_LOCKS: dict[type, Callable[[], Any]] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
}
_EMPTY = (dict, list, collections.OrderedDict)  # type(value)() is a new empty one
_PLAIN = (type(None), bool, int, float, str, bytes)


class Layout:
    """How to build one object of ``cls``: the fields of ``base`` in order, each of ``makers`` made anew.

    :meth:`new` is generated once per layout (as ``dataclasses`` generates ``__init__``): one
    attribute store per field, in the constructor's order, so the object keeps its class's
    shared-key dict (PEP 412) as the constructor's objects do, a third of the memory of a dict
    of its own. Fields named in ``per_object`` are its arguments, in that order.
    """

    __slots__ = ("base", "cls", "makers", "new", "per_object")

    def __init__(
        self,
        cls: type,
        base: dict[str, Any],
        makers: tuple[tuple[str, Callable[[], Any]], ...],
        per_object: tuple[str, ...] = (),
    ) -> None:
        self.cls = cls
        self.base = base
        self.makers = makers
        self.per_object = per_object
        self.new: Callable[..., Any] = _builder(cls, base, dict(makers), per_object)


def _builder(
    cls: type, base: dict[str, Any], makers: dict[str, Callable[[], Any]], per_object: tuple[str, ...]
) -> Callable[..., Any]:
    # Locals and globals of the generated function start with "__": layout() refuses such field names.
    names: dict[str, Any] = {"__cls": cls, "__new": cls.__new__}
    lines = [f"def __build({', '.join(per_object)}):", "    __o = __new(__cls)"]
    for i, key in enumerate(base):
        if key in per_object:
            lines.append(f"    __o.{key} = {key}")
        elif key in makers:
            names[f"__m{i}"] = makers[key]
            lines.append(f"    __o.{key} = __m{i}()")
        else:
            names[f"__v{i}"] = base[key]
            lines.append(f"    __o.{key} = __v{i}")
    lines.append("    return __o")
    exec("\n".join(lines), names)  # field names checked as identifiers by layout()
    return names["__build"]  # type: ignore[no-any-return]


def layout(first: Any, second: Any, per_object: Iterable[str] = (), *, nested: bool = True) -> Layout | None:
    """The layout of two objects the SDK built for the same owner; None when it cannot be learnt.

    Args:
        first, second: Built by the same constructor with the same owner (tracer, limits), and
            with different values for the fields named in ``per_object``.
        per_object: Fields the caller sets on every object it builds (a span's name, context, kind).
        nested: Whether a field may itself be an SDK object to lay out (one level deep).
    """
    cls = type(first)
    if type(second) is not cls or any(vars(k).get("__slots__") for k in cls.__mro__):
        return None  # state kept in slots (the ABCs' empty __slots__ hold none)
    try:
        mine, theirs = vars(first), vars(second)
    except TypeError:
        return None
    if list(mine) != list(theirs) or not all(_attribute_name(key) for key in mine):
        return None
    per_object = tuple(per_object)
    if not all(key in mine for key in per_object):
        return None
    makers: list[tuple[str, Callable[[], Any]]] = []
    for key, value in mine.items():
        other = theirs[key]
        kind = type(value)
        if key in per_object or (value is other and kind not in _LOCKS):
            continue  # set by the caller, or shared by the SDK itself
        if type(other) is not kind:
            return None
        if kind in _PLAIN and value == other:
            continue
        if kind in _LOCKS:
            makers.append((key, _LOCKS[kind]))
        elif kind in _EMPTY and not value and not other:
            makers.append((key, kind))
        elif kind is collections.deque and not value and not other and value.maxlen == other.maxlen:
            makers.append((key, functools.partial(collections.deque, (), value.maxlen)))
        elif nested and kind.__module__.startswith("opentelemetry."):
            inner = layout(value, other, nested=False)
            if inner is None:
                return None
            makers.append((key, inner.new))
        else:
            return None
    return Layout(cls, dict(mine), tuple(makers), per_object)


def _attribute_name(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("__")


def copier(cls: type, names: tuple[str, ...]) -> Callable[[Any], Any] | None:
    """A function copying the fields ``names`` of an object into a new ``cls``, in order; None if it cannot.

    Generated as :class:`Layout`'s builder is, for the same reason (the class's shared-key dict).
    """
    if not all(_attribute_name(name) for name in names) or any(vars(k).get("__slots__") for k in cls.__mro__):
        return None
    lines = ["def __copy(__s):", "    __o = __new(__cls)"]
    lines += [f"    __o.{name} = __s.{name}" for name in names]
    lines.append("    return __o")
    scope: dict[str, Any] = {"__cls": cls, "__new": cls.__new__}
    exec("\n".join(lines), scope)  # field names checked as identifiers
    return scope["__copy"]  # type: ignore[no-any-return]


def state(value: Any, skip: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """An SDK object's fields as data to compare (probes, tests), nested SDK objects one level deep.

    Locks become ``("lock", their type)``, containers their contents; fields named in ``skip`` are left out.
    """
    skipped = frozenset(skip)
    fields: list[tuple[str, Any]] = []
    for key, item in vars(value).items():
        if key in skipped:
            continue
        if type(item).__module__.startswith("opentelemetry.") and hasattr(item, "__dict__"):
            fields.append((key, (type(item).__name__, [(k, _leaf(v)) for k, v in vars(item).items()])))
        else:
            fields.append((key, _leaf(item)))
    return fields


def _leaf(value: Any) -> Any:
    kind = type(value)
    if kind in _LOCKS:
        return ("lock", kind.__name__)
    if kind is collections.deque:
        return ("deque", list(value), value.maxlen)
    if kind in _EMPTY:
        return (kind.__name__, list(value.items()) if isinstance(value, dict) else list(value))
    return value


def sharing(first: Any, second: Any) -> list[tuple[str, Any]]:
    """Which fields two objects share, field by field, nested SDK objects one level deep (probes, tests)."""
    shared: list[tuple[str, Any]] = []
    for (key, mine), theirs in zip(vars(first).items(), vars(second).values(), strict=False):
        if _same(mine, theirs):
            shared.append((key, True))
        elif (
            type(mine).__module__.startswith("opentelemetry.")
            and hasattr(mine, "__dict__")
            and hasattr(theirs, "__dict__")
        ):
            inner = zip(vars(mine).items(), vars(theirs).values(), strict=False)
            shared.append((key, [(k, _same(a, b)) for (k, a), b in inner]))
        else:
            shared.append((key, False))
    return shared


def _same(mine: Any, theirs: Any) -> bool:
    return mine is theirs or (type(mine) in _PLAIN and type(theirs) is type(mine) and mine == theirs)
