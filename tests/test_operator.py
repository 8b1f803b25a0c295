"""The operator's view: exit codes, messages and the folder left behind, through the real CLI.

Scheduled preservation means nobody watches the run. Each test plays one of a new
user's or a cron job's mishaps and checks the three things an operator gets: the exit
code, the last lines printed, and the output folder afterwards.
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import BIN, needs_pywb, run_cli

from crawler.exitcodes import EXIT_FAILED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from crawler.samplefarm import start_farm

IS_ROOT = os.geteuid() == 0


def crawl(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("crawl", url, "-o", str(out), "--name", "f", "--fast", *extra)


def tree(folder: Path) -> dict[str, int]:
    """Every file below ``folder`` with its size: what "left as it was" compares."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def path_of(url: str) -> str:
    """Path and query, percent-decoded: how the farm's log, its truth and WARCs compare."""
    parts = urlsplit(url)
    return unquote(parts.path + (f"?{parts.query}" if parts.query else ""))


def permalinks(farm) -> set[str]:
    blogs = farm.truth()["autoblogs"].values()
    return {path_of(a["permalink"]) for blog in blogs for a in blog["articles"]}


def requested(farm, since: int = 0) -> list[str]:
    return [unquote(r["path"]) for r in farm.requests()[since:]]


def archived(out: Path) -> set[str]:
    from conftest import responses

    return {path_of(uri) for uri, _h, _b in responses(out / "collections" / "f" / "archive")}


@pytest.fixture(scope="module")
def small_farm() -> Iterator:
    with start_farm(autoblogs=2, articles=15, engine=["0.3.4", "0.2"], seed=3) as farm:
        yield farm


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A small filesystem of our own (root only; in CI a failure to mount fails the test)."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs on {folder}")
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


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


def test_dead_url_leaves_no_folder_and_does_not_poison_the_next_run(tmp_path, small_farm):
    out = tmp_path / "out"
    dead = crawl(f"http://127.0.0.1:{closed_port()}/", out)
    assert dead.returncode == EXIT_FAILED
    assert "nothing was captured" in dead.stderr and "Connection" in dead.stderr
    assert "the output folder was left as it was" in dead.stderr
    assert not out.exists()
    good = crawl(small_farm.url, out)
    assert good.returncode == EXIT_OK, good.stderr[-2000:]
    assert "Run 1 (full): complete" in good.stdout
    assert run_cli("verify", str(out)).returncode == 0


def test_dead_url_into_an_existing_crawl_changes_nothing(tmp_path, small_farm):
    out = tmp_path / "out"
    assert crawl(small_farm.url, out).returncode == EXIT_OK
    before = tree(out)
    dead = crawl(f"http://127.0.0.1:{closed_port()}/", out, "--name", "other")
    assert dead.returncode == EXIT_FAILED
    after = tree(out)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if k != "history.sqlite"} == {
        k: v for k, v in before.items() if k != "history.sqlite"
    }
    with sqlite3.connect(out / "history.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - keep the test output clean
        pass


def test_a_url_that_is_not_a_farm_fails_with_a_hint(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body><p>Just a page.</p></body></html>")
    handler = lambda *a: _Quiet(*a, directory=str(site))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = crawl(f"http://127.0.0.1:{server.server_address[1]}/", tmp_path / "out")
    finally:
        server.shutdown()
    assert result.returncode == EXIT_USAGE  # the wrong URL: fix the command
    assert "but is not an autoblog farm or autoblog" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_second_run_on_a_busy_folder_exits_3(tmp_path):
    from test_runlock import hold_in_subprocess

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
    assert expected - archived(out) == set()
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
        assert expected <= archived(out)


# ---------------------------------------------------------------- interrupted runs


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_says_how_to_resume_and_the_same_command_does(tmp_path, presses):
    """Once: a graceful stop. Twice: Scrapy's unclean shutdown. Both end the same way."""
    out = tmp_path / "out"
    argv = [str(BIN / "autoblog-archive"), "crawl", "-o", str(out), "--name", "f", "--fast"]
    with start_farm(autoblogs=2, articles=80, engine=["0.3.4"], latency=30) as farm:
        proc = subprocess.Popen(
            [*argv, farm.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while len(farm.requests()) < 20 and proc.poll() is None:
            threading.Event().wait(0.05)
        assert proc.poll() is None, "the crawl ended before Ctrl-C"
        for _ in range(presses):
            proc.send_signal(signal.SIGINT)
            threading.Event().wait(0.3)
        stdout, stderr = proc.communicate(timeout=120)
        again = subprocess.run([*argv, farm.url], capture_output=True, text=True, timeout=300)
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
    assert expected <= archived(out)


def test_extract_and_package_find_their_input(tmp_path, small_farm):
    out = tmp_path / "out"
    assert crawl(small_farm.url, out).returncode == EXIT_OK
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
    result = run_cli("demo", "-o", str(out), "--autoblogs", "5", "--articles", "12")
    assert result.returncode == EXIT_OK, result.stdout[-2000:] + result.stderr[-2000:]
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
def test_replay_fails_loudly_and_stops_with_its_parent(small_farm, tmp_path):
    out = tmp_path / "out"
    assert crawl(small_farm.url, out).returncode == EXIT_OK
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli("replay", str(out), "--port", str(port))
    assert taken.returncode == EXIT_USAGE and f"port {port} is not free" in taken.stderr

    port = closed_port()
    proc = subprocess.Popen(
        [str(BIN / "autoblog-archive"), "replay", str(out), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "pywb is replaying" in first, first + proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    with socket.socket() as probe:  # pywb went with it: nothing listens there any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_scrapy_log_goes_to_a_file_unless_verbose(tmp_path, small_farm):
    quiet = crawl(small_farm.url, tmp_path / "a")
    assert "[scrapy" not in quiet.stderr and "INFO" not in quiet.stderr
    loud = crawl(small_farm.url, tmp_path / "b", "--verbose")
    assert "[scrapy" in loud.stderr
    custom = tmp_path / "my.log"
    crawl(small_farm.url, tmp_path / "c", "--log-file", str(custom))
    assert "Spider closed" in custom.read_text()
    shutil.rmtree(tmp_path / "a")
