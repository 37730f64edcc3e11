"""Giving an SDK OTLP exporter fresh connections in a forked child (:mod:`otelkit._runtime.forksafe`).

Where the exporter keeps them is the SDK's business and changed within the supported range:

- OTLP/HTTP, SDK 1.45+: ``exporter._client._transport``, otelkit's own (``forget()``; its ``_pool``
  holds its connection), urllib3's (``_pool``: a ``PoolManager``) or requests' (``_session``);
- OTLP/HTTP, SDK 1.40-1.44: a requests ``Session`` on ``exporter._session``;
- OTLP/gRPC: ``exporter._channel``, rebuilt by ``exporter._initialize_channel_and_stub()``.

The inherited pools are replaced, not closed (a thread of the parent may have held their locks at
the fork; otelkit's own transport holds no lock and closes its copy of the socket, which leaves the
parent's connection as it is); inherited gRPC channels are kept referenced (:data:`_abandoned`) so their finalizers
never run in the child. The probe builds an OTLP/HTTP exporter (with otelkit's transport
where the SDK takes one) and checks that its pool is replaced.
"""

from __future__ import annotations

from typing import Any

from otelkit._runtime.sdk_compat._export import LEAN_TRANSPORT
from otelkit._runtime.sdk_compat._registry import register

__all__ = ["FORK_RESET", "reset_exporter_connections"]

# Inherited gRPC channels, kept referenced so their finalizers never run in the child.
_abandoned: list[Any] = []


def _reset_urllib3(transport: Any) -> bool:
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "connection_pool_kw"):
        return False
    transport._pool = type(pool)(
        num_pools=getattr(pool.pools, "_maxsize", 10), headers=pool.headers, **pool.connection_pool_kw
    )
    return True


def _reset_session(session: Any) -> bool:
    adapters = getattr(session, "adapters", None)
    if adapters is None:
        return False
    for adapter in adapters.values():
        if hasattr(adapter, "init_poolmanager") and hasattr(adapter, "_pool_connections"):
            adapter.proxy_manager = {}
            adapter.init_poolmanager(adapter._pool_connections, adapter._pool_maxsize, block=adapter._pool_block)
    return True


def _reset_private(exporter: Any) -> bool:
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    if transport is not None:  # OTLP/HTTP, 1.45+
        if callable(getattr(transport, "forget", None)):  # otelkit's own (_transport.py)
            transport.forget()
            return True
        return _reset_urllib3(transport) or _reset_session(getattr(transport, "_session", None))
    session = getattr(exporter, "_session", None)
    if session is not None:  # OTLP/HTTP, 1.40-1.44
        return _reset_session(session)
    if callable(getattr(exporter, "_initialize_channel_and_stub", None)) and hasattr(exporter, "_channel"):
        # gRPC: the old channel is left to the parent (closing it here would act on shared state).
        _abandoned.append(exporter._channel)
        exporter._initialize_channel_and_stub()
        return True
    return False


def _reset_nothing(exporter: Any) -> bool:
    return False


def _pools(exporter: Any) -> list[Any]:
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    session = getattr(transport, "_session", None) or getattr(exporter, "_session", None)
    if transport is not None and getattr(transport, "_pool", None) is not None:
        return [transport._pool]
    return [getattr(a, "poolmanager", None) for a in getattr(session, "adapters", {}).values()]


def _probe_fork_reset(fast: Any) -> str | None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    variants: list[dict[str, Any]] = [{}]
    if LEAN_TRANSPORT.get() is not LEAN_TRANSPORT.fallback:
        variants.append(LEAN_TRANSPORT.get()())
    for options in variants:
        exporter: Any = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", **options)
        try:
            before = _pools(exporter)
            if not before or any(p is None for p in before):
                return f"no connection pool found on {type(exporter).__name__} ({sorted(vars(exporter))[:8]}…)"
            if not fast(exporter):
                return "the connections of an OTLP/HTTP exporter were not replaced"
            after = _pools(exporter)
            if len(after) != len(before) or any(a is b for a, b in zip(after, before, strict=True)):
                return "an OTLP/HTTP exporter kept its connection pool"
        finally:
            exporter.shutdown()
    return None


FORK_RESET = register("fork-reset", probe=_probe_fork_reset, fast=_reset_private, fallback=_reset_nothing)


def reset_exporter_connections(exporter: Any) -> bool:
    """Give an SDK OTLP exporter fresh connections (pools, channel); returns whether it had any to replace."""
    return bool(FORK_RESET.get()(exporter))
