"""Real receivers for notifications, in the test process on loopback: an HTTP server that
records every request (and answers with the statuses a test scripts), and an SMTP server
(aiosmtpd) that records every message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    """Wall-clock time of arrival."""


@dataclass
class HttpReceiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Answers to give, in order; 200 once they run out."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: dict[str, threading.Event] = field(default_factory=dict)
    """Paths that hang: a request to one is answered only once its event is set."""
    held: dict[str, int] = field(default_factory=dict)
    """Requests to each held path waiting for their answer right now."""
    most_held: dict[str, int] = field(default_factory=dict)
    """The most that ever waited at once, per path."""

    def answered(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    port = free_port()
    receiver = HttpReceiver(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if (release := receiver.hold.get(self.path)) is not None:
                with receiver.lock:
                    now = receiver.held[self.path] = receiver.held.get(self.path, 0) + 1
                    receiver.most_held[self.path] = max(now, receiver.most_held.get(self.path, 0))
                release.wait(timeout=60)
                with receiver.lock:
                    receiver.held[self.path] -= 1
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status < 300:
                    receiver.requests.append(Request(self.path, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class SmtpReceiver:
    port: int
    messages: list[Message] = field(default_factory=list)


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.receiver.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(port=free_port())
    controller = Controller(_Handler(receiver), hostname="127.0.0.1", port=receiver.port)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
