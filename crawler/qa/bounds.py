"""How much of a replayed page ``qa`` looks at: the ``QA_*`` settings and the lists'
lengths (a replayed page is content from outside)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What one page's record names at most (the counts are always whole).
LISTED = 50
CONSOLE_CHARS = 500


@dataclass(frozen=True)
class QaBounds:
    """The ``QA_*`` settings (their defaults live in crawler/settings.py)."""

    page_timeout: float
    max_requests: int
    text_chars: int
    min_score: float

    @classmethod
    def from_settings(cls, settings: Any) -> QaBounds:
        return cls(
            page_timeout=settings.getfloat("QA_PAGE_TIMEOUT"),
            max_requests=settings.getint("QA_MAX_REQUESTS"),
            text_chars=settings.getint("QA_TEXT_CHARS"),
            min_score=settings.getfloat("QA_MIN_SCORE"),
        )
