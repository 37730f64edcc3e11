"""otelkit's OTLP/HTTP transport for a plain-HTTP endpoint: one kept-alive connection, the body sent in slices.

The SDK's OTLP/HTTP exporters (1.45+) post through a transport given as a private keyword
(``_transport``): requests' by default, urllib3's on request. A post through urllib3's takes the
export thread ~0.17 ms of CPU (100 KB to a local receiver; requests' ~0.4 ms: it reads the proxy
variables and ``~/.netrc`` every time), all of it with the GIL held between two system calls, and
the body goes in one ``sendall`` whose kernel work, on loopback, runs on the app's core too. This
transport is ``http.client`` on one connection (~0.07 ms a post) and sends the body in chunks of
:data:`CHUNK` bytes, calling the exporter's ``pause`` (``Pacer``, :mod:`otelkit._runtime.otlp.fast`)
after each, so a post is paced like the encoding before it.

What the SDK's client asks of a transport (``BaseHTTPTransport``): ``request`` returns a result
with the status and reason, or with the error instead of raising it; ``is_connection_error`` tells
the errors worth one immediate retry (a kept-alive connection the receiver closed meanwhile: the
retry connects anew, since every error drops the connection); ``close``. The response headers
are looked up case-insensitively (``Retry-After``). Only for ``http://`` endpoints without proxy
variables or a credential-provider session (:func:`otelkit._runtime.exporters._lean_transport`
decides): HTTPS, proxies and custom sessions keep the SDK's requests transport.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CHUNK", "lean_transport_class"]

CHUNK = 32 * 1024
"""Bytes of a request body sent between two pauses (~15-30 µs of the kernel's time on loopback)."""

_CONNECTION_ERRORS = (ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException, OSError)


class _Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; repeated ones joined with ``", "``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._items[key] = f"{self._items[key]}, {value}" if key in self._items else value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _Pool:
    """The transport's one connection (replaced whole after a fork: the child's own, made on its first post)."""

    def __init__(self) -> None:
        self.connection: http.client.HTTPConnection | None = None
        self.target: tuple[str, int] | None = None


@cache
def lean_transport_class() -> type:
    """The transport class, built on the installed SDK's ``BaseHTTPTransport`` (1.45+; its probe checks)."""
    from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

    @dataclass(frozen=True, slots=True)
    class LeanHTTPResult(BaseHTTPResult):
        body: bytes = b""
        fields: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

        def content(self) -> bytes:
            return self.body

        def headers(self) -> Mapping[str, str]:
            return self.fields

    class LeanHTTPTransport(BaseHTTPTransport):
        """``http.client`` on one kept-alive connection; ``pause``, when set, is called between chunks of the body."""

        def __init__(self) -> None:
            self.pause: Callable[[], None] | None = None
            self._pool = _Pool()
            self._paths: dict[str, tuple[tuple[str, int], str]] = {}

        def _target(self, url: str) -> tuple[tuple[str, int], str]:
            known = self._paths.get(url)
            if known is None:
                parts = urlsplit(url)
                if parts.scheme != "http" or not parts.hostname:
                    raise ValueError(f"otelkit's OTLP transport takes http:// URLs, not {url!r}")
                path = parts.path or "/"
                known = ((parts.hostname, parts.port or 80), f"{path}?{parts.query}" if parts.query else path)
                if len(self._paths) < 8:  # one endpoint per exporter in practice
                    self._paths[url] = known
            return known

        def request(
            self,
            method: str,
            url: str,
            *,
            headers: dict[str, str] | None = None,
            timeout: float | None = None,
            data: bytes | None = None,
        ) -> Any:
            pool = self._pool
            try:
                target, path = self._target(url)
                connection = pool.connection
                if connection is None or pool.target != target:
                    self._drop()
                    connection = pool.connection = http.client.HTTPConnection(*target, timeout=timeout)
                    pool.target = target
                connection.timeout = timeout
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                body = data or b""
                connection.putrequest(method, path, skip_accept_encoding=True)
                for name, value in (headers or {}).items():
                    connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(body)))
                connection.endheaders()
                view = memoryview(body)
                pause = self.pause
                for start in range(0, len(body), CHUNK):
                    connection.send(view[start : start + CHUNK])
                    if pause is not None and start + CHUNK < len(body):
                        pause()
                response = connection.getresponse()
                content = response.read()
                if response.will_close:
                    self._drop()
            except Exception as error:
                self._drop()
                return LeanHTTPResult(error=error)
            return LeanHTTPResult(
                status_code=response.status,
                reason=response.reason,
                body=content,
                fields=_Headers(response.getheaders()),
            )

        def _drop(self) -> None:
            connection, self._pool.connection = self._pool.connection, None
            if connection is not None:
                connection.close()

        def forget(self) -> None:
            """After a fork: connect anew (closing the child's copy of the socket leaves the parent's connection be)."""
            self._drop()
            self._pool = _Pool()

        def is_connection_error(self, exception: Exception | None) -> bool:
            return isinstance(exception, _CONNECTION_ERRORS)

        def close(self) -> None:
            self._drop()

    return LeanHTTPTransport
