"""A real HTTP server on 127.0.0.1 (port 0) for crawler tests, with a request log.

Routes map a path (without query) to a response or to a callable that builds one from the
request, so a test can serve recorded bodies, errors, slow answers and conditional 304s::

    with LoopbackServer() as server:
        server.route("/feed.xml", Response(body=feed, headers={"Content-Type": "text/xml"}))
        url = server.url("/feed.xml")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    # Answer only once the test sets this event (at most HOLD_LIMIT seconds): a reply that
    # never comes in time, whatever the client's timeout and the machine's load.
    hold: threading.Event | None = None


HOLD_LIMIT = 60.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float


Handler = Callable[[Request], Response]


class LoopbackServer:
    """Threaded HTTP/1.1 server bound to 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def _serve(self, send_body: bool) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    at=time.monotonic(),
                )
                with outer._lock:
                    outer.requests.append(request)
                    route = outer.routes.get(parts.path)
                if route is None:
                    response = Response(b"not found", status=404)
                elif callable(route):
                    response = route(request)
                else:
                    response = route
                if response.delay:
                    time.sleep(response.delay)
                if response.hold is not None:
                    response.hold.wait(HOLD_LIMIT)
                try:
                    self.send_response(response.status)
                    headers = {"Content-Length": str(len(response.body)), **response.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if send_body and response.status not in (204, 304):
                        self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802
                self._serve(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, response: Response | Handler) -> None:
        with self._lock:
            self.routes[path] = response

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
