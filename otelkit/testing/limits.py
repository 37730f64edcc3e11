"""The limits that keep the OTLP/HTTP test receiver (and ``otelkit tail``) up against any client.

Used by :mod:`otelkit.testing.receiver` (the connection) and :mod:`otelkit.testing.decode` (inflating).

The receiver is a stdlib ``http.server`` with one thread per connection; what a hostile or careless
client can do to it, and what it gets instead:

- **slow clients** (slowloris: a byte every few seconds): a request must arrive whole within
  ``request_timeout`` seconds of its first byte, and a keep-alive connection idle for
  ``idle_timeout`` seconds is closed, so no connection holds its thread for ever
  (:class:`DeadlineReader`);
- **lying lengths**: ``Content-Length`` must be ASCII digits, given once, and at most
  ``max_body_bytes`` — otherwise 400 or 413 at once, without waiting for a body, and the
  connection is closed; a body shorter than its length is not accepted (:func:`read_body`);
- **compression bombs**: a gzip or deflate body may inflate to at most ``max_body_bytes``; past
  that the inflating stops and the answer is 413 (:func:`inflate`);
- **clients that vanish** before their reply, reset the connection or stop reading: the connection
  is dropped without a word (no BrokenPipe traceback on stderr).
"""

from __future__ import annotations

import errno
import io
import socket
import time
import zlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISCONNECTS",
    "BodyError",
    "DeadlineReader",
    "Limits",
    "content_length",
    "inflate",
    "is_disconnect",
    "read_body",
]


@dataclass(frozen=True)
class Limits:
    """What one connection may take from the receiver."""

    max_body_bytes: int = 64 << 20
    """Largest body, as sent and once inflated (413 past it)."""
    request_timeout: float = 30.0
    """Seconds from a request's first byte to its last (headers and body)."""
    idle_timeout: float = 120.0
    """Seconds a keep-alive connection may wait for its next request."""
    write_timeout: float = 30.0
    """Seconds a reply may take to be sent (a client that does not read)."""


class BodyError(Exception):
    """A request body refused before it is decoded: ``status`` (400, 411, 413) and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_DISCONNECT_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN, errno.ETIMEDOUT})


def is_disconnect(exc: BaseException | None) -> bool:
    """Whether ``exc`` only says the client went away, stopped reading or was too slow."""
    if isinstance(exc, DISCONNECTS):
        return True
    return isinstance(exc, OSError) and exc.errno in _DISCONNECT_ERRNOS


class DeadlineReader(io.RawIOBase):
    """The socket's read side, with a deadline: idle time before a request, then the request's own.

    Each read waits at most until the deadline, so trickling one byte at a time does not extend it.
    Call :meth:`expect_request` before reading each request.
    """

    def __init__(self, sock: socket.socket, limits: Limits) -> None:
        super().__init__()
        self._sock = sock
        self._limits = limits
        self._deadline = time.monotonic() + limits.idle_timeout
        self._in_request = False
        self.timed_out = False

    def readable(self) -> bool:
        return True

    def expect_request(self) -> None:
        """The next byte starts a request: until then the idle timeout applies."""
        self._in_request = False
        self._deadline = time.monotonic() + self._limits.idle_timeout

    @property
    def in_request(self) -> bool:
        """Whether part of a request has arrived (so a timeout deserves a 408)."""
        return self._in_request

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise TimeoutError("request not received in time" if self._in_request else "idle connection")
        self._sock.settimeout(remaining)
        try:
            n = self._sock.recv_into(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        if n and not self._in_request:
            self._in_request = True
            self._deadline = time.monotonic() + self._limits.request_timeout
        return n


def content_length(headers: Any, limit: int) -> int:
    """The request's ``Content-Length``, checked.

    Raises:
        BodyError: missing (411), malformed or given twice with different values (400), or larger
            than ``limit`` (413).
    """
    values = [v.strip() for v in (headers.get_all("Content-Length") or [])]
    if not values:
        raise BodyError(411, "Content-Length required")
    if len(set(values)) > 1:
        raise BodyError(400, "bad Content-Length: given twice with different values")
    raw = values[0]
    if not (raw.isascii() and raw.isdigit()):
        raise BodyError(400, f"bad Content-Length {raw[:40]!r}; expected a number of bytes")
    if len(raw) > 19 or int(raw) > limit:
        shown = raw if len(raw) <= 19 else raw[:19] + "…"
        raise BodyError(413, f"body of {shown} bytes is larger than the receiver's limit of {limit} bytes")
    return int(raw)


def read_body(rfile: Any, headers: Any, limit: int) -> bytes:
    """The whole body of a request whose headers are ``headers``.

    Raises:
        BodyError: see :func:`content_length`; or the body ended before ``Content-Length`` bytes (400).
    """
    length = content_length(headers, limit)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        raise BodyError(400, f"body ended after {len(body)} of {length} bytes")
    return bytes(body)


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decompressed (``gzip``, every member, or zlib ``deflate``), never past ``limit`` bytes.

    Raises:
        BodyError: it inflates to more than ``limit`` bytes (413), or is not valid compressed data (400).
    """
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    out = bytearray()
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise BodyError(
                    413, f"body inflates to more than {limit} bytes (the receiver's limit); send smaller batches"
                )
            if not inflater.eof:
                raise BodyError(400, f"cannot decompress body ({encoding}): truncated data")
            data = inflater.unused_data
            if encoding != "gzip" or not data.strip(b"\0"):
                break  # deflate is one stream; gzip may be several members (then zero padding)
    except zlib.error as exc:
        raise BodyError(400, f"cannot decompress body ({encoding}): {exc}") from None
    return bytes(out)
