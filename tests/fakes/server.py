"""A tiny threaded HTTP server on loopback that the platform fakes build on.

Each fake subclasses `FakeServer` and implements `handle(request) -> Response`. Every request
is recorded, so tests assert on what actually crossed the wire. `script` queues canned
answers (a 500, a 429 with headers, a hang) for the next matching requests, which is how tests
make a platform fail the way it really does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow or hung server)
    after: Callable[[], None] | None = None  # runs before the answer goes out


class FakeServer:
    """Subclass and implement `handle`. Use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripted: list[tuple[Callable[[Request], bool], Response]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, each answer would wait
            # ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                response = outer._dispatch(request)
                if response.delay:
                    time.sleep(response.delay)
                if response.after:
                    response.after()
                payload = response.body
                content_type = "text/plain; charset=utf-8"
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload).encode()
                    content_type = "application/json; charset=utf-8"
                elif isinstance(payload, str):
                    payload = payload.encode()
                payload = payload or b""
                try:
                    self.send_response(response.status)
                    headers = {"content-type": content_type, **{k.lower(): v for k, v in response.headers.items()}}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a read timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *responses: Response, when: Callable[[Request], bool] = lambda r: True) -> None:
        """Answer the next matching requests with these responses, in order, then as usual."""
        with self._lock:
            self._scripted.extend((when, r) for r in responses)

    def _dispatch(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            for index, (matches, response) in enumerate(self._scripted):
                if matches(request):
                    del self._scripted[index]
                    return response
        return self.handle(request)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def wait_for(self, predicate: Callable[[list[Request]], bool], *, timeout: float = 10.0) -> list[Request]:
        """Wait until the recorded requests satisfy `predicate` (for work done on other threads)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.requests)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting; saw {[(r.method, r.path) for r in snapshot]}")
