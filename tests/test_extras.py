"""The ``cluster`` extra: without it the scale-out commands say so in one line (exit 4),
and a plain crawl never imports what it holds (Redis, scrapy-redis, Dask)."""

from __future__ import annotations

import os
import sys

import pytest
from support import run_cli

from crawler.cli import main
from crawler.exitcodes import EXIT_USAGE
from crawler.samplefarm import start_farm

CLUSTER_MODULES = ("redis", "scrapy_redis", "dask", "distributed")
INSTALL = "pip install 'autoblog-archive[cluster]'"
REDIS = ["--redis", "redis://127.0.0.1:6379/0", "--crawl-id", "c"]


def scale_out_commands(tmp: str) -> list[tuple[str, list[str]]]:
    """(the module left out, a command that needs it), for every scale-out command."""
    return [
        ("redis", ["seed", "http://127.0.0.1:9/", *REDIS]),
        ("scrapy_redis", ["seed", "http://127.0.0.1:9/", *REDIS]),
        ("redis", ["worker", *REDIS, "--output", os.path.join(tmp, "out")]),
        ("scrapy_redis", ["worker", *REDIS, "--output", os.path.join(tmp, "out")]),
        ("redis", ["reconcile", tmp, *REDIS]),
        ("distributed", ["extract", tmp, "-o", os.path.join(tmp, "out"), "--dask", "local"]),
        ("dask", ["extract", tmp, "-o", os.path.join(tmp, "out"), "--dask", "local"]),
    ]


@pytest.mark.parametrize("case", range(len(scale_out_commands(""))))
def test_scale_out_without_the_cluster_extra_is_one_line_and_exit_4(
    case, tmp_path, monkeypatch, capsys
):
    missing, argv = scale_out_commands(str(tmp_path))[case]
    monkeypatch.setenv("PYTHONSAFEPATH", "1")  # what main sets first, restored after
    monkeypatch.setitem(sys.modules, missing, None)  # `import` of it fails: not installed
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"autoblog-archive {argv[0]}: "), err
    assert "needs the cluster extra" in lines[0] and INSTALL in lines[0], err
    assert missing in lines[0] and "Traceback" not in err and out == ""
    assert not (tmp_path / "out").exists()


def test_the_cluster_extra_present_is_not_in_the_way(tmp_path, capsys):
    """Installed (as in `.[test]`), the check passes and the command goes on to its own
    checks: here a missing crawl id, still before Redis is asked anything."""
    assert main(["worker", "--redis", "redis://127.0.0.1:6379/0", "-o", str(tmp_path)]) == 4
    assert "give --redis URL and --crawl-id NAME" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_plain_crawl_never_imports_the_cluster_extra(tmp_path):
    """Every Python process of a crawl (the command, its extraction workers) lists what
    it imports (PYTHONPROFILEIMPORTTIME): Redis, scrapy-redis and Dask are not there."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    with start_farm(autoblogs=1, articles=3, seed=3) as farm:
        result = run_cli("crawl", farm.url, "-o", str(tmp_path / "out"), "--fast", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    top = {name.split(".")[0] for name in imported}
    assert {"crawler", "scrapy", "twisted", "trafilatura"} <= top  # the list is real
    assert "crawler.cli" in imported and "spiders.autoblog" in imported
    assert top.isdisjoint(CLUSTER_MODULES), sorted(top & set(CLUSTER_MODULES))
