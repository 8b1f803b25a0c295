"""The audit that closes every run: what the farm declares, against what the archive holds.

A run's own errors are not the whole truth. A walk cut short (``MAX_LINKS_PER_PAGE``, an
incremental run's stop rule, a killed worker) leaves pages and articles no fetch failed
for, and no later run would look at again. So every run ends by reading, per autoblog,
what the farm itself declared in the captures the archive holds (the newest good capture
of each URL, whichever run made it) and checking every declared item against the history:

- autoblogs: the farm index and ``?export`` of each seed, the seeds themselves, and the
  autoblogs named with ``--autoblogs`` / ``hidden_autoblogs``;
- index pages: every page up to the last page number page 1 lists; for an engine that
  links only the next page (0.1), the chain of "older" links through the archived pages;
- files: what the autoblog's engine serves beside its pages (:data:`ENGINE_FILES`);
- articles: every permalink an archived page listed; on an autoblog whose first page lists
  articles, the entries of its Atom feed (0.3.x, 2025) and the rows of its ``articles.db``
  (every engine but 0.1, whose permalinks are not its database's ``uri``).

Nothing the engine legitimately never serves is asked for: pages past the last one,
numeric slugs (the engine serves ``?2024`` as a page number), a 0.1 or 0.2 engine's feed
links, URLs the scope or the forbidden-URL rules keep the crawler from. An item is held
when the newest capture of its URL answered (below 500, not 408 nor 429): a 404 permalink
is what the engine serves, while after a 5xx, a 408 or a 429 (the farm throttled the
crawl) the page as the farm serves it now is unknown. Every page whose newest capture
was throttled is missing too, declared or not. What is missing is named (autoblog, what,
URL, why), makes the run partial, and is fetched first by the next run
(:func:`save_audit`, :func:`missing_before`); ``verify`` runs the same audit offline, on
what the WARC files still hold.

Everything read here came from the farm: every source is read at most ``max_declared``
items deep and ``read_limit`` bytes long, at most ``max_missing`` items are named (the
rest counted), and a cap reached is said (:attr:`Audit.notes`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from scrapy import Selector
from scrapy.http import Response, TextResponse

from crawler.farm_documents import NestedTooDeeply, read_export, read_farm_page
from crawler.history.archive_view import ArchiveView, database_uris
from crawler.history.model import ANSWERED_SQL, THROTTLED
from crawler.parsing import ENGINE_FILES, ParsedPage, parse_page
from crawler.scope import Scope, forbidden_reason
from crawler.urls import PAGE_QUERY, autoblog_base, canonical_url, page_number

if TYPE_CHECKING:
    from crawler.context import RunContext

logger = logging.getLogger(__name__)

# Engines whose feed links each entry to its permalink (``?<slug>``, as their pages do).
FEED_PERMALINKS = ("0.3", "2025", "0.3.0")
# Why a page the farm throttled is missing, declared or not.
THROTTLED_WHY = f"answered {THROTTLED} Too Many Requests on every attempt when last asked"
# Who named an autoblog (the "why" of a missing autoblog).
NAMED = "named with --autoblogs (or hidden_autoblogs)"
SEEDED = "named on the command line"

TABLE = (
    "CREATE TABLE IF NOT EXISTS audit_missing (run_id INTEGER NOT NULL, autoblog TEXT NOT NULL,"
    " what TEXT NOT NULL, url TEXT NOT NULL, why TEXT NOT NULL)"
)


@dataclass(frozen=True)
class AuditBounds:
    """How deep the audit reads what a farm declares (``AUDIT_*`` settings)."""

    max_declared: int  # AUDIT_MAX_DECLARED: items read from one source of one autoblog
    max_missing: int  # AUDIT_MAX_MISSING: missing items named (the rest are counted)
    max_url_length: int  # URLLENGTH_LIMIT: longer URLs are never requested (0: none)
    read_limit: int  # DOWNLOAD_MAXSIZE: bytes read of one record

    @classmethod
    def of(cls, context: RunContext) -> AuditBounds:
        """The audit's bounds from the run context."""
        audit, bounds = context.audit, context.bounds
        return cls(audit.max_declared, audit.max_missing, bounds.url_length, bounds.read_limit)


@dataclass(frozen=True)
class Missing:
    """One item the farm declares that no capture holds."""

    autoblog: str
    what: str  # autoblog | seed | index page | file | article
    url: str
    why: str

    def line(self) -> str:
        """The missing item as one line: what, URL and why."""
        return f"{self.what} {self.url} ({self.why})"


@dataclass
class Audit:
    """The audit of one archive: what it checked and what is missing."""

    autoblogs: int = 0  # autoblogs whose declarations were read
    checked: int = 0  # declared items checked against the archive
    missing_total: int = 0
    missing: list[Missing] = field(default_factory=list)  # the first max_missing
    notes: list[str] = field(default_factory=list)  # caps reached, sources unreadable

    @property
    def complete(self) -> bool:
        """Whether nothing declared is missing."""
        return self.missing_total == 0

    def as_dict(self) -> dict[str, Any]:
        """The audit as JSON for the report and the summary."""
        return {
            "complete": self.complete,
            "autoblogs": self.autoblogs,
            "checked": self.checked,
            "missing_total": self.missing_total,
            "missing": [asdict(m) for m in self.missing],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class AuditScope:
    """What the audited runs were asked to crawl."""

    seeds: list[str]
    scope: Scope
    named: list[str] = field(default_factory=list)  # autoblog bases named by the user
    keeps: Callable[[str], bool] | None = None  # crawl --processes: this process's autoblogs


class Auditor:
    """One audit: reads the declarations, checks each item, names what is missing."""

    def __init__(self, view: ArchiveView, scope: AuditScope, bounds: AuditBounds) -> None:
        self.view = view
        self.scope = scope
        self.bounds = bounds
        self.audit = Audit()
        self._named: set[str] = set()  # URLs already named missing

    # -- the items ---------------------------------------------------------------

    def fetchable(self, url: str) -> bool:
        """What the crawler would request at all (scope, forbidden URLs, URL length)."""
        limit = self.bounds.max_url_length
        if limit and len(url) > limit:
            return False
        return forbidden_reason(url) is None and self.scope.scope.allows(url)

    def check(self, autoblog: str, what: str, url: str, why: str) -> bool:
        """Whether the archive holds ``url``, or need not; names it missing otherwise."""
        limit = self.bounds.max_url_length
        if limit and len(url) > limit:
            return True  # before canonical_url reads it: a database row may be megabytes
        url = canonical_url(url)
        if not self.fetchable(url):
            return True
        return self.tally(autoblog, what, url, why, self.view.held(url))

    def tally(self, autoblog: str, what: str, url: str, why: str, held: bool) -> bool:
        """Count ``url`` (canonical, fetchable) as checked: ``held``, or named missing."""
        self.audit.checked += 1
        if held:
            return True
        self.missing(Missing(autoblog, what, url, why))
        return False

    def missing(self, item: Missing) -> None:
        """Name a missing item once (the same URL declared twice counts once)."""
        if item.url in self._named:
            return
        self._named.add(item.url)
        self.audit.missing_total += 1
        if len(self.audit.missing) < self.bounds.max_missing:
            self.audit.missing.append(item)

    def note(self, text: str) -> None:
        """Keep a note on how far the audit went (up to AUDIT_MAX_MISSING)."""
        if len(self.audit.notes) < self.bounds.max_missing:
            self.audit.notes.append(text)
            logger.warning("audit: %s", text)

    def capped(self, items: Iterable[str], autoblog: str, source: str) -> Iterator[str]:
        """At most ``max_declared`` of a source's items, saying so when there were more."""
        for count, item in enumerate(items):
            if count >= self.bounds.max_declared:
                self.note(
                    f"{autoblog}: {source} declares more than {self.bounds.max_declared} items;"
                    " the audit checked the first ones (AUDIT_MAX_DECLARED)"
                )
                return
            yield item

    def response(self, url: str) -> Response | None:
        """The newest good capture of ``url`` as the crawl's response, if it can be read."""
        capture = self.view.newest(url)
        return self.view.read(capture) if capture is not None else None

    def page(self, url: str) -> tuple[Response, ParsedPage] | None:
        """The newest good capture of ``url``, read and parsed as an engine page."""
        response = self.response(url)
        if not isinstance(response, TextResponse):
            return None
        return response, parse_page(response.text, response.url, with_resources=False)

    def body(self, url: str) -> bytes | None:
        """The archived body of ``url`` (read within the bound), or None."""
        response = self.response(url)
        return response.body if response is not None else None

    # -- the audit -----------------------------------------------------------------

    def run(self) -> Audit:
        """Check every seed and named autoblog against the archive."""
        autoblogs: dict[str, str] = {}  # base -> who declares it ("": the history only)
        for seed in self.scope.seeds:
            self.seed(canonical_url(seed), autoblogs)
        for base in self.scope.named:
            autoblogs.setdefault(canonical_url(base), NAMED)
        for base in self.view.known_autoblogs():
            autoblogs.setdefault(base, "")
        keeps = self.scope.keeps
        for base, why in sorted(autoblogs.items()):
            if self.fetchable(base) and (keeps is None or keeps(base)):
                self.autoblog(base, why)
        # Declared or not (a medium, a stylesheet): a page the farm throttled when last
        # asked is not in the archive as it is now.
        for url, autoblog in self.view.throttled():
            if self.fetchable(url) and (keeps is None or keeps(autoblog)):
                self.missing(Missing(autoblog, "page", url, THROTTLED_WHY))
        return self.audit

    def seed(self, seed: str, autoblogs: dict[str, str]) -> None:
        """Check a seed: the farm's list of autoblogs, or the autoblog it is."""
        found = self.page(seed)
        if found is None:
            self.check(autoblog_base(seed), "seed", seed, SEEDED)
            return
        response, page = found
        if page.kind != "farm":
            if page.engine:
                autoblogs.setdefault(autoblog_base(seed), SEEDED)
            return
        root = urljoin(seed, "./")
        # One more than the cap, so that capped() sees there were more.
        limit = self.bounds.max_declared + 1
        listed = read_farm_page(response.text, seed, limit).autoblogs
        for base in self.capped(listed, root, "the farm index"):
            autoblogs.setdefault(canonical_url(base), "listed by the farm index")
        export = root + "?export"
        if not self.check(root, "file", export, "the farm's list of autoblogs"):
            return
        try:
            bases, _ = read_export(self.body(export) or b"", root, limit)
        except (NestedTooDeeply, ValueError):
            return
        for base in self.capped(bases, root, "?export"):
            autoblogs.setdefault(canonical_url(base), "listed in the farm's ?export")

    def autoblog(self, base: str, why: str) -> None:
        """Check an autoblog (``base``: canonical and fetchable, as :meth:`run` gives it):
        its pages, articles, feed and database against the archive."""
        if not self.view.captured(base):
            # Never captured, as most of a long farm list that a run did not reach: missing
            # when declared, and nothing to read. One lookup, not the two below.
            if why:
                self.tally(base, "autoblog", base, why, held=False)
            return
        if why:
            self.check(base, "autoblog", base, why)
        found = self.page(base)  # its last good first page, even if it failed since
        if found is None:
            return
        _, page = found
        if not page.engine or page.kind == "farm":
            return
        self.audit.autoblogs += 1
        for name in ENGINE_FILES.get(page.engine, ()):
            self.check(base, "file", base + name, f"an autoblog of the {page.engine} engine")
        if page.next_page is None:
            pass  # one page: without a pagination, digits in its links are article titles
        elif set(page.page_links) == {page.next_page}:
            self.page_chain(base, page)
        else:
            self.page_range(base, page)
        for permalink in self.capped(self.view.sighted(base), base, "its archived pages"):
            self.check(base, "article", permalink, "listed on an archived page")
        if page.kind != "index" or not page.articles:
            return  # an error page, a first visit: the engine lists no article (yet)
        if page.engine in FEED_PERMALINKS:
            self.feed(base)
        if page.engine != "0.1":
            self.database(base, page.engine)

    def page_range(self, base: str, page: ParsedPage) -> None:
        """Pages 2 to the last page number page 1 lists (all of them, in any engine's nav)."""
        numbered = [n for n in map(page_number, page.page_links) if n is not None]
        if not numbered:
            return
        prefix, last = max(numbered, key=lambda n: n[1])
        top = min(last, self.bounds.max_declared + 1)
        if top < last:
            self.note(
                f"{base}: page 1 lists {last} pages; the audit checked the first {top} "
                "(AUDIT_MAX_DECLARED)"
            )
        why = f"page 1 lists pages up to {last}"
        for number in range(2, top + 1):
            self.check(base, "index page", f"{prefix}{number}", why)

    def page_chain(self, base: str, page: ParsedPage) -> None:
        """An engine that links only the next page: each archived page names the next."""
        url, number = page.next_page, 1
        for step in range(self.bounds.max_declared + 1):
            found = page_number(url) if url else None
            if url is None or found is None or found[1] <= number:
                return  # no next page, or a link back: the chain ends
            if step == self.bounds.max_declared:
                self.note(
                    f"{base}: its chain of pages is longer than {step}; the audit checked the "
                    "first ones (AUDIT_MAX_DECLARED)"
                )
                return
            why = f"page {number} links to it as the next page"
            if not self.check(base, "index page", url, why):
                return
            following = self.page(url)
            if following is None:
                return
            url, number = following[1].next_page, found[1]

    def feed(self, base: str) -> None:
        """Check that the feed's articles are archived."""
        response = self.response(base + "?feed")
        if not isinstance(response, TextResponse):
            return
        selector = Selector(text=response.text, type="xml")
        links = selector.xpath(
            "//*[local-name()='entry']/*[local-name()='link'][@rel='alternate']/@href"
        ).getall()
        for href in self.capped(links, base, "its feed"):
            # Re-rooted on the autoblog: the engine prints the host it believes it has.
            query = urlsplit(href.strip()).query
            if query and not PAGE_QUERY.match(query):
                self.check(base, "article", f"{base}?{query}", "listed in its feed")

    def database(self, base: str, engine: str) -> None:
        """Check that ``articles.db``'s articles are archived."""
        data = self.body(base + "articles.db")
        if not data:
            return
        uris = database_uris(data, self.bounds.max_declared)
        try:
            for uri in self.capped(uris, base, "articles.db"):
                if not uri or uri.isdigit():
                    continue  # a numeric slug is served as a page number
                permalink = f"{base}{uri}" if engine == "0.2" else f"{base}?{uri}"
                self.check(base, "article", permalink, "listed in its articles.db")
        except sqlite3.Error as exc:
            self.note(f"{base}: its articles.db could not be read ({exc})")


def audit_archive(view: ArchiveView, scope: AuditScope, bounds: AuditBounds) -> Audit:
    """What the farm declares that the archive does not hold (see the module's docstring)."""
    return Auditor(view, scope, bounds).run()


# -- between runs: the next run fetches first what this one found missing -------------


def save_audit(conn: sqlite3.Connection, run_id: int, audit: Audit) -> None:
    """Keep the missing items named by the audit of ``run_id`` (replacing earlier ones)."""
    conn.execute(TABLE)
    conn.execute("DELETE FROM audit_missing")
    conn.executemany(
        "INSERT INTO audit_missing (run_id, autoblog, what, url, why) VALUES (?, ?, ?, ?, ?)",
        [(run_id, m.autoblog, m.what, m.url, m.why) for m in audit.missing],
    )


def missing_before(conn: sqlite3.Connection) -> list[Missing]:
    """What the last audit named missing that no capture holds yet (none before any audit)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_missing'").fetchone()
    if exists is None:
        return []
    rows = conn.execute(
        "SELECT autoblog, what, url, why FROM audit_missing m WHERE NOT COALESCE(("
        f"  SELECT {ANSWERED_SQL} FROM captures c WHERE c.url = m.url"
        "  ORDER BY c.warc_date DESC, c.id DESC LIMIT 1), 0) ORDER BY rowid"
    )
    return [Missing(*row) for row in rows]
