"""Raw asyncio HTTP/1.1 server for the sample farm: exact control over bytes and faults."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import random
import signal
import sys
import time
from collections import Counter
from email.utils import formatdate
from urllib.parse import parse_qs

import orjson

from .control import EDIT_TEXT
from .farm import Farm
from .options import AutoblogSettings, FarmConfig, Throttle, config_from_args
from .response import Response

REASONS = {
    200: "OK",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
MAX_HEAD = 16384


class FarmServer:
    """Accepts connections, logs requests, applies faults, writes responses."""

    def __init__(self, cfg: FarmConfig) -> None:
        self.cfg = cfg
        self.farm = Farm(cfg)
        self.log: list[bytes] = []
        self.fault_rng = random.Random(f"faults/{cfg.seed}")
        self.throttled: Counter[str] = Counter()  # "too many requests" answered, per URL

    async def handle_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection's requests until it closes."""
        try:
            while True:
                keep = await self.one_request(reader, writer)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a dead socket
                pass

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await self.send_raw(writer, 400, b"Bad Request", [], True, None)
            return False
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                await self.send_raw(writer, 400, b"Bad Request", [], True, None)
            return False
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[1].startswith("/"):
            await self.send_raw(writer, 400, b"Bad Request", [], True, None)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(min(length, 1 << 20))
        host = headers.get("host") or f"{self.cfg.host}:{self.cfg.port}"
        keep = (
            self.cfg.keep_alive
            and version == "HTTP/1.1"
            and headers.get("connection", "").lower() != "close"
        )
        if target.startswith("/_farm/"):
            resp = self.control(method, target, host)
            await self.send(writer, method, resp, headers, keep, log=False, target=target)
            return keep
        if method not in ("GET", "HEAD", "POST"):
            resp = Response(405, b"Method Not Allowed", [("Allow", "GET, HEAD")])
        else:
            try:
                resp = self.farm.handle(method, target, host)
            except Exception as exc:  # noqa: BLE001 - a farm bug must not kill the server
                resp = Response(
                    500,
                    f"Error happened !\n\n{exc!r}".encode(),
                    [("Content-type", "text/html; charset=UTF-8")],
                )
        s = resp.autoblog.settings if resp.autoblog else self.cfg.defaults
        if s.latency_ms:
            await asyncio.sleep(s.latency_ms / 1000)
        if s.throttle and self.throttles(target, s.throttle):
            resp = throttled(s.throttle, resp)
        elif s.error and self.fault_rng.random() < s.error:
            code = 500 if self.fault_rng.random() < 0.5 else 503
            resp = Response(
                code,
                f"<h1>{code} {REASONS[code]}</h1>".encode(),
                [("Content-type", "text/html; charset=UTF-8")],
                resp.autoblog,
            )
        if resp.static and resp.status == 200:
            resp = conditional(resp, headers.get("if-none-match"))
        await self.send(writer, method, resp, headers, keep, log=True, target=target)
        return keep

    def throttles(self, target: str, throttle: Throttle) -> bool:
        """Whether this request of ``target`` is answered "too many requests": the URL is
        among the seeded share, and has not had its ``times`` such answers yet."""
        digest = hashlib.sha1(f"throttle/{self.cfg.seed}/{target}".encode()).digest()
        if int.from_bytes(digest[:8], "big") >= throttle.share * 2**64:
            return False
        if throttle.times and self.throttled[target] >= throttle.times:
            return False
        self.throttled[target] += 1
        return True

    async def send(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        resp: Response,
        req_headers: dict[str, str],
        keep: bool,
        log: bool,
        target: str,
    ) -> None:
        """Send ``resp`` (headers, ranges, faults), logging it unless asked not to."""
        s = resp.autoblog.settings if resp.autoblog else self.cfg.defaults
        if not log:  # the control interface is never faulted
            s = AutoblogSettings()
        body = resp.body
        extra = list(resp.headers)
        if s.gzip and "gzip" in req_headers.get("accept-encoding", "") and body:
            body = gzip.compress(body, mtime=0)
            extra.append(("Content-Encoding", "gzip"))
        drop = (
            bool(s.drop) and method != "HEAD" and len(body) > 1 and self.fault_rng.random() < s.drop
        )
        sent = await self.send_raw(
            writer,
            resp.status,
            body if method != "HEAD" else b"",
            extra,
            not keep,
            s,
            drop=drop,
            head_len=len(body),
            host=req_headers.get("host"),
        )
        if log:
            self.log.append(
                orjson.dumps(
                    {
                        "time": time.time(),
                        "method": method,
                        "path": target,
                        "status": resp.status,
                        "bytes": sent,
                        "user_agent": req_headers.get("user-agent"),
                        "accept_encoding": req_headers.get("accept-encoding"),
                        "dropped": drop,
                    }
                )
            )
            if not self.cfg.quiet:
                print(f"{method} {target} {resp.status} {sent}", file=sys.stderr)
        if drop:
            raise ConnectionResetError("fault: dropped mid-body")

    async def send_raw(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
        close: bool,
        s,
        drop: bool = False,
        head_len: int | None = None,
        host: str | None = None,
    ) -> int:
        """Write status line + headers (in the real farm's order) + body; return body bytes."""
        chunked = bool(s and s.chunked) and body
        h = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}"]
        if host:
            h.append(f"Host: {host}")
        h.append(f"Date: {formatdate(usegmt=True)}")
        h.append("Connection: close" if close else "Connection: keep-alive")
        h.append("X-Powered-By: PHP/8.2.36")
        h.extend(f"{k}: {v}" for k, v in headers)
        n = head_len if head_len is not None else len(body)
        if chunked:
            h.append("Transfer-Encoding: chunked")
        elif self.cfg.content_length or not close:
            h.append(f"Content-Length: {n}")
        # PHP sends header values as raw bytes: a UTF-8 title in Content-Disposition
        # goes out as UTF-8, which latin-1 cannot encode.
        writer.write(("\r\n".join(h) + "\r\n\r\n").encode("utf-8"))
        if drop:
            body = body[: len(body) // 2]
        if chunked and body:
            step = 4096
            for i in range(0, len(body), step):
                part = body[i : i + step]
                writer.write(b"%x\r\n" % len(part) + part + b"\r\n")
            if not drop:
                writer.write(b"0\r\n\r\n")
        else:
            writer.write(body)
        await writer.drain()
        if drop:
            writer.transport.abort()
        return len(body)

    def control(self, method: str, target: str, host: str) -> Response:
        """The control interface (never faulted, never logged): GET requests and truth;
        POST grow, edit, delete, add, remove, fault (the farm changes as a live one would)
        and reset-log."""
        path, _, query = target.partition("?")
        q = {k: v[0] for k, v in parse_qs(query).items()}
        js = [("Content-Type", "application/json")]
        if path == "/_farm/requests":
            return Response(
                200,
                b"".join(line + b"\n" for line in self.log),
                [("Content-Type", "application/x-ndjson")],
            )
        if path == "/_farm/truth":
            return Response(200, orjson.dumps(self.farm.truth(host)), js)
        if path == "/_farm/grow" and method == "POST":
            try:
                data = self.farm.grow(q.get("autoblog"), int(q.get("n", "1")), host)
            except (KeyError, ValueError) as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/edit" and method == "POST":
            try:
                article, text = int(q.get("article", "0")), q.get("text", EDIT_TEXT)
                data = self.farm.edit(q.get("autoblog"), article, host, text)
            except (KeyError, IndexError, ValueError) as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/delete" and method == "POST":
            try:
                data = self.farm.delete(q.get("autoblog"), int(q.get("n", "1")), host)
            except (KeyError, ValueError) as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/add" and method == "POST":
            try:
                data = self.farm.add(q.get("engine", "0.3.4"), int(q.get("n", "12")), host)
            except ValueError as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/remove" and method == "POST":
            try:
                data = self.farm.remove(q.get("autoblog"))
            except KeyError as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/fault" and method == "POST":
            try:
                data = self.farm.fault(q.get("autoblog"), q.get("fault", ""))
            except (KeyError, ValueError) as exc:
                return Response(404, orjson.dumps({"error": str(exc)}), js)
            return Response(200, orjson.dumps(data), js)
        if path == "/_farm/reset-log" and method == "POST":
            self.log.clear()
            return Response(200, b"{}", js)
        return Response(404, b'{"error":"unknown control endpoint"}', js)


async def serve(cfg: FarmConfig) -> None:
    """Serve the farm until cancelled."""
    fs = FarmServer(cfg)
    server = await asyncio.start_server(
        fs.handle_conn, cfg.host, cfg.port, limit=MAX_HEAD, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    cfg.port = port
    print(f"sample farm serving on http://{cfg.host}:{port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    async with server:
        await stop.wait()


def main_from_args(args: argparse.Namespace) -> int:
    """Run the farm in the foreground until SIGINT/SIGTERM (fixed interface)."""
    cfg = config_from_args(args)
    try:
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass
    return 0


def throttled(throttle: Throttle, resp: Response) -> Response:
    """The farm's "too many requests" answer (the web server's rate limit, before PHP)."""
    code = throttle.status
    headers = [("Content-type", "text/html; charset=UTF-8")]
    after = throttle.retry_after_header(time.time())
    if after is not None:
        headers.append(("Retry-After", after))
    return Response(code, f"<h1>{code} {REASONS[code]}</h1>".encode(), headers, resp.autoblog)


def conditional(resp: Response, if_none_match: str | None) -> Response:
    """ETag on a static file; 304 Not Modified when the client already holds it."""
    etag = '"' + hashlib.sha1(resp.body).hexdigest()[:20] + '"'
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(304, b"", [("ETag", etag)], resp.autoblog)
    return Response(resp.status, resp.body, [*resp.headers, ("ETag", etag)], resp.autoblog)
