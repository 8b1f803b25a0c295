"""The operator's view: exit codes, messages and the folder left behind, through the real CLI.

Scheduled preservation means nobody watches the run. Each test plays one of a new
user's or a cron job's mishaps and checks the three things an operator gets: the exit
code, the last lines printed, and the output folder afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from support import (
    BIN,
    IS_ROOT,
    archived_paths,
    crawl,
    crawl_process,
    free_port,
    hold_in_subprocess,
    needs_pywb,
    path_of,
    permalinks,
    port_is_free,
    run_cli,
    tmpfs,
    tree,
    wait_for,
    wait_for_requests,
)

from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


def requested(farm, since: int = 0) -> list[str]:
    return [unquote(r["path"]) for r in farm.requests()[since:]]


@pytest.fixture(scope="module")
def small_farm() -> Iterator:
    with start_farm(autoblogs=2, articles=15, engine=["0.3.4", "0.2"], seed=3) as farm:
        yield farm


@pytest.fixture(scope="module")
def small_crawl(small_farm, tmp_path_factory) -> dict:
    """A crawl of ``small_farm`` into a folder a crawl of a dead URL was pointed at first
    (read it, never write it: copy it first; even verify leaves files beside the history)."""
    out = tmp_path_factory.mktemp("small") / "out"
    dead = crawl(f"http://127.0.0.1:{free_port()}/", out)
    out_after_dead = out.exists()
    good = crawl(small_farm.url, out)
    return {"out": out, "dead": dead, "out_after_dead": out_after_dead, "good": good}


def copy_of(folder: Path, where: Path) -> Path:
    shutil.copytree(folder, where, symlinks=True)
    return where


# ---------------------------------------------------------------- exit codes, usage


def test_help_lists_the_exit_codes_and_version_answers():
    result = run_cli("crawl", "--help")
    assert result.returncode == 0
    for line in ("0  complete", "1  partial", "2  failed or interrupted", "3  another run",
                 "4  bad usage"):  # fmt: skip
        assert line in result.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("autoblog-archive 0.")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "DOWNLOAD_DELAY"], "expected NAME=VALUE"),
        (["--set", "DOWNLOAD_DELAY=abc"], "DOWNLOAD_DELAY takes a number (default"),
        (["--set", "CONCURRENT_REQUESTS=many"], "CONCURRENT_REQUESTS takes an integer (default"),
        (["--set", "ROBOTSTXT_OBEY=maybe"], "ROBOTSTXT_OBEY takes true or false (default"),
        (["--set", "DOWNLAOD_DELAY=2"], "did you mean DOWNLOAD_DELAY"),
        (["--bogus-option"], "unrecognized arguments"),
    ],
)
def test_bad_usage_exits_4_before_writing_anything(tmp_path, args, message):
    out = tmp_path / "out"
    result = crawl("http://127.0.0.1:9/", out, *args)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_output_that_is_a_file_or_not_a_url(tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    result = crawl("http://127.0.0.1:9/", target)
    assert result.returncode == EXIT_USAGE
    assert "exists and is not a folder" in result.stderr and "Traceback" not in result.stderr
    assert target.read_text() == "keep me"
    result = crawl("ftp://example.org/", tmp_path / "o")
    assert result.returncode == EXIT_USAGE and "not an http(s) URL" in result.stderr


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only filesystem needs root")
def test_read_only_output_is_bad_usage(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        result = crawl("http://127.0.0.1:9/", ro / "out")
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "is not writable" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    result = crawl("http://127.0.0.1:9/", target, "--debug")
    assert "Traceback" in result.stderr and "UsageError" in result.stderr


def test_missing_paths_are_named(tmp_path):
    missing = tmp_path / "nosuchdir"
    for command in ("verify", "report", "package", "replay"):
        result = run_cli(command, str(missing))
        assert result.returncode == EXIT_USAGE, (command, result.stderr)
        assert "no such folder" in result.stderr, command
    result = run_cli("extract", str(missing), "-o", str(tmp_path / "x"))
    assert result.returncode == EXIT_USAGE and "no such file or folder" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("report", str(empty))
    assert result.returncode == EXIT_USAGE and "no crawl here yet" in result.stderr
    assert "reindex" not in result.stderr  # it would fail: there is nothing to rebuild from
    result = run_cli("replay", str(empty))
    assert result.returncode == EXIT_USAGE and "no collection to replay" in result.stderr


# ---------------------------------------------------------------- dead URLs and folders


def test_dead_url_leaves_no_folder_and_does_not_poison_the_next_run(small_crawl, tmp_path):
    dead, good = small_crawl["dead"], small_crawl["good"]
    assert dead.returncode == EXIT_FAILED
    assert "nothing was captured" in dead.stderr and "Connection" in dead.stderr
    assert "the output folder was left as it was" in dead.stderr
    assert not small_crawl["out_after_dead"]
    assert good.returncode == EXIT_OK, good.stderr[-2000:]
    assert "Run 1 (full): complete" in good.stdout
    # verify leaves SQLite's side files beside the history: on a copy.
    assert run_cli("verify", str(copy_of(small_crawl["out"], tmp_path / "out"))).returncode == 0


def test_dead_url_into_an_existing_crawl_changes_nothing(tmp_path, small_crawl):
    out = copy_of(small_crawl["out"], tmp_path / "out")
    before = tree(out)
    dead = crawl(f"http://127.0.0.1:{free_port()}/", out, "--name", "other")
    assert dead.returncode == EXIT_FAILED
    after = tree(out)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != "history.sqlite"} == {
        k: v for k, v in before.items() if k != "history.sqlite"
    }
    with sqlite3.connect(out / "history.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_second_run_on_a_busy_folder_exits_3(tmp_path):
    holder = hold_in_subprocess(tmp_path)
    try:
        result = crawl("http://127.0.0.1:9/", tmp_path)
    finally:
        holder.terminate()
        holder.wait()
    assert result.returncode == EXIT_LOCKED
    assert f"pid {holder.pid}" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- the history is not trusted


def _grow_and_recrawl(farm, out: Path) -> tuple[subprocess.CompletedProcess, list[str], list]:
    new = farm.grow(n=2)["articles"]
    since = len(farm.requests())
    result = crawl(farm.url, out)
    return result, requested(farm, since), new


@pytest.mark.parametrize("damage", ["deleted", "emptied", "garbage"])
def test_lost_or_corrupt_history_is_rebuilt_from_the_warcs(tmp_path, damage):
    out = tmp_path / "out"
    with start_farm(autoblogs=2, articles=12, engine=["0.3.4", "0.3.0"], seed=5) as farm:
        assert crawl(farm.url, out).returncode == EXIT_OK
        history = out / "history.sqlite"
        if damage == "deleted":
            history.unlink()
        elif damage == "emptied":
            history.write_bytes(b"")
        else:
            history.write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
        result, fetched, new = _grow_and_recrawl(farm, out)
    assert result.returncode == EXIT_OK, result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    log = Path(next(line.split(": ", 1)[1] for line in result.stdout.splitlines()
                    if line.startswith("Log: ")))  # fmt: skip
    assert "history.sqlite was" in log.read_text() and "rebuilt from" in log.read_text()
    # Whether the lost history's runs had finished is unknown: a full pass, never a gap.
    assert "Run 2 (full)" in result.stdout
    for article in new:  # the new articles were really fetched, not "served from the archive"
        assert path_of(article["permalink"]) in fetched, article["permalink"]
    if damage == "garbage":
        assert list(out.glob("history.sqlite.damaged-*")), "the unreadable file is kept aside"
    assert run_cli("verify", str(out)).returncode == 0


def _warcs(out: Path) -> list[Path]:
    return sorted((out / "collections" / "f" / "archive").glob("*.warc.gz"))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "bad index line"])
def test_lost_captures_are_fetched_again_and_verify_sees_them(tmp_path, damage):
    out = tmp_path / "out"
    with start_farm(autoblogs=2, articles=20, engine=["0.3.4", "0.2"], seed=7) as farm:
        first = crawl(farm.url, out, "--warc-max-size", "60000")
        assert first.returncode == EXIT_OK
        files = _warcs(out)
        assert len(files) >= 3
        victim = files[1]
        if damage == "deleted":
            victim.unlink()
        elif damage == "truncated":
            os.truncate(victim, victim.stat().st_size // 2)
        else:
            cdxj = out / "collections" / "f" / "indexes" / "index.cdxj"
            lines = cdxj.read_text().splitlines(keepends=True)
            lines[len(lines) // 2] = "garbage that is not a cdxj line\n"
            cdxj.write_text("".join(lines))
        if damage != "bad index line":
            check = run_cli("verify", str(out))
            assert check.returncode != 0
            assert "history.sqlite" in check.stdout and "captures it lists are missing" in (
                check.stdout
            )
        since = len(farm.requests())
        again = crawl(farm.url, out, "--warc-max-size", "60000")
        fetched = set(requested(farm, since))
        expected = permalinks(farm)
    assert again.returncode == EXIT_OK, again.stdout + again.stderr[-3000:]
    assert "Traceback" not in again.stdout + again.stderr
    verify = run_cli("verify", str(out))
    assert verify.returncode == 0, verify.stdout[-3000:]
    # Every article is in the archive again, whatever was lost.
    assert expected - archived_paths(out) == set()
    if damage != "bad index line":
        assert fetched & expected, "lost permalinks must be fetched again"


# ---------------------------------------------------------------- a full disk


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small filesystem needs root")
def test_full_disk_stops_once_with_one_message_and_resumes(tmp_path):
    with tmpfs(tmp_path / "disk", "size=400k") as disk:
        out = disk / "out"
        with start_farm(autoblogs=2, articles=60, engine=["0.3.4", "0.2"], seed=9) as farm:
            full = crawl(farm.url, out, "--warc-max-size", "50000")
            assert full.returncode == EXIT_FAILED, full.stdout + full.stderr[-2000:]
            text = full.stdout + full.stderr
            assert "Traceback" not in text
            assert text.count("No space left on device") == 1, text[-3000:]
            assert "free space and run the same command again" in text
            # More room: the same command finishes the job, nothing lost.
            subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
            again = crawl(farm.url, out, "--warc-max-size", "50000")
            assert again.returncode == EXIT_OK, again.stdout + again.stderr[-3000:]
            expected = permalinks(farm)
        verify = run_cli("verify", str(out))
        assert verify.returncode == 0, verify.stdout[-2000:]
        assert expected <= archived_paths(out)


# ---------------------------------------------------------------- interrupted runs


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_says_how_to_resume_and_the_same_command_does(tmp_path, presses):
    """Once: a graceful stop. Twice: Scrapy's unclean shutdown. Both end the same way."""
    out, log = tmp_path / "out", tmp_path / "crawl.log"
    with start_farm(autoblogs=2, articles=40, engine=["0.3.4"], latency=30) as farm:
        proc = crawl_process(farm.url, out, "--log-file", str(log))
        wait_for_requests(farm, 20, proc)
        proc.send_signal(signal.SIGINT)
        if presses == 2:  # the second press once the first one is being handled
            wait_for(lambda: "shutting down gracefully" in log.read_text(), "a stop", proc)
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        again = crawl(farm.url, out, "--log-file", str(log))
        expected = permalinks(farm)
    text = stdout + stderr
    assert proc.returncode == EXIT_FAILED, text[-2000:]
    assert "interrupted: run the same command again to resume" in text
    verdict = next(line for line in text.splitlines() if line.startswith("Run "))
    assert "None" not in verdict and "unknown" not in verdict, verdict
    if presses == 1:  # a forced (second) stop may leave a dying worker's complaint on stderr
        assert "Traceback" not in text
    assert again.returncode == EXIT_OK, again.stdout + again.stderr[-2000:]
    assert "Run 1 (full, resumed): complete" in again.stdout
    assert run_cli("verify", str(out)).returncode == 0
    assert expected <= archived_paths(out)


def test_extract_and_package_find_their_input(tmp_path, small_crawl):
    out = copy_of(small_crawl["out"], tmp_path / "out")
    rebuilt = run_cli("extract", str(out), "-o", str(tmp_path / "rebuilt"), "--workers", "1")
    assert rebuilt.returncode == EXIT_OK, rebuilt.stdout + rebuilt.stderr[-2000:]
    assert " 0 records" not in rebuilt.stdout
    packaged = run_cli("package", str(out), "--no-parquet")
    assert packaged.returncode == EXIT_OK, packaged.stderr
    assert "corpus/run-NNNNN/part-" in (out / "README.md").read_text()
    not_warc = tmp_path / "notes.warc.gz"
    not_warc.write_text("not a WARC file at all")
    bad = run_cli("extract", str(not_warc), "-o", str(tmp_path / "x"))
    assert bad.returncode == EXIT_FAILED, bad.stdout + bad.stderr
    assert "notes.warc.gz" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


# ---------------------------------------------------------------- quiet output, demo


def test_demo_is_quiet_consistent_and_never_deletes_foreign_folders(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    refused = run_cli("demo", "-o", str(foreign))
    assert refused.returncode == EXIT_USAGE and "did not write" in refused.stderr
    assert (foreign / "thesis.tex").read_text() == "years of work"

    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out), "--autoblogs", "3", "--articles", "8")
    assert result.returncode == EXIT_OK, result.stdout[-2000:] + result.stderr[-2000:]
    assert (out / "demo.wacz").exists()
    assert list((out / "collections" / "demo" / "archive").glob("*.warc.gz"))
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    text = "\n".join(lines)
    assert "Verify: OK" in text and "more new articles" not in text
    assert "Scrapy" not in text and "'downloader/" not in text  # the log went to a file
    assert list((out / "logs").glob("crawl-*.log"))
    # The crawl's own counts agree with verify's.
    records = next(line for line in lines if line.startswith("WARC: "))
    verified = next(line for line in lines if line.startswith("Verify: OK"))
    count = records.split(" records")[0].rsplit(" ", 1)[1]
    assert f"{count} records" in verified, (records, verified)
    assert "replay" in text and str(out.resolve()) in text
    again = run_cli("demo", "-o", str(out), "--autoblogs", "2", "--articles", "5")
    assert again.returncode == EXIT_OK  # its own earlier output: replaced


# ---------------------------------------------------------------- replay


@needs_pywb
def test_replay_fails_loudly_and_stops_with_its_parent(small_crawl):
    out = small_crawl["out"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli("replay", str(out), "--port", str(port))
    assert taken.returncode == EXIT_USAGE and f"port {port} is not free" in taken.stderr

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "autoblog-archive"), "replay", str(out), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "pywb is replaying" in first, first + proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert port_is_free(port)  # pywb went with it: nothing listens there any more


def test_scrapy_log_goes_to_a_file_unless_verbose(tmp_path, small_farm, small_crawl):
    quiet = small_crawl["good"]
    assert "[scrapy" not in quiet.stderr and "INFO" not in quiet.stderr
    loud = crawl(small_farm.url, tmp_path / "b", "--verbose")
    assert "[scrapy" in loud.stderr
    custom = tmp_path / "my.log"
    crawl(small_farm.url, tmp_path / "c", "--log-file", str(custom))
    assert "Spider closed" in custom.read_text()
