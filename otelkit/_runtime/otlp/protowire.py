"""Protobuf wire helpers and the OTLP ``AnyValue``/``KeyValue`` encoding, written straight to bytes.

Only what OTLP needs: varints, length-delimited fields, and attribute values encoded exactly as
opentelemetry-exporter-otlp-proto-common's ``_encode_value`` builds them (same type order: None,
bool, str, int, float, bytes, sequence, mapping; same errors). Fields are written in field-number
order, so for the same input the bytes match what protobuf itself serializes.

Attribute keys and the common short string values are cached as encoded bytes: a server span's
keys repeat on every span and most values (method, scheme, route, status) repeat too. The caches
are bounded and simply cleared when full; their content only depends on the key or value, so
sharing them between threads (exporter threads) is safe under the GIL and without it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "SMALL_VARINTS",
    "AttributeFilter",
    "encode_any_value",
    "encode_attributes",
    "field_bytes",
    "varint",
]

# The SDK encoder's logger: otelkit's log handler drops ``opentelemetry.*`` records (an encoding error
# in the logs pipeline must not feed itself) and the console rate-limits them.
_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")

AttributeFilter = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""Called with an attribute mapping before it is encoded; returns it unchanged or a new mapping."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64

SMALL_VARINTS = tuple(bytes((i,)) for i in range(128))
"""Varints of 0…127: one byte each, by far the most common lengths."""

_pack_double = struct.Struct("<d").pack


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative integer below 2**64."""
    if n < 0x80:
        return SMALL_VARINTS[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n < 0x200000:  # ids, counts and sizes below 2 Mi: no loop
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_bytes(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the payload's length, the payload."""
    n = len(payload)
    return tag + (SMALL_VARINTS[n] if n < 0x80 else varint(n)) + payload


# AnyValue field tags (opentelemetry/proto/common/v1/common.proto).
_STRING = b"\x0a"
_BOOL_TRUE = b"\x10\x01"
_BOOL_FALSE = b"\x10\x00"
_INT = b"\x18"
_DOUBLE = b"\x21"
_ARRAY = b"\x2a"
_KVLIST = b"\x32"
_BYTES = b"\x3a"
_ITEM = b"\x0a"  # ArrayValue.values / KeyValueList.values
_KEY = b"\x0a"  # KeyValue.key
_VALUE = b"\x12"  # KeyValue.value

# b"\x12" <len(AnyValue)> b"\x0a" <len(str)>: the KeyValue.value prefix of a short string value.
_STR_VALUE_PREFIX = tuple(_VALUE + SMALL_VARINTS[n + 2] + _STRING + SMALL_VARINTS[n] for n in range(126))

_KEYS_MAX = 1024
_VALUES_PER_KEY = 32
_CACHED_VALUE_MAX_LEN = 64
_keys: dict[str, bytes] = {}
# tag -> key -> {value: the whole attribute field}, for str and int values only: those never compare
# equal to each other (bool and float do compare equal to int, so they are not cached here).
_pairs: dict[bytes, dict[str, dict[Any, bytes]]] = {}


def _int_value(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _INT + SMALL_VARINTS[value]
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"Value out of range: {value}")
    return _INT + varint(value + _UINT64 if value < 0 else value)


def _pair(pairs: dict[str, dict[Any, bytes]], tag: bytes, key: str, value: str | int) -> bytes:
    """The ``tag`` field holding ``KeyValue(key, value)`` for a str or int value; cached when short."""
    kf = _keys.get(key)
    if kf is None:
        kf = _key(key)
    if type(value) is str:
        encoded = value.encode("utf-8")
        n = len(encoded)
        vf = _STR_VALUE_PREFIX[n] + encoded if n < 126 else field_bytes(_VALUE, field_bytes(_STRING, encoded))
        cacheable = n <= _CACHED_VALUE_MAX_LEN
    else:
        vf = field_bytes(_VALUE, _int_value(value))  # type: ignore[arg-type]  # not a str: type() is exact, mypy narrows only isinstance
        cacheable = True
    n = len(kf) + len(vf)
    entry = tag + (SMALL_VARINTS[n] if n < 0x80 else varint(n)) + kf + vf
    if cacheable:
        values = pairs.get(key)
        if values is None:
            if len(pairs) >= _KEYS_MAX:
                pairs.clear()
            values = pairs[key] = {}
        elif len(values) >= _VALUES_PER_KEY:
            values.clear()  # a high-cardinality key (a path with ids): the cache just churns
        values[value] = entry
    return entry


def _key(key: str) -> bytes:
    if type(key) is not str:
        # protobuf refuses non-str keys; the SDK encoder logs and drops the attribute.
        raise TypeError(f"bad argument type for built-in operation: key {key!r} is not a str")
    encoded = key.encode("utf-8")
    field = field_bytes(_KEY, encoded) if encoded else b""  # proto3 omits an empty key
    if len(_keys) >= _KEYS_MAX:
        _keys.clear()
    _keys[key] = field
    return field


def encode_any_value(value: Any) -> bytes:
    """The body of an ``AnyValue`` message for ``value``.

    Raises:
        Exception: the same kinds protobuf raises through the SDK encoder (unsupported type,
            integer outside int64, string that is not valid UTF-8).
    """
    if value is None:
        return b""
    if isinstance(value, bool):
        return _BOOL_TRUE if value else _BOOL_FALSE
    if isinstance(value, str):
        return field_bytes(_STRING, value.encode("utf-8"))
    if isinstance(value, int):
        return _int_value(int(value))
    if isinstance(value, float):
        return _DOUBLE + _pack_double(value)
    if isinstance(value, bytes):
        return field_bytes(_BYTES, value)
    if isinstance(value, Sequence):
        return field_bytes(_ARRAY, b"".join([field_bytes(_ITEM, encode_any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return field_bytes(
            _KVLIST,
            b"".join(
                [field_bytes(_ITEM, _key(str(k)) + field_bytes(_VALUE, encode_any_value(v))) for k, v in value.items()]
            ),
        )
    raise Exception(f"Invalid type {type(value)} of value {value}")  # the SDK encoder's exception and message


def encode_attributes(
    out: list[bytes], tag: bytes, attributes: Mapping[str, Any] | None, attribute_filter: AttributeFilter | None = None
) -> None:
    """Append one ``tag``-field ``KeyValue`` per attribute to ``out``.

    An attribute that cannot be encoded is logged and left out, as the SDK encoder does.
    """
    if not attributes:
        return
    if attribute_filter is not None:
        attributes = attribute_filter(attributes)
        if not attributes:
            return
    # Callers pass plain mappings (otelkit._runtime.sdk_compat.attribute_reader): a BoundedAttributes'
    # own items() would cost a Python-level __getitem__ per key.
    items: Iterable[tuple[Any, Any]] = attributes.items()
    keys = _keys
    pairs = _pairs.get(tag)
    if pairs is None:
        pairs = _pairs.setdefault(tag, {})
    v1 = SMALL_VARINTS
    append = out.append
    for key, value in items:
        try:
            vt = type(value)
            if vt is str or vt is int:
                values = pairs.get(key)
                entry = values.get(value) if values is not None else None
                append(entry if entry is not None else _pair(pairs, tag, key, value))
                continue
            kf = keys.get(key)
            if kf is None:
                kf = _key(key)
            if vt is bool:
                vf = b"\x12\x02\x10\x01" if value else b"\x12\x02\x10\x00"
            elif vt is float:
                vf = b"\x12\x09\x21" + _pack_double(value)
            else:
                vf = field_bytes(_VALUE, encode_any_value(value))
            n = len(kf) + len(vf)
            append(tag + (v1[n] if n < 0x80 else varint(n)) + kf + vf)
        except Exception as error:
            _logger.warning("otelkit: attribute %r left out of the export: %s", key, error)
