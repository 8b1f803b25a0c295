"""Command-line options of the sample farm (shared by ``autoblog-archive sample-farm`` and
``python -m crawler.samplefarm``), and parsing of per-autoblog fault/behaviour settings."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from email.utils import formatdate

# The hostile shapes the farm serves (crawler.samplefarm.hostile), by the name --hostile takes.
HOSTILE_KINDS = {
    "escaped-script": "N bytes of escaped code that never closes on autoblog 0's first page "
    "(half '&lt;script'/'&lt;link' openings before </body>, half 'function f(' article text)",
    "links": "N image links in the first article of autoblog 0's first page",
    "farm-index": "N more autoblogs listed on the farm's index (none of them served)",
    "sitemap": "N more URLs in the farm's ?sitemap",
    "export": "N more entries in the farm's ?export",
    "robots": "a robots.txt of N bytes: its first rule disallows every vvb.ini, its last "
    "line every autoblog",
    "headers": "N more response headers on autoblog 0's ?opml",
}


ENGINES = ("0.3.4", "0.3.1", "0.3.0", "0.2", "0.1", "2025")
SITE_TYPES = ("generic", "shaarli", "microblog", "twitter", "youtube")
TRAILERS = ("none", "strftime", "footer")

FAULT_HELP = """\
Per-autoblog settings: --fault TARGET:KIND[=VALUE] (repeatable). TARGET is an autoblog index
(0 = first), a folder name, or '*' for every autoblog. KINDs:
  latency=MS      add MS milliseconds before answering
  error=F         answer a fraction F of requests with 500 or 503 (deterministic sequence)
  throttle=SHARE:AFTER[:TIMES[:STATUS]]
                  a seeded share SHARE of the URLs answers 429 Too Many Requests (STATUS 503:
                  Service Unavailable) with Retry-After AFTER ('N' seconds, '@N' an HTTP date
                  N seconds ahead, '-' no header) the first TIMES times each is asked (default
                  1; 0: every time, until switched off with throttle=0)
  drop=F          close the connection mid-body on a fraction F of responses
  gzip            gzip the body when the client sends Accept-Encoding: gzip
  chunked         use Transfer-Encoding: chunked
  latin1          serve this autoblog in ISO-8859-1 (header and meta)
  update          print the "Mise a jour" block (and its script) on every page
  trailer=KIND    'strftime': stop after the header with the PHP 8.1 "Error happened!"
                  (0.3.0-0.3.3 style); 'footer': append "Error happened!" after the footer
  disabled        hide from the farm index and exports (folder renamed .disabled), still served
  status=N        answer every request under the autoblog's folder with HTTP status N
                  (404: an autoblog the admin deleted, 500: a broken one)
  ctype=TYPE      serve the autoblog's pages with Content-Type TYPE (e.g. image/png: a
                  misconfigured server; the body stays the page)
  archived        archived empty shaarli: no articles, "Archive" mark
  type=T          site type (generic, shaarli, microblog, twitter, youtube): articles per page
  shapes          ordinary articles cycle through the real-world content shapes of the
                  site type (link posts, footnote tables, code, video, empty, ...)
Farm-wide switches (--latency, --error-rate, ...) apply to every request, /_farm/ excepted."""


@dataclass(frozen=True)
class Throttle:
    """``SHARE:AFTER[:TIMES[:STATUS]]``: which URLs answer "too many requests", how often."""

    share: float  # of the URLs, chosen by a hash of the farm's seed and the URL
    retry_after: str  # "N" seconds, "@N" an HTTP date N seconds ahead, "" no header
    times: int = 1  # answers before the URL is served (0: every time)
    status: int = 429  # or 503

    def retry_after_header(self, now: float) -> str | None:
        """The Retry-After value to send (``@N``: a date N seconds ahead), or None."""
        if not self.retry_after:
            return None
        if self.retry_after.startswith("@"):
            return formatdate(now + int(self.retry_after[1:]), usegmt=True)
        return self.retry_after


def parse_throttle(text: str) -> Throttle | None:
    """``throttle=SHARE:AFTER[:TIMES[:STATUS]]`` (``throttle=0``: off)."""
    parts = text.split(":")
    try:
        share = float(parts[0])
    except ValueError:
        raise ValueError("throttle takes SHARE:AFTER[:TIMES[:STATUS]], SHARE a number") from None
    if not 0 <= share <= 1:
        raise ValueError("throttle SHARE must lie between 0 and 1")
    if share == 0:
        return None
    if not 2 <= len(parts) <= 4:
        raise ValueError("throttle takes SHARE:AFTER[:TIMES[:STATUS]]")
    after = parts[1]
    if after == "-":
        after = ""
    elif not after.removeprefix("@").isdecimal() or not after.isascii():
        raise ValueError("throttle AFTER must be N (seconds), @N (a date N s ahead) or -")
    times = parts[2] if len(parts) > 2 else "1"
    status = parts[3] if len(parts) > 3 else "429"
    if not times.isdecimal() or status not in ("429", "503"):
        raise ValueError("throttle TIMES must be a count and STATUS 429 or 503")
    return Throttle(share, after, int(times), int(status))


@dataclass
class AutoblogSettings:
    """Behaviour switches of one autoblog (farm-wide defaults overridden by --fault)."""

    latency_ms: float = 0.0
    error: float = 0.0
    drop: float = 0.0
    gzip: bool = False
    chunked: bool = False
    latin1: bool = False
    update: bool = False
    trailer: str = "none"
    disabled: bool = False
    archived: bool = False
    site_type: str | None = None
    shapes: bool = False
    status: int = 0  # every request under the folder answers this status (0: normal)
    content_type: str | None = None  # the pages' Content-Type instead of text/html
    throttle: Throttle | None = None  # a share of the URLs answers 429/503 with Retry-After

    def apply(self, kind: str, value: str | None) -> None:
        """Apply one ``KIND[=VALUE]`` fault specification."""
        if kind == "latency":
            self.latency_ms = float(value or 0)
        elif kind == "error":
            self.error = float(value if value is not None else 1)
        elif kind == "drop":
            self.drop = float(value if value is not None else 1)
        elif kind in ("gzip", "chunked", "latin1", "update", "disabled", "archived", "shapes"):
            setattr(self, kind, value is None or value.lower() not in ("0", "false", "no", "off"))
        elif kind == "trailer":
            if value not in TRAILERS:
                raise ValueError(f"trailer must be one of {TRAILERS}")
            self.trailer = value
        elif kind == "type":
            if value not in SITE_TYPES:
                raise ValueError(f"type must be one of {SITE_TYPES}")
            self.site_type = value
        elif kind == "status":
            if not (value or "").isdigit() or not 200 <= int(value or 0) <= 599:
                raise ValueError("status must be an HTTP status from 200 to 599")
            self.status = int(value or 0)
        elif kind == "throttle":
            self.throttle = parse_throttle(value or "")
        elif kind == "ctype":
            if not value or not value.isprintable():
                raise ValueError("ctype must be a Content-Type, e.g. image/png")
            self.content_type = value
        else:
            raise ValueError(f"unknown fault kind {kind!r}")


@dataclass
class FaultSpec:
    """A parsed ``TARGET:KIND[=VALUE]``."""

    target: str
    kind: str
    value: str | None = None


def parse_fault(text: str) -> FaultSpec:
    """argparse type for --fault."""
    target, sep, rest = text.partition(":")
    if not sep or not rest:
        raise argparse.ArgumentTypeError(f"expected TARGET:KIND[=VALUE], got {text!r}")
    kind, _, value = rest.partition("=")
    spec = FaultSpec(target, kind.strip(), value if _ else None)
    try:
        AutoblogSettings().apply(spec.kind, spec.value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return spec


@dataclass
class FarmConfig:
    """Everything the farm needs to know, built from parsed arguments."""

    host: str = "127.0.0.1"
    port: int = 8080
    seed: int = 1
    autoblogs: int = 3
    articles: int = 12
    engines: list[str] = field(default_factory=lambda: ["0.3.4"])
    defaults: AutoblogSettings = field(default_factory=AutoblogSettings)
    faults: list[FaultSpec] = field(default_factory=list)
    robots: str | None = None
    crawl_delay: float | None = None
    content_length: bool = True
    keep_alive: bool = False
    quiet: bool = True
    hostile: dict[str, int] = field(default_factory=dict)  # --hostile KIND=N


def port_number(text: str) -> int:
    """argparse type for --port: 0 (any free port) to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port from 0 (any free port) to 65535")
    return int(text)


def add_farm_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every sample-farm option to ``parser`` (fixed interface used by crawler.cli)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = FAULT_HELP
    g = parser.add_argument_group("farm")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    g.add_argument("--port", type=port_number, default=8080, help="port (0 = any free port)")
    g.add_argument("--seed", type=int, default=1, help="seed of all generated content")
    g.add_argument("--autoblogs", type=int, default=3, help="number of autoblogs")
    g.add_argument("--articles", type=int, default=12, help="articles per autoblog")
    g.add_argument(
        "--engine",
        nargs="+",
        default=["0.3.4"],
        choices=ENGINES,
        metavar="V",
        help=f"engine versions {ENGINES}, assigned round-robin to autoblogs",
    )
    f = parser.add_argument_group("faults and behaviour (farm-wide; see --fault below)")
    f.add_argument("--latency", type=float, default=0.0, metavar="MS", help="added latency")
    f.add_argument("--error-rate", type=float, default=0.0, metavar="F", help="fraction 500/503")
    f.add_argument("--drop-rate", type=float, default=0.0, metavar="F", help="fraction dropped")
    f.add_argument(
        "--throttle",
        type=_throttle,
        default=None,
        metavar="SHARE:AFTER[:TIMES[:STATUS]]",
        help="a share of the URLs answers 429 with Retry-After (see throttle= below)",
    )
    f.add_argument("--gzip", action="store_true", help="gzip bodies when the client accepts it")
    f.add_argument("--chunked", action="store_true", help="Transfer-Encoding: chunked")
    f.add_argument("--update-block", action="store_true", help="'Mise a jour' block everywhere")
    f.add_argument("--trailer", choices=TRAILERS, default="none", help="'Error happened!' kind")
    f.add_argument(
        "--fault", type=parse_fault, action="append", default=[], metavar="TARGET:KIND[=V]"
    )
    f.add_argument("--robots", default=None, metavar="TEXT", help="robots.txt body (else 404)")
    f.add_argument("--crawl-delay", type=float, default=None, help="add Crawl-delay to robots")
    f.add_argument(
        "--no-content-length",
        action="store_true",
        help="omit Content-Length like PHP's built-in server (body ends at close)",
    )
    f.add_argument("--keep-alive", action="store_true", help="honour HTTP/1.1 keep-alive")
    f.add_argument(
        "--hostile",
        type=_hostile,
        action="append",
        default=[],
        metavar="KIND=N",
        help="serve a hostile shape (repeatable): " + ", ".join(_hostile_kinds()),
    )
    f.add_argument("--log-requests", action="store_true", help="print each request on stderr")


def config_from_args(args: argparse.Namespace) -> FarmConfig:
    """Turn parsed arguments into a FarmConfig."""
    d = AutoblogSettings(
        latency_ms=args.latency,
        error=args.error_rate,
        drop=args.drop_rate,
        throttle=args.throttle,
        gzip=args.gzip,
        chunked=args.chunked,
        update=args.update_block,
        trailer=args.trailer,
    )
    return FarmConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        autoblogs=max(1, args.autoblogs),
        articles=max(0, args.articles),
        engines=list(args.engine),
        defaults=d,
        faults=list(args.fault),
        robots=args.robots,
        crawl_delay=args.crawl_delay,
        content_length=not args.no_content_length,
        keep_alive=args.keep_alive,
        quiet=not args.log_requests,
        hostile=dict(args.hostile),
    )


def _throttle(text: str) -> Throttle | None:
    try:
        return parse_throttle(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hostile_kinds() -> list[str]:
    return [f"{kind}=N ({what})" for kind, what in HOSTILE_KINDS.items()]


def _hostile(text: str) -> tuple[str, int]:
    """argparse type for ``--hostile KIND=N``."""
    kind, _, count = text.partition("=")
    if kind not in HOSTILE_KINDS or not count.isdigit():
        kinds = ", ".join(HOSTILE_KINDS)
        raise argparse.ArgumentTypeError(f"expected KIND=N with KIND one of {kinds}")
    return kind, int(count)
