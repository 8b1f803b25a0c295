"""How much of a replayed page ``qa`` names: the lists' lengths (a replayed page is content
from outside; its ``QA_*`` bounds are the run context's ``QaOptions``)."""

from __future__ import annotations

# What one page's record names at most (the counts are always whole).
LISTED = 50
CONSOLE_CHARS = 500
