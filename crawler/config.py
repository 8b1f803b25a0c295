"""The TOML configuration of scheduled runs (``autoblog-archive crawl --config FILE``).

A nightly cron line should not carry a dozen flags: farms, output folder, politeness,
limits and incremental options live in one reviewed file (see
``examples/autoblog-archive.toml``). Read with the standard library's ``tomllib``;
every value is checked here, and an error names the file, the key and what was
expected, so a typo fails the run at once (exit code 4) instead of crawling with a
default nobody chose.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Cluster",
    "ConfigError",
    "CrawlConfig",
    "DatasetInfo",
    "FarmEntry",
    "Incremental",
    "command_config",
    "Limits",
    "Politeness",
    "load_config",
    "parse_size",
]

SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?)?b?\s*$", re.IGNORECASE)
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who edits the file."""


@dataclass(frozen=True)
class FarmEntry:
    """``[[farm]]``: a farm or autoblog URL and the hidden autoblogs to include."""

    url: str
    hidden_autoblogs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Politeness:
    """``[politeness]``: delay, concurrency and who to contact."""

    delay: float = 1.0
    concurrency: int = 1
    contact: str | None = None
    operator: str | None = None
    user_agent: str | None = None
    obey_robots: bool = True


@dataclass(frozen=True)
class Limits:
    """``[limits]``: pages per run and WARC file size."""

    max_pages: int = 0  # network fetches per run; 0: the default bound (crawler.settings)
    warc_max_size: int = 1_000_000_000


@dataclass(frozen=True)
class Incremental:
    """``[incremental]``: whether runs after the first are incremental, and how."""

    enabled: bool = True
    margin_pages: int = 1
    full_every: int = 0  # a full pass every N runs; 0: only with --full

    def full_pass_due(self, runs_since_full: int) -> bool:
        """Whether this run should be a full pass (edits and deletions are only seen then)."""
        if not self.enabled:
            return True
        return self.full_every > 0 and runs_since_full + 1 >= self.full_every


@dataclass(frozen=True)
class Cluster:
    """``[cluster]``: the shared Redis frontier of ``worker`` and ``seed`` (crawler.cluster)."""

    redis: str | None = None
    crawl_id: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """``[dataset]``: what ``package`` says of the dataset it writes (card, croissant.json).

    The licence is the operator's to state: the texts belong to their authors, so by
    default nothing is claimed."""

    title: str = "Projet Autoblog corpus"
    license: str = "unknown: see each source"
    url: str | None = None  # where the dataset is published; default: the farm crawled

    def replace(self, **values: str | None) -> DatasetInfo:
        """These values, those given (not None) taking the place of this one's."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class CrawlConfig:
    """A TOML configuration, read and checked."""

    farms: list[FarmEntry]
    output: Path
    name: str | None = None
    wacz: bool = False
    politeness: Politeness = field(default_factory=Politeness)
    limits: Limits = field(default_factory=Limits)
    incremental: Incremental = field(default_factory=Incremental)
    source: Path | None = None
    cluster: Cluster = field(default_factory=Cluster)
    dataset: DatasetInfo = field(default_factory=DatasetInfo)

    @property
    def urls(self) -> list[str]:
        """Every farm's URL, in the file's order."""
        return [f.url for f in self.farms]

    @property
    def hidden_autoblogs(self) -> list[str]:
        """Every farm's hidden autoblogs to include."""
        return [a for f in self.farms for a in f.hidden_autoblogs]

    def user_agent(self, version: str) -> str:
        """The User-Agent: explicit, or the project's with the operator's contact in it."""
        if self.politeness.user_agent:
            return self.politeness.user_agent
        contact = self.politeness.contact or "https://github.com/autoblog-archive"
        return (
            f"autoblog-archive/{version} (+{contact}; archival crawler for Projet Autoblog farms)"
        )

    def scrapy_overrides(self) -> dict[str, Any]:
        """Scrapy settings this configuration sets (on top of ``crawler.settings``)."""
        import crawler

        overrides: dict[str, Any] = {
            "DOWNLOAD_DELAY": self.politeness.delay,
            "CONCURRENT_REQUESTS_PER_DOMAIN": self.politeness.concurrency,
            "ROBOTSTXT_OBEY": self.politeness.obey_robots,
            "USER_AGENT": self.user_agent(crawler.__version__),
            "WARC_MAX_SIZE": self.limits.warc_max_size,
            "WACZ_ENABLED": self.wacz,
            "CRAWL_MODE": "auto" if self.incremental.enabled else "full",
            "FULL_PASS_EVERY": self.incremental.full_every,
            "INCREMENTAL_MARGIN_PAGES": self.incremental.margin_pages,
        }
        if self.politeness.operator:
            overrides["WARC_OPERATOR"] = self.politeness.operator
        if self.limits.max_pages:
            # A bound the next run continues from, not Scrapy's CLOSESPIDER_PAGECOUNT,
            # which fails the run and makes the next one start over (crawler.bounds).
            overrides["MAX_PAGES_PER_RUN"] = self.limits.max_pages
        return overrides


def parse_size(value: object, where: str = "size") -> int:
    """Bytes from an integer or a string like ``"1GB"``, ``"500 MB"``, ``"2GiB"``."""
    if isinstance(value, bool):
        raise ConfigError(f'{where} must be a size like 1000000000 or "1GB", got {value!r}')
    if isinstance(value, int):
        if value <= 0:
            raise ConfigError(f"{where} must be positive, got {value}")
        return value
    if isinstance(value, str):
        m = SIZE.match(value)
        if m:
            prefix = (m.group(2) or "").lower()
            base = 1024 if m.group(3) else 1000
            number = float(m.group(1)) * (base ** ("kmgt".index(prefix) + 1) if prefix else 1)
            if number >= 1:
                return int(number)
    raise ConfigError(f'{where} must be a size like 1000000000 or "1GB", got {value!r}')


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL (a farm, a dataset's page)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class _Table:
    """One TOML table being read: typed getters, and unknown keys reported with a hint."""

    def __init__(self, data: dict, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'top level'} must be a table")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any, what: str) -> Any:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(f"{self.key(name)} must be {what}, got {value!r}")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.key(name)} must be {what}, got {value!r}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(name, (int, float), default, "a number")
        if value < minimum:
            raise ConfigError(f"{self.key(name)} must be >= {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name, int, default, "a whole number")
        if value < minimum:
            raise ConfigError(f"{self.key(name)} must be >= {minimum}, got {value!r}")
        return value

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name, str, default, "a string")
        if value is not None and not value.strip():
            raise ConfigError(f"{self.key(name)} must not be empty")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.get(name, list, [], "a list of strings")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{self.key(name)} must be a list of non-empty strings")
        return [v.strip() for v in value]

    def table(self, name: str) -> _Table:
        self.used.add(name)
        return _Table(self.data.get(name, {}), self.key(name))

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                hint = difflib.get_close_matches(name, sorted(self.used), n=1)
                extra = f" (did you mean {self.key(hint[0])!r}?)" if hint else ""
                raise ConfigError(f"unknown key {self.key(name)!r}{extra}")


def _farm(value: object, where: str) -> FarmEntry:
    if isinstance(value, str):
        value = {"url": value}
    table = _Table(value, where)  # type: ignore[arg-type]
    url = table.text("url")
    if url is None:
        raise ConfigError(f"{where}.url is required (the farm root or an autoblog URL)")
    if not is_http_url(url):
        raise ConfigError(f"{where}.url must be an http(s) URL, got {url!r}")
    hidden = table.strings("hidden_autoblogs")
    table.finish()
    return FarmEntry(url=url, hidden_autoblogs=hidden)


def _read(data: dict, source: Path) -> CrawlConfig:
    top = _Table(data, "")
    top.used.add("farms")
    farms_value = data.get("farms")
    if not isinstance(farms_value, list) or not farms_value:
        raise ConfigError(
            "farms is required: at least one [[farms]] table with a url "
            '(or farms = ["https://farm.example/"])'
        )
    farms = [_farm(v, f"farms[{i}]") for i, v in enumerate(farms_value)]
    output = top.text("output")
    if output is None:
        raise ConfigError("output is required (the folder that holds the archive)")
    out_path = Path(output).expanduser()
    if not out_path.is_absolute():
        out_path = (source.parent / out_path).resolve()
    name = top.text("name")
    if name is not None and not NAME.match(name):
        raise ConfigError(f"name must use only letters, digits, '.', '_' and '-', got {name!r}")
    wacz = top.get("wacz", bool, False, "true or false")

    pol = top.table("politeness")
    politeness = Politeness(
        delay=pol.number("delay", 1.0),
        concurrency=pol.integer("concurrency", 1, minimum=1),
        contact=pol.text("contact"),
        operator=pol.text("operator"),
        user_agent=pol.text("user_agent"),
        obey_robots=pol.get("obey_robots", bool, True, "true or false"),
    )
    pol.finish()

    lim = top.table("limits")
    limits = Limits(
        max_pages=lim.integer("max_pages", 0),
        warc_max_size=parse_size(
            lim.get("warc_max_size", (int, str), 1_000_000_000, 'a size like "1GB"'),
            lim.key("warc_max_size"),
        ),
    )
    lim.finish()

    inc = top.table("incremental")
    incremental = Incremental(
        enabled=inc.get("enabled", bool, True, "true or false"),
        margin_pages=inc.integer("margin_pages", 1),
        full_every=inc.integer("full_every", 0),
    )
    inc.finish()
    clu = top.table("cluster")
    cluster = Cluster(redis=clu.text("redis"), crawl_id=clu.text("crawl_id"))
    clu.finish()
    dat = top.table("dataset")
    defaults = DatasetInfo()
    dataset = DatasetInfo(
        title=dat.text("title", defaults.title) or defaults.title,
        license=dat.text("license", defaults.license) or defaults.license,
        url=dat.text("url"),
    )
    if dataset.url is not None and not is_http_url(dataset.url):
        raise ConfigError(f"dataset.url must be an http(s) URL, got {dataset.url!r}")
    dat.finish()
    top.finish()
    return CrawlConfig(
        farms=farms,
        output=out_path,
        name=name,
        wacz=wacz,
        politeness=politeness,
        limits=limits,
        incremental=incremental,
        source=source,
        cluster=cluster,
        dataset=dataset,
    )


def load_config(path: str | Path) -> CrawlConfig:
    """Read and check a TOML configuration; :class:`ConfigError` names the file and key."""
    source = Path(path)
    try:
        with open(source, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    try:
        return _read(data, source.resolve())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def command_config(path: str | Path) -> CrawlConfig:
    """:func:`load_config` for a command's ``--config``: a problem is bad usage, one line
    and exit 4 (:class:`crawler.exitcodes.UsageError`)."""
    from crawler.exitcodes import UsageError

    try:
        return load_config(path)
    except (ConfigError, OSError) as exc:
        raise UsageError(f"configuration error: {exc}") from None
