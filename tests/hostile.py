"""Small hostile loopback servers for tests/test_hostile.py.

Each server answers with the sample farm's real pages (``crawler.samplefarm.farm.Farm``,
in process, no I/O of its own) unless a route says otherwise, and logs every request
target exactly as it arrived on the socket: that log, not the crawler's own account, is
what tells whether a forbidden or off-scope URL was requested.
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crawler.bench.measure import Measured, run_measured  # noqa: F401 - for the tests
from crawler.samplefarm.farm import Farm
from crawler.samplefarm.options import FarmConfig

HTML = "text/html; charset=UTF-8"


@dataclass
class Reply:
    """What a route sends: status, headers and body, or ``raw`` bytes written as they are."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    raw: bytes | None = None


Route = Callable[["HostileServer", str], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.server.owner.serve(self)

    do_HEAD = do_POST = do_GET  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


class HostileServer:
    """A farm on ``host`` (any free port) with per-target routes and a request log."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        routes: dict[str, Route] | None = None,
        autoblogs: int = 1,
        articles: int = 6,
        engine: str = "0.3.4",
        hostile: dict[str, int] | None = None,
    ) -> None:
        self.routes: dict[str, Route] = routes if routes is not None else {}
        self.prefix_routes: dict[str, Route] = {}  # tried in order, after the exact routes
        self.log: list[str] = []
        self._lock = threading.Lock()
        self.httpd = _Server((host, 0), _Handler)
        self.httpd.owner = self
        self.host, self.port = host, self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/"
        cfg = FarmConfig(host=host, port=self.port, autoblogs=autoblogs, articles=articles)
        cfg.engines = [engine]
        cfg.hostile = hostile or {}  # the farm's own hostile shapes (crawler.samplefarm.hostile)
        self.farm = Farm(cfg)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- the farm's own pages --------------------------------------------------------

    def base(self, index: int = 0) -> str:
        """Base URL of the farm's ``index``-th autoblog."""
        return self.farm.base_url(self.farm.autoblogs[index], f"{self.host}:{self.port}")

    def farm_reply(self, target: str) -> Reply:
        resp = self.farm.handle("GET", target, f"{self.host}:{self.port}")
        return Reply(resp.status, list(resp.headers), resp.body)

    # -- serving ---------------------------------------------------------------------

    def serve(self, handler: _Handler) -> None:
        target = handler.path
        with self._lock:
            self.log.append(target)
        route = self.routes.get(target)
        if route is None:
            route = next((r for p, r in self.prefix_routes.items() if target.startswith(p)), None)
        reply = route(self, target) if route else self.farm_reply(target)
        try:
            if reply.raw is not None:
                handler.wfile.write(reply.raw)
                return
            handler.send_response(reply.status)
            names = {k.lower() for k, _ in reply.headers}
            for key, value in reply.headers:
                handler.send_header(key, value)
            if "content-length" not in names:
                handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def requests(self) -> list[str]:
        with self._lock:
            return list(self.log)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- routes ----------------------------------------------------------------------------


def redirect_to(location: str, status: int = 302) -> Route:
    return lambda server, target: Reply(status, [("Location", location), ("Content-Type", HTML)])


def html_page(body: str) -> Route:
    return lambda server, target: Reply(200, [("Content-Type", HTML)], body.encode())


def injected(marker: str, insert: str) -> Route:
    """The farm's own page with ``insert`` placed before the first ``marker`` (a hostile post)."""

    def route(server: HostileServer, target: str) -> Reply:
        reply = server.farm_reply(target)
        body = reply.body.decode("utf-8")
        assert marker in body, marker
        reply.body = body.replace(marker, insert + marker, 1).encode("utf-8")
        return reply

    return route


def gzip_bomb(decoded_size: int, content_type: str = HTML) -> Route:
    """A small gzip body that inflates to ``decoded_size`` bytes of spaces."""
    chunk = b" " * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(chunk) for _ in range(decoded_size // len(chunk))]
    body = b"".join(parts) + compressor.flush()
    headers = [("Content-Type", content_type), ("Content-Encoding", "gzip")]
    return lambda server, target: Reply(200, headers, body)


def raw_reply(data: bytes) -> Route:
    return lambda server, target: Reply(raw=data)


def loopback_alias_available(host: str = "127.0.0.2") -> bool:
    """127.0.0.2 answers on Linux loopback; elsewhere the off-scope-host case is skipped."""
    try:
        with socket.socket() as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False
