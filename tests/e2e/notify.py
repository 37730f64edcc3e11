"""Stand-ins for the places Alertmanager notifies, for e2e tests: an HTTP endpoint and an SMTP server.

:class:`HttpRecorder` answers every POST 200 and keeps what came (path, headers, JSON body): it stands
in for a webhook, a Slack incoming webhook and the PagerDuty Events API. It speaks HTTP/1.1 with
keep-alive, like the real services. :class:`SmtpRecorder` is the smallest SMTP server Alertmanager's
e-mail integration talks to (EHLO, AUTH PLAIN, MAIL, RCPT, DATA) and keeps each message with the
credentials it was sent with. Both listen on a free 127.0.0.1 port; use them as context managers.
"""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Posted:
    path: str
    headers: dict[str, str]
    body: Any


class HttpRecorder:
    """Records every POST; ``url`` is its base address."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with recorder._lock:
                    recorder.posts.append(Posted(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = b'{"status": "success"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HttpRecorder:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def at(self, path: str) -> list[Posted]:
        with self._lock:
            return [p for p in self.posts if p.path == path]

    def wait_for(self, predicate: Callable[[Posted], bool], *, timeout: float, what: str) -> Posted:
        """The first post ``predicate`` accepts; AssertionError naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [p for p in self.posts if predicate(p)]
            if found:
                return found[0]
            time.sleep(0.1)
        with self._lock:
            seen = [(p.path, p.body) for p in self.posts]
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; received: {seen!r}")


@dataclass(frozen=True)
class Mail:
    auth: str | None
    sender: str
    recipients: tuple[str, ...]
    data: str


class SmtpRecorder:
    """A minimal SMTP server (no TLS) that keeps every message; ``address`` is ``127.0.0.1:port``."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                self.reply("220 localhost ESMTP otelkit-test")
                auth: str | None = None
                sender, recipients, lines = "", [], []
                reading = False
                for raw in iter(self.rfile.readline, b""):
                    text = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if reading:
                        if text == ".":
                            reading = False
                            recorder.mails.append(Mail(auth, sender, tuple(recipients), "\n".join(lines)))
                            self.reply("250 2.0.0 queued")
                        else:
                            lines.append(text[1:] if text.startswith("..") else text)
                        continue
                    verb, _, rest = text.partition(" ")
                    verb = verb.upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-localhost")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        mechanism, _, initial = rest.partition(" ")
                        if mechanism.upper() != "PLAIN":
                            self.reply("504 5.5.4 only PLAIN")
                            continue
                        if not initial:
                            self.reply("334 ")
                            initial = self.rfile.readline().decode().strip()
                        auth = base64.b64decode(initial).decode("utf-8", "replace")
                        self.reply("235 2.7.0 authenticated")
                    elif verb == "MAIL":
                        sender, recipients, lines = rest.split(":", 1)[1].strip(), [], []
                        self.reply("250 2.1.0 ok")
                    elif verb == "RCPT":
                        recipients.append(rest.split(":", 1)[1].strip())
                        self.reply("250 2.1.5 ok")
                    elif verb == "DATA":
                        reading = True
                        self.reply("354 end with <CRLF>.<CRLF>")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 2.0.0 ok")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 bye")
                        return
                    else:
                        self.reply("502 5.5.2 not implemented")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SmtpRecorder:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
