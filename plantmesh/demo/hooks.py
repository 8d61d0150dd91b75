"""The demo's webhook receiver: where every escalation contact of the demo is reached. Each
notification is checked the way a real receiver should check it (the HMAC-SHA256 signature over
"<timestamp>.<body>", see alerting/notify/http.py) and handed on as it arrives."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNATURE_HEADER = "X-Plantmesh-Signature"
TIMESTAMP_HEADER = "X-Plantmesh-Timestamp"


@dataclass(frozen=True)
class Received:
    at: float
    """time.monotonic() on arrival."""
    contact: str
    """The last part of the URL path: which contact it was sent to."""
    payload: dict[str, Any]
    signed: bool
    """The signature matched the demo's secret."""


def signature_ok(secret: bytes, timestamp: str | None, body: bytes, given: str | None) -> bool:
    if timestamp is None or given is None:
        return False
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={digest}", given)


class HookReceiver:
    """A loopback HTTP server on a free port; `on_arrival` runs in the server's thread."""

    def __init__(self, secret: str, on_arrival: Callable[[Received], None]) -> None:
        self._secret = secret.encode()
        self._on_arrival = on_arrival
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-hooks", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def __enter__(self) -> HookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _arrived(self, contact: str, body: bytes, timestamp: str | None, given: str | None) -> int:
        try:
            payload = json.loads(body)
        except ValueError:
            return 400
        if not isinstance(payload, dict):
            return 400
        signed = signature_ok(self._secret, timestamp, body, given)
        received = Received(time.monotonic(), contact, payload, signed)
        with self._lock:
            self._received.append(received)
        self._on_arrival(received)
        return 204

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver._arrived(
                    self.path.rstrip("/").rsplit("/", 1)[-1],
                    body,
                    self.headers.get(TIMESTAMP_HEADER),
                    self.headers.get(SIGNATURE_HEADER),
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints what arrives; no access log on the terminal

        return Handler
