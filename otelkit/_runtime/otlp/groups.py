"""Encoded OTLP items grouped by resource, then scope, as the SDK's encoders group them.

Each resource's and scope's own fields are encoded once and cached by object identity (they are
immutable; the cache holds a reference, so an id is never reused while cached).
"""

from __future__ import annotations

from typing import Any

from otelkit._runtime.otlp.protowire import encode_attributes, field_bytes, varint

__all__ = ["Groups"]

_CACHE_MAX = 256
# id(object) -> (object, head fields, tail fields); the reference keeps the id from being reused.
_resources: dict[int, tuple[Any, bytes, bytes]] = {}
_scopes: dict[int, tuple[Any, bytes, bytes]] = {}
_NO_SCOPE = (b"\x0a\x00", b"")  # the SDK sends an empty InstrumentationScope for a missing scope


def _cache(cache: dict[int, tuple[Any, bytes, bytes]], obj: Any, head: bytes, tail: bytes) -> tuple[bytes, bytes]:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[id(obj)] = (obj, head, tail)
    return head, tail


def _resource_fields(resource: Any) -> tuple[bytes, bytes]:
    """``Resource*.resource`` (field 1) and ``Resource*.schema_url`` (field 3) of ``resource``."""
    entry = _resources.get(id(resource))
    if entry is not None and entry[0] is resource:
        return entry[1], entry[2]
    attributes: list[bytes] = []
    encode_attributes(attributes, b"\x0a", resource.attributes)
    schema_url = resource.schema_url
    tail = field_bytes(b"\x1a", schema_url.encode("utf-8")) if schema_url else b""
    return _cache(_resources, resource, field_bytes(b"\x0a", b"".join(attributes)), tail)


def _scope_fields(scope: Any) -> tuple[bytes, bytes]:
    """``Scope*.scope`` (field 1) and ``Scope*.schema_url`` (field 3) of ``scope``."""
    if scope is None:
        return _NO_SCOPE
    entry = _scopes.get(id(scope))
    if entry is not None and entry[0] is scope:
        return entry[1], entry[2]
    parts: list[bytes] = []
    if scope.name:
        parts.append(field_bytes(b"\x0a", scope.name.encode("utf-8")))
    if scope.version:
        parts.append(field_bytes(b"\x12", scope.version.encode("utf-8")))
    encode_attributes(parts, b"\x1a", scope.attributes)
    schema_url = scope.schema_url
    tail = field_bytes(b"\x1a", schema_url.encode("utf-8")) if schema_url else b""
    return _cache(_scopes, scope, field_bytes(b"\x0a", b"".join(parts)), tail)


class Groups:
    """Encoded items grouped by resource, then scope, in first-seen order, as the SDK groups them.

    Equal resources (scopes) are one group even when they are different objects, exactly as the
    SDK's dict keyed by them does; per object the group is looked up by identity, so a resource's
    hash (a JSON dump of its attributes) is computed once per object and batch, not per item.
    """

    __slots__ = ("_by_equality", "_by_id", "_last")

    def __init__(self) -> None:
        self._by_equality: dict[Any, list[Any]] = {}
        self._by_id: dict[int, list[Any]] = {}
        self._last: tuple[Any, Any, list[bytes]] | None = None

    def items_for(self, resource: Any, scope: Any) -> list[bytes]:
        last = self._last
        if last is not None and last[0] is resource and last[1] is scope:
            return last[2]
        group = self._by_id.get(id(resource))
        if group is None:
            group = self._by_equality.get(resource)
            if group is None:
                head, tail = _resource_fields(resource)
                group = self._by_equality[resource] = [head, tail, {}, {}]
            self._by_id[id(resource)] = group
        scopes_by_id: dict[int, list[Any]] = group[3]
        scope_group = scopes_by_id.get(id(scope))
        if scope_group is None:
            scopes: dict[Any, list[Any]] = group[2]
            scope_group = scopes.get(scope)
            if scope_group is None:
                head, tail = _scope_fields(scope)
                scope_group = scopes[scope] = [head, tail, []]
            scopes_by_id[id(scope)] = scope_group
        items: list[bytes] = scope_group[2]
        self._last = (resource, scope, items)
        return items

    def request(self) -> bytes:
        """The serialized ``Export*ServiceRequest``: ``resource_*`` (1) > ``scope_*`` (2) > items (2)."""
        out: list[bytes] = []
        append = out.append
        for res_head, res_tail, scopes, _ in self._by_equality.values():
            res_chunks: list[bytes] = []
            res_len = len(res_head) + len(res_tail)
            for scope_head, scope_tail, items in scopes.values():
                scope_len = len(scope_head) + len(scope_tail) + sum(map(len, items))
                res_chunks.append(b"\x12" + varint(scope_len) + scope_head)
                res_chunks.extend(items)
                res_chunks.append(scope_tail)
                res_len += 1 + len(varint(scope_len)) + scope_len
            append(b"\x0a" + varint(res_len) + res_head)
            out.extend(res_chunks)
            append(res_tail)
        return b"".join(out)
