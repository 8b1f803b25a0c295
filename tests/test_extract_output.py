"""Where ``extract`` and ``package`` write, through the real command line: refusals, one
corpus per folder, a full disk, what a manifest lists, and the operator's smaller
mishaps (``verify FILE``, temporary logs, stray log lines).

Each test checks the exit code, the message, and what the folder holds afterwards.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import IS_ROOT, crawl, hold_in_subprocess, run_cli, tmpfs, tree

from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crawl_out(tmp_path_factory) -> Iterator[Path]:
    """A finished crawl (read it, never write it: copy it first)."""
    out = tmp_path_factory.mktemp("extract-output") / "out"
    with start_farm(autoblogs=2, articles=15, engine=["0.3.4", "0.2"], seed=3) as farm:
        result = run_cli("crawl", farm.url, "-o", str(out), "--name", "f", "--fast")
    assert result.returncode == EXIT_OK, result.stdout[-2000:] + result.stderr[-2000:]
    yield out


def copy_of(crawl: Path, where: Path) -> Path:
    shutil.copytree(crawl, where, symlinks=True)
    return where


def records_in(folder: Path) -> list[bytes]:
    """Every record line of every shard below ``folder``."""
    return [
        line
        for shard in sorted(folder.rglob("part-*.jsonl.gz"))
        for line in gzip.decompress(shard.read_bytes()).splitlines()
    ]


def extract(*args: str) -> subprocess.CompletedProcess:
    return run_cli("extract", *args, "--workers", "1")


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- one corpus per folder


def test_extract_refuses_a_crawl_folder_and_force_replaces_its_corpus_whole(crawl_out, tmp_path):
    out = copy_of(crawl_out, tmp_path / "out")
    crawl_records = records_in(out / "corpus")
    before = tree(out)

    refused = extract(str(out), "-o", str(out))
    assert refused.returncode == EXIT_USAGE, refused.stdout + refused.stderr
    assert "is a crawl's output folder" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert tree(out) == before

    forced = extract(str(out), "-o", str(out), "--force")
    assert forced.returncode == EXIT_OK, forced.stdout + forced.stderr
    # The crawl's corpus/run-00001/ is gone: the folder holds one corpus, extract's.
    shards = sorted(p.relative_to(out).as_posix() for p in (out / "corpus").rglob("*.gz"))
    assert shards == ["corpus/part-00000.jsonl.gz"]
    assert sorted(records_in(out / "corpus")) == sorted(crawl_records)
    assert not [p for p in out.iterdir() if p.name.startswith(".corpus-")]

    packaged = run_cli("package", str(out), "--no-parquet")
    assert packaged.returncode == EXIT_OK, packaged.stderr
    assert packaged.stdout.startswith(f"{len(crawl_records)} records,"), packaged.stdout


def test_extract_refuses_a_folder_holding_a_corpus_unless_forced(crawl_out, tmp_path):
    target = tmp_path / "rebuilt"
    first = extract(str(crawl_out), "-o", str(target))
    assert first.returncode == EXIT_OK, first.stderr
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}

    again = extract(str(crawl_out), "-o", str(target))
    assert again.returncode == EXIT_USAGE
    assert f"output {target} already holds a corpus" in again.stderr
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before

    forced = extract(str(crawl_out), "-o", str(target), "--force")
    assert forced.returncode == EXIT_OK, forced.stderr
    # The same files (new bytes: new record ids), no second corpus beside the first.
    assert sorted(p for p in target.rglob("*") if p.is_file()) == sorted(before)


def test_package_refuses_two_corpora_of_the_same_captures(crawl_out, tmp_path):
    """A folder an older ``extract`` wrote into beside the crawl's corpus: packaging it
    would count every article twice."""
    out = copy_of(crawl_out, tmp_path / "out")
    rebuilt = extract(str(crawl_out), "-o", str(tmp_path / "rebuilt"))
    assert rebuilt.returncode == EXIT_OK, rebuilt.stderr
    shutil.copy(tmp_path / "rebuilt" / "corpus" / "part-00000.jsonl.gz", out / "corpus")
    before = tree(out)
    packaged = run_cli("package", str(out), "--no-parquet")
    assert packaged.returncode == EXIT_USAGE, packaged.stdout + packaged.stderr
    assert "is in the corpus twice" in packaged.stderr and "--force" in packaged.stderr
    assert tree(out) == before  # nothing written


def test_extract_into_a_file_is_bad_usage(crawl_out, tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    result = extract(str(crawl_out), "-o", str(target))
    assert result.returncode == EXIT_USAGE, result.stderr
    assert f"output {target} exists and is not a folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_text() == "keep me"


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only filesystem needs root")
def test_extract_into_a_read_only_folder_is_bad_usage(crawl_out, tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        result = extract(str(crawl_out), "-o", str(ro))
        assert os.listdir(ro) == []
    assert result.returncode == EXIT_USAGE, result.stderr
    assert f"output {ro}: {ro} is not writable" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- a full disk


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but for about ``leave`` bytes."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small filesystem needs root")
def test_extract_on_a_full_disk_says_so_once_and_keeps_the_old_corpus(crawl_out, tmp_path):
    with tmpfs(tmp_path / "disk", "size=4m") as disk:
        target = disk / "rebuilt"
        assert extract(str(crawl_out), "-o", str(target)).returncode == EXIT_OK
        old = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
        filler = fill(disk, leave=16384)

        full = extract(str(crawl_out), "-o", str(target), "--force")
        assert full.returncode == EXIT_FAILED, full.stdout + full.stderr
        line = one_line(full)
        assert "No space left on device" in line and "free space and run the same" in line
        assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == old
        assert sorted(p.name for p in target.iterdir()) == [".lock", "corpus"]  # nothing new

        filler.unlink()
        again = extract(str(crawl_out), "-o", str(target), "--force")
        assert again.returncode == EXIT_OK, again.stdout + again.stderr
        assert records_in(target / "corpus") == records_in(crawl_out / "corpus")


# ---------------------------------------------------------------- smaller things


def test_extract_prints_its_own_lines_only(crawl_out, tmp_path):
    result = extract(str(crawl_out), "-o", str(tmp_path / "x"))
    assert result.returncode == EXIT_OK
    assert one_line(result).endswith(f"-> {tmp_path / 'x'}/corpus/")


def test_verify_a_file(crawl_out, tmp_path):
    warc = next((crawl_out / "collections" / "f" / "archive").glob("*.warc.gz"))
    checked = run_cli("verify", str(warc))
    assert checked.returncode == EXIT_OK, checked.stdout
    assert checked.stdout.startswith("OK: 1 WARC files, ")
    damaged = tmp_path / warc.name
    damaged.write_bytes(warc.read_bytes()[:-200])
    assert run_cli("verify", str(damaged)).returncode == 1
    other = crawl_out / "pages.jsonl"
    refused = run_cli("verify", str(other))
    assert refused.returncode == EXIT_USAGE
    assert f"{other} is a file, not an output folder" in refused.stderr
    assert "no such folder" not in refused.stderr


def test_reading_commands_leave_no_sqlite_side_files(crawl_out, tmp_path):
    """A crawl leaves its history as one file; verify and report read it and add nothing."""
    out = copy_of(crawl_out, tmp_path / "out")
    before = tree(out)
    assert not [p for p in before if str(p).endswith(("-wal", "-shm"))], before
    for command in ("verify", "report"):
        done = run_cli(command, str(out))
        assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert tree(out) == before


def test_manifest_lists_no_lock_and_no_sqlite_side_files(crawl_out, tmp_path):
    out = copy_of(crawl_out, tmp_path / "out")
    assert (out / ".lock").exists()  # every crawl leaves it (empty once released)
    reader = sqlite3.connect(out / "history.sqlite")  # WAL: -wal and -shm while open
    reader.execute("SELECT COUNT(*) FROM runs").fetchone()
    assert (out / "history.sqlite-wal").exists() and (out / "history.sqlite-shm").exists()
    packaged = run_cli("package", str(out), "--no-parquet")
    reader.close()
    assert packaged.returncode == EXIT_OK, packaged.stderr
    listed = (out / "MANIFEST.sha256").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in listed]
    assert ".lock" not in names and not [n for n in names if n.endswith(("-wal", "-shm"))]
    assert "history.sqlite" in names and "README.md" in names
    check = subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=out,
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def crawl_with_tmpdir(tmpdir: Path, url: str, out: Path) -> subprocess.CompletedProcess:
    return crawl(url, out, env=dict(os.environ, TMPDIR=str(tmpdir)))


def test_no_log_is_left_in_the_temporary_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    dead = crawl_with_tmpdir(scratch, "http://127.0.0.1:9/", tmp_path / "dead")
    assert dead.returncode == EXIT_FAILED and "nothing was captured" in dead.stderr
    assert "Log: " not in dead.stdout + dead.stderr
    assert os.listdir(scratch) == []

    busy = tmp_path / "busy"
    holder = hold_in_subprocess(busy)
    try:
        locked = crawl_with_tmpdir(scratch, "http://127.0.0.1:9/", busy)
    finally:
        holder.terminate()
        holder.wait()
    assert locked.returncode == EXIT_LOCKED, locked.stderr
    assert os.listdir(scratch) == []
