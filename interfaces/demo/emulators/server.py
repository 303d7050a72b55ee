"""A small HTTP server for vendor emulators: routes, auth, rate limits and fault injection.

Each vendor emulator (:mod:`interfaces.demo.emulators.stripe`,
:mod:`interfaces.demo.emulators.mailchimp`) subclasses :class:`Emulator`, adds its routes and
says how it authenticates and how its errors look. The server runs in a thread on a free port
of 127.0.0.1 and speaks HTTP/1.1 with keep-alive, as the vendors do. Knobs a test turns:

- ``rate_limit = (calls, seconds)``: beyond ``calls`` in a fixed window, 429 with
  ``Retry-After`` (whole seconds to the window's end);
- ``fail_next = n``: the next ``n`` requests answer 500; ``fail_every = k``: every k-th does;
- ``refuse = True``: every credential is refused (401).

``calls``, ``throttled`` and ``log`` (method, path) record what clients did.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


Answer = tuple[int, Any, dict[str, str]]
Handler = Callable[[Req], Answer]


class Emulator:
    """Subclasses call :meth:`route` and implement :meth:`authorized` and :meth:`error`."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.rate_limit: tuple[int, float] | None = None
        self.fail_next = 0
        self.fail_every: int | None = None
        self.refuse = False
        self.calls = 0
        self.throttled = 0
        self.failed = 0
        self.log: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._window = (0.0, 0)
        self._server: ThreadingHTTPServer | None = None

    # -- what subclasses supply --------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """``pattern`` is a path with ``{name}`` parts (one segment each)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self.routes.append((method, re.compile(f"^{regex}$"), handler))

    def authorized(self, req: Req) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def error(self, status: int, message: str) -> Answer:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- serving -----------------------------------------------------------------------------

    def _limited(self) -> float | None:
        if self.rate_limit is None:
            return None
        calls, seconds = self.rate_limit
        now = time.time()
        start, count = self._window
        if now >= start + seconds:
            start, count = math.floor(now / seconds) * seconds, 0
        if count >= calls:
            self._window = (start, count)
            return start + seconds - now
        self._window = (start, count + 1)
        return None

    def handle(self, req: Req) -> Answer:
        with self.lock:
            self.calls += 1
            self.log.append((req.method, req.path))
            wait = self._limited()
            if wait is not None:
                self.throttled += 1
                status, body, headers = self.error(429, "Too many requests")
                return status, body, {**headers, "Retry-After": str(max(1, math.ceil(wait)))}
            if self.fail_next > 0 or (self.fail_every and self.calls % self.fail_every == 0):
                self.fail_next = max(0, self.fail_next - 1)
                self.failed += 1
                return self.error(500, "An unexpected error occurred")
            if self.refuse or not self.authorized(req):
                return self.error(401, "Invalid API key")
            for method, regex, handler in self.routes:
                match = regex.match(req.path)
                if match and method == req.method:
                    req.params = {k: unquote(v) for k, v in match.groupdict().items()}
                    return handler(req)
            return self.error(404, f"Unrecognized request URL ({req.method} {req.path})")

    def start(self) -> str:
        """Serve in a thread; returns the base URL."""
        emulator = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query: dict[str, str] = {}
                for key, value in parse_qsl(parts.query):  # a repeated key: comma-joined
                    query[key] = f"{query[key]},{value}" if key in query else value
                req = Req(self.command, parts.path, query,
                          {k.lower(): v for k, v in self.headers.items()}, body)
                status, payload, headers = emulator.handle(req)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", headers.pop("Content-Type",
                                                                 "application/json"))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        # stop() waits for serve_forever's next poll: a short interval makes it prompt
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def page_after(items: list[dict[str, Any]], query: dict[str, str], default: int = 10,
               most: int = 100) -> tuple[list[dict[str, Any]], bool]:
    """Stripe-style ``limit`` / ``starting_after`` paging over ``items`` (already ordered)."""
    limit = min(int(query.get("limit", default)), most)
    after = query.get("starting_after")
    start = 0
    if after:
        ids = [i["id"] for i in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    chunk = items[start:start + limit]
    return chunk, start + limit < len(items)
