"""Request correlation: the request id travels in OTel baggage under ``request.id``.

Baggage is propagated by the standard W3C ``baggage`` header, so the id follows the request into
Celery tasks (the Celery instrumentation injects the context into task headers) and into outgoing
HTTP calls made with an instrumented client, with no otelkit code on those paths. Log records and
spans read it from the active context.
"""

from __future__ import annotations

from opentelemetry import baggage
from opentelemetry.context import Context

__all__ = ["REQUEST_ID_KEY", "get_request_id", "with_request_id"]

REQUEST_ID_KEY = "request.id"
"""Baggage key (and span/log attribute name) of the request-correlation id."""


def get_request_id(context: Context | None = None) -> str | None:
    """The request id of ``context`` (default: the active context), or None."""
    value = baggage.get_baggage(REQUEST_ID_KEY, context)
    return value if isinstance(value, str) else None


def with_request_id(request_id: str, context: Context | None = None) -> Context:
    """A copy of ``context`` (default: the active one) carrying ``request_id``; attach it to use it."""
    return baggage.set_baggage(REQUEST_ID_KEY, request_id, context)
