"""The project deploys to a real Scrapyd (loopback) with ``scrapyd-deploy`` and its
spider runs there with the arguments of ``scrapy crawl``: WARCs, indexes, ``verify``."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from support import BIN, free_port, run_cli, wait_for

from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def _call(url: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data else None
    with urllib.request.urlopen(url, data=body, timeout=30) as answer:
        return json.loads(answer.read())


def _answers(url: str) -> bool:
    try:
        _call(url)
    except OSError:
        return False
    return True


def _finished(api: str, job: str) -> bool:
    jobs = _call(api + "listjobs.json?project=autoblog_archive")
    return any(j["id"] == job for j in jobs["finished"])


def test_deploy_to_scrapyd_and_crawl_there(tmp_path):
    port = free_port()
    (tmp_path / "scrapyd.conf").write_text(
        f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\nmax_proc = 1\n"
        f"eggs_dir = {tmp_path}/eggs\nlogs_dir = {tmp_path}/logs\ndbs_dir = {tmp_path}/dbs\n"
        "items_dir =\n"
    )
    # The deploy target as an operator writes it, in ~/.scrapy.cfg (HOME here).
    (tmp_path / ".scrapy.cfg").write_text(
        f"[deploy:test]\nurl = http://127.0.0.1:{port}/\nproject = autoblog_archive\n"
    )
    server = subprocess.Popen(
        [str(BIN / "scrapyd")], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    api = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: _answers(api + "daemonstatus.json"), "Scrapyd answers", server)
        deploy = subprocess.run(
            [str(BIN / "scrapyd-deploy"), "test"],
            cwd=ROOT,
            env={"HOME": str(tmp_path), "PATH": str(BIN) + ":/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert "autoblog" in _call(api + "listspiders.json?project=autoblog_archive")["spiders"]
        out = tmp_path / "out"
        with start_farm(autoblogs=1, articles=4, seed=4) as farm:
            fast = ["DOWNLOAD_DELAY=0", "AUTOTHROTTLE_ENABLED=False"]
            settings = [f"OUTPUT_DIR={out}", "CRAWL_NAME=s", *fast]
            job = _call(
                api + "schedule.json",
                {"project": "autoblog_archive", "spider": "autoblog", "url": farm.url,
                 "setting": settings},
            )["jobid"]  # fmt: skip
            wait_for(lambda: _finished(api, job), "the job finished", server, timeout=300)
        verify = run_cli("verify", str(out))
        assert verify.returncode == 0, verify.stdout[-2000:]
        assert list((out / "collections" / "s" / "archive").glob("*.warc.gz"))
        assert (out / "corpus").is_dir() and (out / "history.sqlite").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
