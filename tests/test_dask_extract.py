"""``extract --dask``: the corpus rebuilt on a real Dask LocalCluster equals the
single-process ``extract``'s, and a killed job resumes from the parts it finished."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
from pathlib import Path

import pytest
from support import BIN, run_cli, wait_for

from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dask-crawl")
    with start_farm(autoblogs=3, articles=12, seed=2) as farm:
        result = run_cli("crawl", farm.url, "-o", str(out), "--name", "d", "--fast",
                         "--warc-max-size", "40000")  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
    archive = out / "collections" / "d" / "archive"
    assert len(list(archive.glob("*.warc.gz"))) >= 6
    return archive


def corpus_bytes(folder: Path) -> list[bytes]:
    shards = sorted((folder / "corpus").glob("part-*.jsonl.gz"))
    return [gzip.decompress(p.read_bytes()) for p in shards]


def test_dask_local_cluster_gives_the_single_process_corpus_and_resumes(archive, tmp_path):
    single = run_cli("extract", str(archive), "-o", str(tmp_path / "single"), "--workers", "2")
    assert single.returncode == 0, single.stderr[-2000:]
    out = tmp_path / "dask"
    cmd = [str(BIN / "autoblog-archive"), "extract", str(archive), "-o", str(out),
           "--dask", "local", "--workers", "2"]  # fmt: skip
    job = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    parts = out / "corpus-parts"
    wait_for(lambda: list(parts.glob("*.pages.gz")), "a part finished", job)
    os.killpg(job.pid, signal.SIGKILL)  # the job, its LocalCluster and its workers
    job.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.pages.gz")}
    assert done_before, "no part finished"
    resumed = run_cli(*cmd[1:])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    files = len(list(archive.glob("*.warc.gz")))
    assert f"({files - len(done_before)} extracted now" in resumed.stdout, resumed.stdout
    for name, mtime in done_before.items():
        assert (parts / name).stat().st_mtime_ns == mtime  # not extracted again
    assert corpus_bytes(out) == corpus_bytes(tmp_path / "single") != []
