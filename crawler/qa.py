"""``autoblog-archive qa DIR``: does the archive replay as it was captured, in a real browser?

``verify`` checks the WARC files as files; this checks what a reader sees. The archive is
replayed in pywb (crawler/replay.py: loopback only, a private pywb root) and each page
(all of them, or ``--sample N`` drawn with ``--seed``) is opened in headless Chromium,
driven by Playwright for Python pointed at Debian's ``chromium`` (no browser download).
Per page: the HTTP status in replay; the visible text of the replayed page against the
visible text of the captured response (a Levenshtein similarity, as browsertrix's QA
does); every resource the page asks the replay for, and which of them the archive lacks;
every request that would leave the replay (blocked, counted: must be 0); console errors.
``qa/pages.jsonl`` and ``qa/summary.json`` are written in the folder, nothing else.

Replayed pages are content from outside: the browser reaches nothing but the replay's
own origin (every other request is aborted, host names do not resolve, service workers
are blocked), each page has ``QA_PAGE_TIMEOUT`` seconds and ``QA_MAX_REQUESTS`` requests,
and texts are cut at ``QA_TEXT_CHARS``. The score and its threshold: docs/qa.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from warcio.timeutils import timestamp_to_iso_date

from crawler.escaping import terminal
from crawler.exitcodes import EXIT_OK, EXIT_PARTIAL, UsageError
from crawler.untrusted import Folder, Refused, shown

if TYPE_CHECKING:
    from crawler.context import QaOptions, RunContext

QA_FOLDER = "qa"
PAGES_NAME = "pages.jsonl"
SUMMARY_NAME = "summary.json"
# What one page's record names at most (the counts are always whole).
LISTED = 50
CONSOLE_CHARS = 500
INSTALL_PLAYWRIGHT = "pip install 'autoblog-archive[qa]' (Playwright for Python and rapidfuzz)"
INSTALL_CHROMIUM = "apt-get install chromium (Debian's package; set AUTOBLOG_CHROMIUM to another)"


def find_chromium() -> str | None:
    """Debian's Chromium (``$AUTOBLOG_CHROMIUM`` first): the browser is never downloaded."""
    candidates = [os.environ.get("AUTOBLOG_CHROMIUM"), shutil.which("chromium")]
    candidates.append(shutil.which("chromium-browser"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def check_prerequisites() -> str:
    """Chromium's path, or a one-line usage error naming what to install (exit 4)."""
    try:
        import playwright.sync_api  # noqa: F401
        import rapidfuzz  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"qa needs {exc.name}: not installed", INSTALL_PLAYWRIGHT) from None
    chromium = find_chromium()
    if chromium is None:
        raise UsageError("qa needs Chromium: no chromium executable found", INSTALL_CHROMIUM)
    return chromium


# -- the pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRef:
    """One HTML 200 capture of the index: what is opened, and where its record is."""

    collection: str
    url: str
    timestamp: str  # the CDXJ's 14 digits
    filename: str
    offset: int


def html_captures(collections: list) -> Iterator[PageRef]:
    """Every HTML 200 capture of the collections' indexes (the pages of pages.jsonl)."""
    from crawler.warc.cdxj import parse_cdxj_line

    for collection in collections:
        with open(collection.index, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parsed = parse_cdxj_line(line)
                if parsed is None:
                    continue  # `verify` names a damaged index line
                _key, ts, fields = parsed
                mime = fields.get("mime")
                if fields.get("status") != "200" or not isinstance(mime, str) or "html" not in mime:
                    continue
                if not (len(ts) == 14 and ts.isdigit()):
                    continue
                yield PageRef(
                    collection.name, fields["url"], ts, fields["filename"], int(fields["offset"])
                )


def choose(pages: Iterator[PageRef], sample: int | None, seed: int) -> list[PageRef]:
    """All pages, or ``sample`` of them drawn with ``seed`` (reservoir sampling: memory
    bounded by the sample, the same draw for the same archive and seed)."""
    if sample is None:
        return list(pages)
    rng = random.Random(seed)
    chosen: list[PageRef] = []
    for i, page in enumerate(pages):
        if i < sample:
            chosen.append(page)
        else:
            j = rng.randrange(i + 1)
            if j < sample:
                chosen[j] = page
    return sorted(chosen, key=lambda p: (p.collection, p.url, p.timestamp))


# -- the captured side --------------------------------------------------------------------


@dataclass
class CapturedPage:
    text: str = ""
    problem: str | None = None


def captured_page(path: Path | None, offset: int, chars: int, read_limit: int) -> CapturedPage:
    """The visible text of the captured response (the farm's truth rule:
    crawler.corpus.selfcheck.visible_text; its payload read up to ``read_limit`` bytes,
    DOWNLOAD_MAXSIZE), and what is wrong with its record: a record cut short (a truncated
    file) or unreadable is named, never raised."""
    from crawler.corpus.selfcheck import visible_text
    from crawler.corpus.text import charset_from_content_type, decode_html
    from crawler.parsing import parse_html
    from crawler.warc.reader import RecordWalk, open_warc

    if path is None:
        return CapturedPage(problem="its WARC file is not in the archive")
    problem = None
    try:
        with open_warc(path) as fh:
            fh.seek(offset)
            walk = RecordWalk(fh, payload=lambda _record: read_limit)
            record = next(iter(walk), None)
    except OSError as exc:
        return CapturedPage(problem=f"its record in {path.name} is unreadable ({exc!r})")
    if record is None or not record.decoded:
        if record is None and walk.failure is None:
            return CapturedPage(problem=f"no record at offset {offset} of {path.name}")
        why = repr(walk.failure) if record is None else "its Content-Encoding cannot be undone"
        return CapturedPage(problem=f"its record in {path.name} is unreadable ({why})")
    payload, defect = record.payload, record.defect
    declared = record.http_headers.get_header("Content-Type") if record.http_headers else None
    if defect:
        problem = f"its record in {path.name} at offset {offset} is cut: {defect}"
    try:
        html, _, _ = decode_html(payload, charset_from_content_type(declared))
        doc = parse_html(html, "")
        body = doc.find("body")
        text = visible_text(body if body is not None else doc)
    except Exception as exc:  # noqa: BLE001 - a page lxml cannot read has no text
        return CapturedPage(problem=problem or f"its captured page cannot be parsed ({exc!r})")
    return CapturedPage(text[:chars], problem)


def words(text: str) -> str:
    """Text with its white space made single spaces: layout is not content."""
    return " ".join(text.split())


def text_match(captured: str, replayed: str) -> float:
    """1 - Levenshtein distance / the longer length, over the words of both texts
    (rapidfuzz: bit-parallel, both texts bounded by QA_TEXT_CHARS)."""
    from rapidfuzz.distance import Levenshtein

    a, b = words(captured), words(replayed)
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a, b))


# -- the replayed side --------------------------------------------------------------------


@dataclass
class Resource:
    url: str
    status: int | None = None  # None: the request failed or was aborted
    failure: str | None = None


@dataclass
class ReplayedPage:
    status: int | None = None
    text: str = ""
    resources: dict[str, Resource] = field(default_factory=dict)
    escapes: list[str] = field(default_factory=list)
    escape_count: int = 0
    console_errors: list[str] = field(default_factory=list)
    console_count: int = 0
    requests: int = 0
    over_bound: int = 0
    timed_out: str | None = None


def original_url(replay_url: str, prefix: str) -> str | None:
    """The archived URL in a replay URL ``<base><coll>/<timestamp><modifier>/<url>``;
    None for the replay's own files (pywb's static/)."""
    if not replay_url.startswith(prefix):
        return None
    _stamp, slash, rest = replay_url[len(prefix) :].partition("/")
    return rest if slash and rest else None


def browser_args() -> list[str]:
    """Chromium with nothing to reach but loopback addresses given as numbers, and none
    of its own background traffic."""
    return [
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--no-pings",
        "--metrics-recording-only",
        "--no-first-run",
    ]


# The replayed page's text by the rule the captured side uses (crawler.corpus.selfcheck:
# script, style and embeds are not text; block elements and <br> end a line; cells are
# spaced), read from the live DOM after the page's scripts ran. Iterative: a hostile page
# nested 100,000 deep does not overflow the stack. Hidden elements count on both sides:
# the captured response has no style sheet to hide them.
PAGE_TEXT_JS = """([limit, skip, blocks]) => {
  const SKIP = new Set(skip), BLOCK = new Set(blocks), out = [];
  let size = 0;
  const stack = document.body ? [[document.body, false]] : [];
  while (stack.length && size < limit) {
    const [node, closing] = stack.pop();
    if (closing) { out.push(node); size += node.length; continue; }
    for (let c = node.lastChild; c; c = c.previousSibling) {
      if (c.nodeType === 3) { stack.push([c.data, true]); continue; }
      if (c.nodeType !== 1 || SKIP.has(c.localName)) continue;
      const tag = c.localName, cell = tag === "td" || tag === "th";
      const mark = BLOCK.has(tag) || tag === "br" ? "\\n" : cell ? " " : "";
      if (mark) stack.push([mark, true]);
      stack.push([c, false]);
      if (mark) stack.push([mark, true]);
    }
  }
  return out.join("").slice(0, limit);
}"""


def _text_rules() -> list[list[str]]:
    from crawler.corpus.selfcheck import BLOCK_TAGS, SKIP_TAGS

    return [sorted(SKIP_TAGS), sorted(BLOCK_TAGS)]


class Browser:
    """Headless Chromium for replayed pages: one fresh context per page."""

    def __init__(self, chromium: str, base: str, bounds: QaOptions) -> None:
        from playwright.sync_api import sync_playwright

        self.base = base
        self.bounds = bounds
        self._playwright = sync_playwright().start()
        try:
            self.browser = self._playwright.chromium.launch(
                executable_path=chromium, headless=True, args=browser_args()
            )
        except BaseException:
            self._playwright.stop()
            raise

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._playwright.stop()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, page_ref: PageRef) -> ReplayedPage:
        """Open one page in replay: status, text, resources, escapes, console errors."""
        from playwright.sync_api import Error as PlaywrightError

        result = ReplayedPage()
        prefix = f"{self.base}{page_ref.collection}/"
        target = f"{prefix}{page_ref.timestamp}/{page_ref.url}"
        bounds = self.bounds
        context = self.browser.new_context(
            service_workers="block", accept_downloads=False, viewport={"width": 1280, "height": 900}
        )
        try:
            context.set_default_timeout(bounds.page_timeout * 1000)

            def route(r: Any) -> None:
                url = r.request.url
                if not url.startswith(self.base):
                    result.escape_count += 1
                    if len(result.escapes) < LISTED:
                        result.escapes.append(url)
                    r.abort("blockedbyclient")
                elif result.requests >= bounds.max_requests:
                    result.over_bound += 1
                    r.abort("blockedbyclient")
                else:
                    result.requests += 1
                    r.continue_()

            def response(resp: Any) -> None:
                url = original_url(resp.url, prefix)
                if url is not None and not is_page(resp.request):
                    result.resources.setdefault(url, Resource(url)).status = resp.status

            def failed(req: Any) -> None:
                url = original_url(req.url, prefix)
                if url is not None and not is_page(req):
                    entry = result.resources.setdefault(url, Resource(url))
                    entry.failure = str(req.failure or "failed")[:CONSOLE_CHARS]

            def console(message: Any) -> None:
                if message.type == "error":
                    where = (message.location or {}).get("url") or ""
                    note_console(result, f"{message.text} ({where})" if where else message.text)

            context.route("**/*", route)
            context.route_web_socket("**/*", lambda ws: ws.close())
            page = context.new_page()
            page.on("response", response)
            page.on("requestfailed", failed)
            page.on("console", console)
            page.on("pageerror", lambda exc: note_console(result, f"uncaught: {exc}"))
            try:
                answer = page.goto(target, wait_until="load")
                result.status = answer.status if answer is not None else None
                page.wait_for_load_state("networkidle")
                result.text = page.evaluate(PAGE_TEXT_JS, [bounds.text_chars, *_text_rules()])
            except PlaywrightError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                result.timed_out = first[:CONSOLE_CHARS]
        finally:
            context.close()
        return result


def is_page(request: Any) -> bool:
    """The page's own navigation (not a frame in it, which is one of its resources)."""
    return bool(request.is_navigation_request() and request.frame.parent_frame is None)


def note_console(result: ReplayedPage, text: str) -> None:
    result.console_count += 1
    if len(result.console_errors) < LISTED:
        result.console_errors.append(str(text)[:CONSOLE_CHARS])


def archived_status(base: str, collection: str, url: str, timeout: float) -> int | None:
    """The status the archive holds for ``url`` (pywb's CDX API on loopback), None if it
    holds no capture of it: what tells "the archive lacks it" from "it was a 404"."""
    query = urllib.parse.urlencode({"url": url, "output": "json", "limit": "1"})
    try:
        with urllib.request.urlopen(f"{base}{collection}/cdx?{query}", timeout=timeout) as r:
            line = r.read(1 << 16).split(b"\n", 1)[0]
    except (OSError, urllib.error.URLError):
        return None
    if not line.strip():
        return None
    try:
        status = orjson.loads(line).get("status")
        return int(status) if str(status).isdigit() else 0
    except (orjson.JSONDecodeError, AttributeError):
        return 0


# -- one page's verdict -------------------------------------------------------------------


def page_record(
    ref: PageRef,
    captured: CapturedPage,
    replayed: ReplayedPage,
    lacking: dict[str, int | None],
    min_score: float,
) -> dict:
    """The page's line of qa/pages.jsonl: what was seen, its score and what is wrong."""
    from crawler.scope import forbidden_reason
    from crawler.urls import autoblog_base

    match = text_match(captured.text, replayed.text)
    resources = sorted(replayed.resources.values(), key=lambda r: r.url)
    loaded = [r for r in resources if r.status is not None and r.status < 400]
    # What the crawl never requests on purpose (a GET with side effects: xsaf3.php pulls
    # other farms) is not a shortfall of the archive: listed, not scored.
    never = [r for r in resources if r not in loaded and forbidden_reason(r.url)]
    counted = [r for r in resources if r not in never]
    missing = [r.url for r in counted if r not in loaded and lacking.get(r.url, 0) is None]
    failed = [
        f"{r.url} ({r.status if r.status is not None else r.failure})"
        for r in counted
        if r not in loaded and r.url not in missing
    ]
    share = len(loaded) / len(counted) if counted else 1.0
    problems: list[str] = []
    if captured.problem:
        problems.append(captured.problem)
    if replayed.timed_out:
        problems.append(f"did not load: {replayed.timed_out}")
    elif replayed.status != 200:
        problems.append(f"replay answered {replayed.status}, the capture is a 200")
    if replayed.escape_count:
        problems.append(f"{replayed.escape_count} requests would leave the replay")
    problems += [f"missing resource {url} (not in the archive)" for url in missing[:LISTED]]
    problems += [f"resource {item} did not load" for item in failed[:LISTED]]
    broken = bool(captured.problem or replayed.timed_out or replayed.status != 200)
    if match < min_score and not broken:
        problems.append(f"the replayed text matches the captured text at {match:.2f}")
    score = 0.0 if broken or replayed.escape_count else round(match * share, 4)
    return {
        "url": ref.url,
        "ts": timestamp_to_iso_date(ref.timestamp),
        "collection": ref.collection,
        "autoblog": autoblog_base(ref.url),
        "score": score,
        "status": replayed.status,
        "text_match": round(match, 4),
        "text_chars": {"captured": len(words(captured.text)), "replay": len(words(replayed.text))},
        "resources": {
            "requested": len(resources),
            "loaded": len(loaded),
            "never_requested": len(never),
            "missing": len(missing),
            "failed": len(failed),
        },
        # Every resource asked for (at most QA_MAX_REQUESTS), with its replay status.
        "requested": {r.url: r.status for r in resources},
        "missing": missing[:LISTED],
        "failed": failed[:LISTED],
        "never_requested": [r.url for r in never][:LISTED],
        "escapes": replayed.escape_count,
        "escaped": replayed.escapes,
        "requests_over_bound": replayed.over_bound,
        "console_errors": replayed.console_count,
        "console": replayed.console_errors,
        "problems": problems,
    }


# -- the run ------------------------------------------------------------------------------


@dataclass
class Summary:
    """What qa/summary.json says: per page counts, per autoblog scores."""

    threshold: float
    pages: int = 0
    below: list[dict] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    escapes: int = 0
    missing: dict[str, str] = field(default_factory=dict)  # resource -> first page lacking it
    console_errors: int = 0

    def add(self, record: dict) -> None:
        self.pages += 1
        self.scores.setdefault(record["autoblog"], []).append(record["score"])
        self.escapes += record["escapes"]
        self.console_errors += record["console_errors"]
        for url in record["missing"]:
            self.missing.setdefault(url, record["url"])
        if record["score"] < self.threshold:
            self.below.append(
                {
                    "url": record["url"],
                    "ts": record["ts"],
                    "score": record["score"],
                    "problems": record["problems"],
                }
            )

    def as_json(self, total: int, seconds: float) -> dict:
        all_scores = [s for scores in self.scores.values() for s in scores]
        return {
            "pages": self.pages,
            "pages_in_archive": total,
            "threshold": self.threshold,
            "score": _mean(all_scores),
            "below_threshold": len(self.below),
            "escapes": self.escapes,
            "missing_resources": len(self.missing),
            "console_errors": self.console_errors,
            "seconds": round(seconds, 1),
            "autoblogs": {
                base: {
                    "pages": len(scores),
                    "score": _mean(scores),
                    "min": min(scores),
                    "below_threshold": sum(s < self.threshold for s in scores),
                }
                for base, scores in sorted(self.scores.items())
            },
            "below": self.below[:LISTED],
            "missing": [{"url": u, "page": p} for u, p in sorted(self.missing.items())][:LISTED],
        }


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 1.0


@dataclass
class QaResult:
    summary: dict
    lines: list[str]
    exit_code: int


def run_qa_on(
    root: Path, context: RunContext, sample: int | None = None, seed: int = 0
) -> QaResult:
    """Replay ``root`` and open its pages in Chromium; write qa/ in it; the verdict. The
    bounds of a page and the threshold are the context's (``QA_*``)."""
    from crawler.replay import Wayback, check_replayable

    chromium = check_prerequisites()
    bounds, read_limit = context.qa, context.bounds.read_limit
    if sample is not None and sample < 1:
        raise UsageError(f"--sample {sample}: takes a number of pages, 1 or more")
    collections = check_replayable(root)
    try:
        with Folder.open(root) as folder:
            qa = folder.make_folder(QA_FOLDER)
            qa.close()
    except Refused as exc:
        raise UsageError(f"cannot write the qa results: {exc}") from None
    warcs = {c.name: {w.name: w for w in c.warcs} for c in collections}
    total = sum(1 for _ in html_captures(collections))
    pages = choose(html_captures(collections), sample, seed)
    summary = Summary(bounds.min_score)
    started = time.monotonic()
    records: list[bytes] = []
    with Wayback(root, collections=collections) as base, Browser(chromium, base, bounds) as browser:
        for ref in pages:
            path = warcs.get(ref.collection, {}).get(ref.filename)
            captured = captured_page(path, ref.offset, bounds.text_chars, read_limit)
            replayed = browser.open(ref)
            lacking = {
                r.url: archived_status(base, ref.collection, r.url, bounds.page_timeout)
                for r in replayed.resources.values()
                if r.status is None or r.status >= 400
            }
            record = page_record(ref, captured, replayed, lacking, bounds.min_score)
            summary.add(record)
            records.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    seconds = time.monotonic() - started
    result = summary.as_json(total, seconds)
    with Folder.open(root) as folder, folder.make_folder(QA_FOLDER) as qa:
        qa.write_file(PAGES_NAME, records)
        qa.write_file(SUMMARY_NAME, [orjson.dumps(result, option=orjson.OPT_INDENT_2), b"\n"])
    lines = summary_lines(result, root)
    code = EXIT_OK if not summary.below else EXIT_PARTIAL
    return QaResult(result, lines, code)


def summary_lines(result: dict, root: Path) -> list[str]:
    """What the terminal shows: one line per autoblog, one per page below the threshold
    and per missing resource, the verdict; every value escaped (it comes from pages)."""
    lines = [
        f"qa: {result['pages']} of {result['pages_in_archive']} pages replayed in Chromium "
        f"(threshold {result['threshold']:.2f})"
    ]
    for base, entry in result["autoblogs"].items():
        lines.append(
            f"  {base}: {entry['pages']} pages, score {entry['score']:.2f} "
            f"(min {entry['min']:.2f}), {entry['below_threshold']} below"
        )
    for page in result["below"]:
        why = "; ".join(page["problems"]) or "text differs"
        lines.append(f"BELOW  {page['score']:.2f}  {page['url']} ({page['ts']}): {why}")
    for item in result["missing"]:
        lines.append(f"MISSING  {item['url']} (needed by {item['page']})")
    verdict = (
        "OK"
        if not result["below_threshold"]
        else f"FAILED ({result['below_threshold']} pages below)"
    )
    lines.append(
        f"QA: {verdict}: {result['pages']} pages, mean score {result['score']:.2f}, "
        f"{result['escapes']} escapes, {result['missing_resources']} missing resources, "
        f"{result['console_errors']} console errors; {shown(root / QA_FOLDER)}"
    )
    return [terminal(line) for line in lines]


def run_qa(args: argparse.Namespace) -> int:
    """``autoblog-archive qa DIR [--sample N] [--seed S] [--set NAME=VALUE]``."""
    from crawler.context import command_context

    context = command_context(args.set)
    result = run_qa_on(Path(args.directory), context, args.sample, args.seed)
    for line in result.lines:
        print(line)
    return result.exit_code
