"""The TOML configuration: the shipped example loads, and mistakes name their key."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import default_context

import crawler
from crawler import exitcodes
from crawler.config import ConfigError, load_config, parse_size

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "autoblog-archive.toml"

MINIMAL = """
output = "archive"
farms = ["http://farm.test/"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crawl.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.name == "autoblog-example"
    assert cfg.output == Path("/var/lib/autoblog-archive/example")
    assert cfg.urls == [
        "https://autoblog.example.org/",
        "https://other-farm.example.net/autoblogs/some-blog/",
    ]
    assert cfg.hidden_autoblogs == ["old-blog.disabled"]
    assert cfg.politeness.delay == 1.0 and cfg.politeness.concurrency == 1
    assert cfg.limits.warc_max_size == 1_000_000_000
    assert cfg.incremental.full_every == 24 and cfg.incremental.margin_pages == 1
    overrides = cfg.scrapy_overrides()
    assert overrides["DOWNLOAD_DELAY"] == 1.0
    assert overrides["WARC_OPERATOR"] == "Example Library, digital preservation team"
    assert "mailto:archives@example.org" in overrides["USER_AGENT"]
    assert crawler.__version__ in overrides["USER_AGENT"]
    assert "MAX_PAGES_PER_RUN" not in overrides
    assert cfg.dataset.license == "CC-BY-4.0"
    assert cfg.dataset.url == "https://data.example.org/autoblogs/"


def test_minimal_config_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.output == (tmp_path / "archive").resolve()  # relative to the file
    assert cfg.name is None and cfg.wacz is False
    assert cfg.incremental.enabled and cfg.incremental.full_every == 0
    assert cfg.limits.max_pages == 0
    assert cfg.politeness.obey_robots is True
    assert cfg.dataset.license == "unknown: see each source" and cfg.dataset.url is None


def test_full_pass_schedule():
    from crawler.config import Incremental

    every3 = Incremental(full_every=3)
    assert [every3.full_pass_due(n) for n in range(4)] == [False, False, True, True]
    assert Incremental(full_every=0).full_pass_due(100) is False
    assert Incremental(enabled=False).full_pass_due(0) is True


@pytest.mark.parametrize(
    "text, message",
    [
        ('output = "a"', "farms is required"),
        ('farms = ["http://f/"]', "output is required"),
        ('output = "a"\nfarms = ["ftp://f/"]', "farms[0].url must be an http(s) URL"),
        ('output = "a"\n[[farms]]\nhidden_autoblogs = ["x"]', "farms[0].url is required"),
        (MINIMAL + "[politeness]\ndelay = -1", "politeness.delay must be >= 0"),
        (MINIMAL + '[politeness]\ndelay = "fast"', "politeness.delay must be a number"),
        (MINIMAL + "[politeness]\nconcurrency = 0", "politeness.concurrency must be >= 1"),
        (MINIMAL + "[politeness]\nconcurrency = 1.5", "politeness.concurrency must be a whole"),
        (MINIMAL + "[politness]\ndelay = 1", "unknown key 'politness' (did you mean 'politeness'"),
        (MINIMAL + "[limits]\nmax_page = 5", "unknown key 'limits.max_page'"),
        (MINIMAL + '[limits]\nwarc_max_size = "big"', "limits.warc_max_size must be a size"),
        (MINIMAL + "[incremental]\nenabled = 1", "incremental.enabled must be true or false"),
        (MINIMAL + "[incremental]\nmargin_pages = -2", "incremental.margin_pages must be >= 0"),
        (MINIMAL + 'name = "a b"', "name must use only letters"),
        (MINIMAL + "wacz = 'yes'", "wacz must be true or false"),
        ('output = "a"\n[[farms]]\nurl = "http://f/"\nhidden = ["x"]', "farms[0].hidden"),
        ('output = "a"\nfarms = [', "not valid TOML"),
        (MINIMAL + '[dataset]\nlicense = ""', "dataset.license must not be empty"),
        (MINIMAL + '[dataset]\nurl = "data/"', "dataset.url must be an http(s) URL"),
        (MINIMAL + '[dataset]\nlicence = "x"', "unknown key 'dataset.licence'"),
    ],
)
def test_errors_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")


def test_sizes():
    assert parse_size("1GB") == 1_000_000_000
    assert parse_size("500 MB") == 500_000_000
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size("1.5k") == 1500
    assert parse_size(1234) == 1234
    for bad in ("0", "-1GB", "lots", True, 0, "5i"):
        with pytest.raises(ConfigError):
            parse_size(bad)


def test_max_pages_becomes_a_resumable_bound(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL + "[limits]\nmax_pages = 50"))
    assert cfg.scrapy_overrides()["MAX_PAGES_PER_RUN"] == 50
    assert "CLOSESPIDER_PAGECOUNT" not in cfg.scrapy_overrides()


def test_exit_codes_are_distinct_and_stable():
    assert (exitcodes.EXIT_OK, exitcodes.EXIT_PARTIAL, exitcodes.EXIT_FAILED) == (0, 1, 2)
    assert exitcodes.EXIT_LOCKED == 3
    assert exitcodes.EXIT_USAGE == 4


def test_cluster_table_of_the_config_file(tmp_path):
    from crawler.config import ConfigError, load_config

    path = tmp_path / "farm.toml"
    path.write_text(
        'farms = ["https://farm.example/"]\noutput = "out"\n'
        '[cluster]\nredis = "redis://10.0.0.5:6379/0"\ncrawl_id = "farm"\n'
    )
    assert load_config(path).cluster.redis == "redis://10.0.0.5:6379/0"
    path.write_text('farms = ["https://farm.example/"]\noutput = "o"\n[cluster]\nredis_url = "x"\n')
    with pytest.raises(ConfigError, match="cluster.redis_url"):
        load_config(path)


def test_redacted_url():
    from crawler.redact import redacted_command, redacted_url

    assert redacted_url("redis://:pw@10.0.0.5:6379/0") == "redis://***@10.0.0.5:6379/0"
    assert redacted_url("rediss://user:pw@h:6380/1") == "rediss://***@h:6380/1"
    assert redacted_url("redis://h/0?password=pw&db=1") == "redis://h/0?password=***&db=***"
    assert redacted_url("redis://:p@w@h/0") == "redis://***@h/0"
    assert redacted_url("redis://:p/w@h/0") == "redis://***"  # an unescaped / in a password
    assert redacted_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redacted_url("https://farm.example/a?b=c") == "https://farm.example/a?b=c"
    argv = ["worker", "--redis=redis://:pw@h/0", "--set", "X=rediss://u:pw@h", "http://f/"]
    assert redacted_command(argv) == (
        "worker --redis=redis://***@h/0 --set X=rediss://***@h http://f/"
    )


def test_default_bounds_exist_and_can_be_raised():
    defaults = default_context().bounds  # read from the settings, as every component does

    assert defaults.pages_per_run > 0 and defaults.pages_per_autoblog > 0
    assert defaults.links_per_page > 0 and defaults.url_length > 0
    assert 0 < defaults.read_limit <= 256 * 1024 * 1024
