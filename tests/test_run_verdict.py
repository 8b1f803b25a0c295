"""The verdict is the truth: what a run holds, what it says, and its exit code, through the
real command line against the sample farm (issue 20, the run-lifecycle and usage part).

Each test is one case the outside check found; it asserts the exit code, the message and
what the output folder holds afterwards.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import (
    BIN,
    IS_ROOT,
    archived_paths,
    crawl,
    path_of,
    permalinks,
    responses,
    run_cli,
    said,
    summary_of,
    tmpfs,
    wait_for,
)

from crawler.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from crawler.samplefarm import RunningFarm, start_farm

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_farm() -> Iterator[RunningFarm]:
    with start_farm(autoblogs=1, articles=3) as farm:
        yield farm


# ------------------------------------------------- 2. a run exists once it holds an autoblog page


def test_a_plain_web_server_records_nothing_and_the_next_crawl_is_run_1(tmp_path, plain_site):
    out = tmp_path / "out"
    result = crawl(plain_site, out)
    assert result.returncode == EXIT_USAGE, said(result)[-3000:]
    assert (
        f"{plain_site} answered 200 text/html but is not an autoblog farm or autoblog "
        "(no VroumVroumBlog markup)"
    ) in result.stderr
    assert "the output folder was left as it was" in result.stderr
    assert "Traceback" not in said(result)
    assert not out.exists()  # no history run, no collection, no WARC, no summary
    # Into a folder that already exists (empty): it stays empty.
    out.mkdir()
    assert crawl(plain_site, out).returncode == EXIT_USAGE
    assert list(out.iterdir()) == []
    # The real farm into that folder is a first run: a full pass, every article archived.
    with start_farm(autoblogs=2, articles=14, engine=["0.3.4", "0.2"], seed=4) as farm:
        good = crawl(farm.url, out)
        expected = permalinks(farm)
    assert good.returncode == EXIT_OK, said(good)[-3000:]
    assert "Run 1 (full): complete" in good.stdout
    assert expected <= archived_paths(out)
    with sqlite3.connect(out / "history.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_what_answered_at_a_seed_decides_between_wrong_url_and_failure(tmp_path):
    """A seed that answers 404 is a wrong URL (4); a farm none of whose autoblogs gives a
    page did not answer (2); either way nothing is left behind."""
    with start_farm(autoblogs=1, articles=5, fault=["0:status=500"]) as farm:
        missing = crawl(farm.url + "nosuch/", tmp_path / "a")
        broken = crawl(farm.url, tmp_path / "b", "--set", "RETRY_TIMES=0")
    assert missing.returncode == EXIT_USAGE, said(missing)[-3000:]
    assert f"{farm.url}nosuch/ answered 404 text/html but is not an autoblog farm" in (
        missing.stderr
    )
    assert broken.returncode == EXIT_FAILED, said(broken)[-3000:]
    assert f"nothing was captured ({farm.url} is an autoblog farm, but no autoblog" in (
        broken.stderr
    )
    assert "answered 500 text/html" in broken.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------- 3. no silent loss with exit 0


def test_hidden_autoblogs_that_fail_are_named_and_make_the_run_partial(tmp_path):
    """One named in the config file's hidden_autoblogs answers 404 (deleted by the admin),
    one named with --autoblogs answers 500; the listed autoblogs are archived."""
    with start_farm(
        autoblogs=4,
        articles=6,
        engine=["0.3.4"],
        fault=["2:disabled", "2:status=404", "3:disabled", "3:status=500"],
    ) as farm:
        truth = farm.truth()["autoblogs"]
        gone, broken = (b["base_url"] for b in truth.values() if b["disabled"])
        config = tmp_path / "farm.toml"
        folder = gone.rstrip("/").rsplit("/", 1)[1]
        # The file's [politeness] is the crawl's, over --fast (its default: a page a second).
        config.write_text(
            f'output = "{tmp_path / "out"}"\nname = "f"\n'
            f'[[farms]]\nurl = "{farm.url}"\nhidden_autoblogs = ["{folder}"]\n'
            "[politeness]\ndelay = 0\nconcurrency = 4\n"
        )
        folder = broken.rstrip("/").rsplit("/", 1)[1]
        result = run_cli("crawl", "--config", str(config), "--fast", "--autoblogs", folder,
                         "--set", "RETRY_TIMES=0")  # fmt: skip
        expected = {
            path_of(a["permalink"])
            for blog in truth.values()
            if not blog["disabled"]
            for a in blog["articles"]
        }
    out = tmp_path / "out"
    assert result.returncode == EXIT_PARTIAL, said(result)[-3000:]
    assert result.stdout.startswith("Run 1 (full): partial: not archived: ")
    text = said(result)
    assert f"not archived: {gone} (listed autoblog) answered 404 text/html" in text
    assert f"not archived: {broken} (listed autoblog) answered 500 text/html" in text
    named = {(p["url"], p["kind"]) for p in summary_of(out)["not_archived"]}
    assert named == {(gone, "not_autoblog"), (broken, "failed")}
    assert expected <= archived_paths(out)
    # verify runs the same audit offline: the one that answered 500 may come back and is
    # still owed; the one that answered 404 was deleted by the farm's admin.
    checked = run_cli("verify", str(out))
    assert checked.returncode == EXIT_PARTIAL, said(checked)
    assert f"MISSING  autoblog {broken} (" in checked.stdout
    assert gone not in checked.stdout


def test_an_autoblog_served_as_png_is_named_and_makes_the_run_partial(tmp_path):
    with start_farm(autoblogs=3, articles=6, fault=["1:ctype=image/png"]) as farm:
        truth = farm.truth()["autoblogs"]
        png = list(truth.values())[1]["base_url"]
        result = crawl(farm.url, tmp_path / "out")
    assert result.returncode == EXIT_PARTIAL, said(result)[-3000:]
    assert f"not archived: {png} (farm list) answered 200 image/png, not an HTML page" in (
        result.stdout
    )
    summary = summary_of(tmp_path / "out")
    assert [p["url"] for p in summary["not_archived"]] == [png]
    assert len(summary["autoblogs"]) == 2
    # Its first page is in the archive as it was served: the WARC is the evidence.
    captured = {uri for uri, _, _ in responses(tmp_path / "out/collections/f/archive")}
    assert png in captured


def test_an_extraction_pool_that_cannot_work_makes_the_run_partial(tmp_path):
    """The workers' fork server cannot start (a TMPDIR deeper than a Unix socket path may
    be): no corpus record, said and partial, where it was 0 records and "complete"."""
    tmpdir = tmp_path / ("d" * 60) / ("d" * 60)
    tmpdir.mkdir(parents=True)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    with start_farm(autoblogs=2, articles=6) as farm:
        result = crawl(farm.url, tmp_path / "out", env=env)
    assert result.returncode == EXIT_PARTIAL, said(result)[-3000:]
    assert "corpus short: 0 records for the 12 article pages captured" in result.stdout
    assert "autoblog-archive extract" in result.stdout
    short = summary_of(tmp_path / "out")["corpus_shortfall"]
    assert short["records"] == 0 and short["article_pages"] == 12
    assert run_cli("verify", str(tmp_path / "out")).returncode == EXIT_OK


# ------------------------------------------------- 6. misuse: exit 4, one line, first


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "MAX_PAGES_PER_RUN=-5"], "MAX_PAGES_PER_RUN must be at least 0"),
        (["--set", "MAX_PAGES_PER_AUTOBLOG=-1"], "MAX_PAGES_PER_AUTOBLOG must be at least 0"),
        (["--set", "CONCURRENT_REQUESTS=0"], "CONCURRENT_REQUESTS must be at least 1"),
        (["--set", "DOWNLOAD_DELAY=nan"], "DOWNLOAD_DELAY takes a number"),
        (["--set", "CORPUS_MIN_RECORDS=2"], "CORPUS_MIN_RECORDS must be at most 1"),
        (["--set", "CRAWL_MODE=fast"], "CRAWL_MODE takes one of auto, full, incremental"),
        (["--log-file", "/nonexistent/x.log"], "--log-file /nonexistent/x.log: no such folder"),
        (["--processes", "0"], "--processes must be 1 or more"),
    ],
)
def test_bad_option_values_exit_4_in_one_line_before_anything(tmp_path, tiny_farm, args, message):
    before = len(tiny_farm.requests())
    result = crawl(tiny_farm.url, tmp_path / "out", *args)
    assert result.returncode == EXIT_USAGE, said(result)[-3000:]
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the error and at most a hint
    assert "Traceback" not in said(result)
    assert len(tiny_farm.requests()) == before and not (tmp_path / "out").exists()


def test_a_url_with_a_bad_port_is_bad_usage(tmp_path):
    result = crawl("http://127.0.0.1:99999/", tmp_path / "out")
    assert result.returncode == EXIT_USAGE, said(result)
    assert "the port must be a number from 1 to 65535" in result.stderr
    assert "Traceback" not in said(result) and "ValueError" not in said(result)


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis//nope", "expected redis://"),
        ("redis://127.0.0.1:99999999/0", "Port out of range"),
        ("redis://127.0.0.1/notanumber", "the port and the database must be numbers"),
    ],
)
def test_a_malformed_redis_url_is_bad_usage(tmp_path, url, message):
    out = tmp_path / "worker"
    for command in (["worker", "-o", str(out)], ["seed", "http://127.0.0.1:9/"]):
        result = run_cli(*command, "--redis", url, "--crawl-id", "x")
        assert result.returncode == EXIT_USAGE, (command, said(result))
        assert message in result.stderr and "Traceback" not in said(result)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_reconcile_checks_its_folder_before_asking_redis(tmp_path):
    """Port 1 has no Redis: asked first, the error would be the connection's."""
    missing = tmp_path / "merged"
    result = run_cli(
        "reconcile", str(missing), "--redis", "redis://127.0.0.1:1/0", "--crawl-id", "x"
    )
    assert result.returncode == EXIT_USAGE, said(result)
    assert f"{missing}: no such folder" in result.stderr and "connecting" not in result.stderr
    assert not missing.exists()


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only filesystem needs root")
def test_demo_into_a_read_only_folder_is_bad_usage(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        result = run_cli("demo", "-o", str(ro))
    assert result.returncode == EXIT_USAGE, said(result)[-3000:]
    assert f"output {ro}: {ro} is not writable" in result.stderr
    assert "Traceback" not in said(result) and "OSError" not in said(result)
    assert "Sample farm serving" not in result.stdout  # refused before anything started


def _group(pgid: int) -> dict[int, str]:
    """The processes of a process group (from /proc): pid -> command line."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(stat.parent.name)] = cmdline.decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def _fork_server_started(pgid: int) -> bool:
    """The extraction workers' fork server runs and SIGINT is no longer at its default for
    it (ignored, or Python's KeyboardInterrupt handler is in place): a SIGINT now is
    either ignored or a KeyboardInterrupt while it loads the extraction modules."""
    for pid, cmdline in _group(pgid).items():
        if "multiprocessing.forkserver" not in cmdline:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        masks = {k: int(v, 16) for k, v in (line.split(":\t") for line in status.splitlines()
                 if line.startswith(("SigIgn:", "SigCgt:")))}  # fmt: skip
        return bool((masks["SigIgn"] | masks["SigCgt"]) & (1 << (signal.SIGINT - 1)))
    return False


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_to_the_process_group_stops_cleanly_and_resumes(tmp_path, presses):
    """Ctrl-C on a terminal signals the whole process group: the crawl, the extraction
    workers and their fork server. Pressed once it stops gracefully, twice it stops now;
    either way exit 2 with the command to resume, and no traceback from any process. The
    first press lands while the workers' fork server is still loading the extraction
    modules, where a KeyboardInterrupt used to escape."""
    out, log = tmp_path / "out", tmp_path / "crawl.log"
    argv = [str(BIN / "autoblog-archive"), "crawl", "-o", str(out), "--name", "f", "--fast",
            "--log-file", str(log)]  # fmt: skip
    with start_farm(autoblogs=2, articles=30, engine=["0.3.4"], latency=20) as farm:
        proc = subprocess.Popen(
            [*argv, farm.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(lambda: _fork_server_started(proc.pid), "the fork server started", proc)
            os.killpg(proc.pid, signal.SIGINT)
            if presses == 2:
                wait_for(
                    lambda: "shutting down gracefully" in log.read_text(errors="replace"),
                    "the graceful stop began",
                    proc,
                )
                os.killpg(proc.pid, signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        again = subprocess.run([*argv, farm.url], capture_output=True, text=True, timeout=300)
        expected = permalinks(farm)
    text = stdout + stderr
    assert proc.returncode == EXIT_FAILED, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-5000:]
    assert "interrupted: run the same command again to resume" in text
    assert f"Resume: {BIN / 'autoblog-archive'} crawl -o {out}" in stderr
    wait_for(lambda: not _group(proc.pid), "every process of the crawl to end")
    assert again.returncode == EXIT_OK, said(again)[-3000:]
    assert "Run 1 (full, resumed): complete" in again.stdout
    assert expected <= archived_paths(out)


# ------------------------------------------------- 7. --processes is bounded by the cores


def test_processes_are_capped_at_the_cores_and_numbered_as_printed(tmp_path):
    cores = len(os.sched_getaffinity(0))
    with start_farm(autoblogs=1, articles=5) as farm:
        result = crawl(farm.url, tmp_path / "out", "--processes", "64")
    assert result.returncode == EXIT_OK, said(result)[-3000:]
    assert f"--processes 64: capped at {cores}," in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("process ")]
    assert [line.split(":")[0] for line in lines] == [
        f"process {i}/{cores}" for i in range(1, cores + 1)
    ]
    for line in lines:  # a share with no autoblog names itself as its line does
        if "share held no autoblog page" in line:
            label = line.split(":")[0]
            assert f": {label}'s share held no autoblog page" in line, line
    assert len(list((tmp_path / "out/processes").glob("[0-9]*"))) <= cores
