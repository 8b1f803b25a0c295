"""The replayed side of ``qa``: Debian's Chromium found, driven by Playwright, opening
one replayed page in a fresh context that reaches nothing but the replay; what the
archive holds for a resource that failed (pywb's CDX API)."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from crawler.exitcodes import UsageError
from crawler.qa.bounds import CONSOLE_CHARS, LISTED
from crawler.qa.captured import PageRef

if TYPE_CHECKING:
    from crawler.context import QaOptions

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


@dataclass
class Resource:
    """A resource a replayed page requested, and how it answered."""

    url: str
    status: int | None = None  # None: the request failed or was aborted
    failure: str | None = None


@dataclass
class ReplayedPage:
    """A page as Chromium showed it replayed: status, text, resources, escapes, console."""

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
        """Close Chromium and Playwright."""
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
    """Count a console error, keeping the first few."""
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
