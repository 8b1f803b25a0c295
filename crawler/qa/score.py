"""A page's verdict and the run's summary: the text match, the share of resources that
loaded, the score, what is wrong in words; per autoblog scores (docs/qa.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from warcio.timeutils import timestamp_to_iso_date

from crawler.qa.bounds import LISTED
from crawler.qa.browser import ReplayedPage
from crawler.qa.captured import CapturedPage, PageRef


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


# -- the run's summary --------------------------------------------------------------------


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
        """Count a scored page."""
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
        """The summary as JSON (qa/summary.json)."""
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
