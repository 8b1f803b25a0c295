"""The run context: every setting this project reads, read and checked once.

Scrapy settings come from anywhere (``--set``, the config file, ``scrapy crawl -s``, a
``Settings`` built in Python) and any component could read them: one that does so itself
may read a value nobody checked, miss an operator's override, or fall back on a default
of its own. So they are read here alone, each typed like its default and checked against
``SETTING_RANGES`` and ``SETTING_CHOICES`` (``crawler/settings.py``, where every default
lives), into frozen dataclasses. A crawl builds its :class:`RunContext` once per crawler
(:meth:`RunContext.of`) and each component's ``from_crawler`` takes the part it needs;
the offline commands build the same context from the same settings and ``--set``
(:func:`command_context`). A bad value is one line and exit 4, whatever set it.
"""

from __future__ import annotations

import difflib
import math
import re
import weakref
from dataclasses import dataclass, field, fields, replace
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from scrapy.settings import BaseSettings, Settings

from crawler.exitcodes import UsageError
from crawler.layout import OutputLayout
from crawler.redact import redacted_command

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from scrapy.crawler import Crawler

T = TypeVar("T", bound="DataclassInstance")


def setting(name: str) -> Any:
    """A field of a context part, read from the Scrapy setting ``name``."""
    return field(metadata={"setting": name})


@dataclass(frozen=True)
class Output:
    """Where a crawl writes: ``OUTPUT_DIR`` is a pywb root, ``CRAWL_NAME`` its collection."""

    root: str = setting("OUTPUT_DIR")
    name: str = setting("CRAWL_NAME")
    wacz: bool = setting("WACZ_ENABLED")

    @property
    def layout(self) -> OutputLayout:
        """The output folder's paths for this collection."""
        return OutputLayout(self.root, self.name)


@dataclass(frozen=True)
class WarcOptions:
    """The capture's WARC files (pipelines.warc_capture)."""

    enabled: bool = setting("WARC_ENABLED")
    prefix: str = setting("WARC_PREFIX")  # empty: the collection's name
    max_size: int = setting("WARC_MAX_SIZE")
    operator: str = setting("WARC_OPERATOR")
    description: str = setting("WARC_DESCRIPTION")


@dataclass(frozen=True)
class Bounds:
    """What one run, one page and one read may take (crawler.bounds, crawler.download)."""

    pages_per_run: int = setting("MAX_PAGES_PER_RUN")  # 0: no bound
    pages_per_autoblog: int = setting("MAX_PAGES_PER_AUTOBLOG")
    links_per_page: int = setting("MAX_LINKS_PER_PAGE")
    url_length: int = setting("URLLENGTH_LIMIT")
    # The body bound of a download, and the most any reader takes of one stored payload.
    read_limit: int = setting("DOWNLOAD_MAXSIZE")
    response_headers: int = setting("MAX_RESPONSE_HEADERS")
    robots_size: int = setting("ROBOTSTXT_MAX_SIZE")
    # Pending requests the scheduler holds in memory; the rest wait on disk.
    memory_requests: int = setting("SCHEDULER_MEMORY_REQUESTS")


@dataclass(frozen=True)
class CorpusOptions:
    """The research corpus and its extraction workers (crawler.corpus)."""

    enabled: bool = setting("CORPUS_ENABLED")
    workers: int = setting("CORPUS_WORKERS")
    timeout: float = setting("CORPUS_TIMEOUT")
    max_tasks: int = setting("CORPUS_MAX_TASKS")
    min_records: float = setting("CORPUS_MIN_RECORDS")


@dataclass(frozen=True)
class HistoryOptions:
    """The crawl history and the kind of run (crawler.extensions.crawl_state)."""

    enabled: bool = setting("HISTORY_ENABLED")
    mode: str = setting("CRAWL_MODE")
    full_every: int = setting("FULL_PASS_EVERY")
    margin_pages: int = setting("INCREMENTAL_MARGIN_PAGES")
    # What the history and the run lock keep as this run's command (empty: the process's).
    command: str = setting("RUN_COMMAND")


@dataclass(frozen=True)
class AuditOptions:
    """The audit that closes every run (crawler.history.audit)."""

    enabled: bool = setting("AUDIT_ENABLED")
    max_declared: int = setting("AUDIT_MAX_DECLARED")
    max_missing: int = setting("AUDIT_MAX_MISSING")


@dataclass(frozen=True)
class Politeness:
    """What the farm is told and how long it is waited for, where our code needs it (the
    rest of Scrapy's politeness, concurrency and AutoThrottle, Scrapy applies itself)."""

    user_agent: str = setting("USER_AGENT")
    obey_robots: bool = setting("ROBOTSTXT_OBEY")
    delay: float = setting("DOWNLOAD_DELAY")
    timeout: float = setting("DOWNLOAD_TIMEOUT")
    retry: bool = setting("RETRY_ENABLED")  # a throttled answer is asked again (crawler.backoff)
    backoff_max_delay: float = setting("BACKOFF_MAX_DELAY")  # the longest Retry-After taken


@dataclass(frozen=True)
class ProgressOptions:
    """The live progress line (crawler.extensions.progress)."""

    interval: float = setting("PROGRESS_INTERVAL")
    live: bool = setting("PROGRESS_LIVE")


@dataclass(frozen=True)
class ProcessOptions:
    """``crawl --processes N``: the share of this process (crawler.processes)."""

    share: str = setting("PROCESS_SHARE")  # "i/N"; empty: a one-process crawl
    deal: str = setting("PROCESS_DEAL")


@dataclass(frozen=True)
class ClusterOptions:
    """A worker of a shared Redis frontier (crawler.cluster); empty crawl id: no cluster."""

    crawl_id: str = setting("CLUSTER_CRAWL_ID")
    run: int = setting("CLUSTER_RUN")
    mode: str = setting("CLUSTER_MODE")
    worker: str = setting("CLUSTER_WORKER")
    redis_url: str = setting("REDIS_URL")
    busy_ttl: int = setting("CLUSTER_BUSY_TTL")
    poll_interval: float = setting("CLUSTER_POLL_INTERVAL")
    max_entry_size: int = setting("CLUSTER_MAX_ENTRY_SIZE")

    @property
    def enabled(self) -> bool:
        """Whether this crawl is a worker of a shared frontier."""
        return bool(self.crawl_id)


@dataclass(frozen=True)
class QaOptions:
    """``qa``: each replayed page opened in headless Chromium (crawler.qa)."""

    page_timeout: float = setting("QA_PAGE_TIMEOUT")
    max_requests: int = setting("QA_MAX_REQUESTS")
    text_chars: int = setting("QA_TEXT_CHARS")
    min_score: float = setting("QA_MIN_SCORE")


@dataclass(frozen=True)
class RunContext:
    """Every setting the project reads, typed and checked, in one value."""

    output: Output
    warc: WarcOptions
    bounds: Bounds
    corpus: CorpusOptions
    history: HistoryOptions
    audit: AuditOptions
    politeness: Politeness
    progress: ProgressOptions
    processes: ProcessOptions
    cluster: ClusterOptions
    qa: QaOptions

    @property
    def layout(self) -> OutputLayout:
        """The output folder's paths."""
        return self.output.layout

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RunContext:
        """Read and check every setting (:class:`UsageError` on the first bad one)."""
        parts = get_type_hints(cls)
        context = cls(**{f.name: read_part(parts[f.name], settings) for f in fields(cls)})
        if context.history.command:
            return context
        # ``scrapy crawl``, a test: the command is this process's, read here once.
        history = replace(context.history, command=redacted_command())
        return replace(context, history=history)

    @classmethod
    def of(cls, crawler: Crawler) -> RunContext:
        """The context of ``crawler``, built from its settings on first use."""
        context = _contexts.get(crawler)
        if context is None:
            context = _contexts[crawler] = cls.from_settings(crawler.settings)
        return context


_contexts: weakref.WeakKeyDictionary[Crawler, RunContext] = weakref.WeakKeyDictionary()


def context_settings() -> list[str]:
    """The name of every setting the context reads: the settings that reach a component,
    the list ``docs/crawling.md`` documents."""
    hints = get_type_hints(RunContext)
    return [f.metadata["setting"] for part in fields(RunContext) for f in fields(hints[part.name])]


def read_part(part: type[T], settings: BaseSettings) -> T:
    """One frozen part of the context, each field from its setting."""
    return part(**{f.name: read_setting(settings, f.metadata["setting"]) for f in fields(part)})


@cache
def project_settings() -> Settings:
    """Scrapy's defaults with the project's (``crawler/settings.py``) over them: what types
    and bounds every setting, and what the commands start from."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    return settings


# What a setting of each type takes, in words.
KINDS = {"bool": "true or false", "int": "an integer", "float": "a number",
         "dict": "a JSON object", "list": "a JSON list", "str": "a string"}  # fmt: skip
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _kind(default: Any) -> str:
    return KINDS.get(type(default).__name__, f"a {type(default).__name__}")


def read_setting(settings: BaseSettings, name: str) -> Any:
    """The value of ``name`` typed like its default in ``crawler/settings.py`` and checked
    (:func:`check_value`); whatever set it, a bad value is bad usage."""
    known = project_settings()
    if name not in known:
        raise UsageError(f"{name}: not a setting of crawler/settings.py")
    default, raw = known[name], settings.get(name, known[name])
    try:
        if isinstance(default, bool):
            value: Any = _boolean(raw)
        elif isinstance(default, int | float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = type(default)(raw)
        else:
            value = "" if raw is None else str(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{name}={raw!r}: {name} takes {_kind(default)}") from None
    return check_value(name, value, f"{name}={raw}")


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in TRUE + FALSE:
        raise ValueError(raw)
    return text in TRUE


def check_value(name: str, value: Any, label: str) -> Any:
    """``value`` if ``SETTING_RANGES`` and ``SETTING_CHOICES`` allow it for ``name`` (a
    number not listed may not be negative), else bad usage: ``label: why``."""
    known = project_settings()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise UsageError(f"{label}: {name} takes {_kind(known.get(name, value))}")
        low, high = known.getdict("SETTING_RANGES").get(name, (0, None))
        if low is not None and value < low:
            raise UsageError(f"{label}: {name} must be at least {low}")
        if high is not None and value > high:
            raise UsageError(f"{label}: {name} must be at most {high}")
    choices = known.getdict("SETTING_CHOICES").get(name)
    if choices and value not in choices:
        raise UsageError(f"{label}: {name} takes one of {', '.join(choices)}")
    return value


SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Set by a command's own options, never by --set: the command would write elsewhere
# than it checked and reports.
COMMAND_OWNED = {"OUTPUT_DIR": "--output", "CRAWL_NAME": "--name"}


def parse_setting(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from ``--set``, typed like the setting's default and checked; an
    unknown name close to a known one is a typo (bad usage), another one is Scrapy's."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not SETTING_NAME.match(key):
        raise UsageError(f"--set {item!r}: expected NAME=VALUE, e.g. --set DOWNLOAD_DELAY=2")
    if key in COMMAND_OWNED:
        raise UsageError(f"--set {key}: give {COMMAND_OWNED[key]} instead")
    known = project_settings()
    if key not in known:
        close = difflib.get_close_matches(key, list(known.attributes), n=1, cutoff=0.85)
        if close:
            raise UsageError(f"--set {key}: unknown setting; did you mean {close[0]}?")
        return key, raw
    default = known[key]
    try:
        value: Any = raw
        if isinstance(default, bool):
            value = _boolean(raw)
        elif isinstance(default, int | float):
            value = type(default)(raw)
        elif isinstance(default, dict | list):
            import orjson

            value = orjson.loads(raw)
            if not isinstance(value, type(default)):
                raise ValueError(raw)
    except ValueError:
        raise UsageError(
            f"--set {key}={raw}: {key} takes {_kind(default)} (default {default!r})"
        ) from None
    return key, check_value(key, value, f"--set {key}={raw}")


def command_settings(sets: list[str], given: dict[str, Any] | None = None) -> Settings:
    """The project's settings with a command's own (``given``) and its ``--set`` over them."""
    settings = project_settings().copy()
    settings.update(given or {}, priority="cmdline")
    settings.update(dict(parse_setting(item) for item in sets), priority="cmdline")
    return settings


def command_context(sets: list[str], given: dict[str, Any] | None = None) -> RunContext:
    """The context of an offline command (extract, verify, qa, reindex, merge, reconcile):
    the crawl's settings, its options and ``--set`` over them, checked the same way."""
    return RunContext.from_settings(command_settings(sets, given))
