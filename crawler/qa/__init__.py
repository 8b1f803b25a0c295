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

One idea a module: ``bounds`` (how much of a page is looked at), ``captured`` (which
pages, and what their WARC records hold), ``browser`` (Chromium driving a replayed page),
``score`` (a page's record and score, the summary), ``command`` (the run and its report).
"""
