"""`replay` through the real CLI and a real pywb: an archive folder is hostile input.

An output folder may come from anyone (a copy, a download, a shared disk). Replaying it
must not run anything it holds (Jinja templates, YAML tags), must not let it make pywb
read files outside it, must not write into it, and must leave no pywb behind however
`replay` is stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import (
    BIN,
    free_port,
    must_mount,
    needs_pywb,
    port_is_free,
    run_cli,
    snapshot,
    wait_for,
)

from crawler.exitcodes import EXIT_FAILED, EXIT_USAGE
from crawler.samplefarm import RunningFarm, start_farm

pytestmark = pytest.mark.e2e

NAME = "f"
MARK = "PLANTED-MARK-7f3a"
# Every template pywb 2.10 renders (its default_config.yaml), planted in each place pywb
# would look for it when run in the archive.
TEMPLATES = [
    "banner.html", "custom_banner.html", "head_insert.html", "frame_insert.html",
    "query.html", "search.html", "not_found.html", "index.html", "base.html",
    "header.html", "head.html", "footer.html", "error.html",
    "proxy_cert_download.html", "proxy_select.html",
]  # fmt: skip


@pytest.fixture(scope="module")
def farm() -> Iterator[RunningFarm]:
    with start_farm(autoblogs=2, articles=5, engine=["0.3.4", "0.2"], seed=5) as f:
        yield f


@pytest.fixture(scope="module")
def archive(farm, tmp_path_factory) -> Path:
    """A real crawl of the farm (never written to: tests copy it first)."""
    out = tmp_path_factory.mktemp("replay") / "crawl"
    result = run_cli("crawl", farm.url, "-o", str(out), "--name", NAME, "--fast")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


@pytest.fixture
def articles(farm) -> list[dict]:
    return [a for b in farm.truth()["autoblogs"].values() for a in b["articles"] if a["reachable"]]


def fetch(url: str) -> tuple[int, bytes]:
    """Status and body, error pages included."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def replay_process(folder: Path, port: int, *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "autoblog-archive"), "replay", str(folder), "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


@contextmanager
def serving(folder: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`replay` of ``folder`` until it says it serves; SIGTERM (exit 0) at the end."""
    port = free_port()
    proc = replay_process(folder, port, *extra)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert "pywb is replaying" in first, first + proc.stderr.read()
        yield f"http://127.0.0.1:{port}/", proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_child(proc: subprocess.Popen) -> int:
    """The first child `replay` starts (pywb), as soon as it exists."""
    wait_for(lambda: children(proc.pid), "replay started a process", proc)
    return children(proc.pid)[0]


def copy_archive(archive: Path, tmp_path: Path) -> Path:
    out = tmp_path / "archive"
    shutil.copytree(archive, out, symlinks=True)
    return out


# ---------------------------------------------------------------- nothing in it runs


def _payload(marker: Path) -> str:
    """Jinja that writes ``marker`` and shows MARK when rendered (pywb's Jinja is not
    sandboxed: this is code execution on the operator's machine)."""
    return (
        "{{ lipsum.__globals__['__builtins__']['open']("
        f"'{marker}', 'w').write('rendered') }}}}{MARK}\n"
    )


@needs_pywb
def test_planted_templates_config_metadata_and_static_never_run_or_show(
    archive, articles, tmp_path
):
    out = copy_archive(archive, tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    elsewhere = tmp_path / "elsewhere"
    for i, folder in enumerate(
        [out / "templates", out / "collections" / NAME / "templates", elsewhere / "templates"]
    ):
        folder.mkdir(parents=True)
        for name in TEMPLATES:
            (folder / name).write_text(_payload(markers / f"jinja-{i}-{name}"))
    # PyYAML's unsafe loader (pywb's) runs these tags while reading the file.
    yaml_tag = "!!python/object/apply:os.system ['touch {}']"
    (out / "config.yaml").write_text(
        f"templates_dir: {elsewhere / 'templates'}\n"
        f"collections:\n  planted: {out / 'collections' / NAME / 'indexes' / 'index.cdxj'}\n"
        f"marker: {yaml_tag.format(markers / 'config-yaml')}\n"
    )
    (out / "collections" / NAME / "metadata.yaml").write_text(
        f"title: {yaml_tag.format(markers / 'metadata-yaml')}\n"
    )
    for static in (out / "static", out / "collections" / NAME / "static"):
        static.mkdir()
        (static / "planted.js").write_text(f"/* {MARK} */\n")

    url = articles[0]["url"]
    with serving(out) as (base, _):
        pages = {
            "home": fetch(base),
            "collection": fetch(f"{base}{NAME}/"),
            "query": fetch(f"{base}{NAME}/*/{url}"),
            "replay": fetch(f"{base}{NAME}/2100/{url}"),
            "raw": fetch(f"{base}{NAME}/2100id_/{url}"),
            "not found": fetch(f"{base}{NAME}/2100/http://not-archived.example/"),
            "planted collection": fetch(f"{base}planted/2100id_/{url}"),
            "static": fetch(f"{base}static/planted.js"),
            "collection static": fetch(f"{base}static/_/{NAME}/planted.js"),
        }
    assert sorted(p.name for p in markers.iterdir()) == []
    for what, (_, body) in pages.items():
        assert MARK.encode() not in body, what
    # The archive is still served, by pywb's own templates only.
    assert pages["raw"] == (200, urllib.request.urlopen(url).read())
    status, page = pages["replay"]
    assert status == 200 and b"wbinfo" in page
    assert pages["query"][0] == 200 and url.encode() in pages["query"][1]
    assert pages["planted collection"][0] == 404  # the planted config.yaml was not read


@needs_pywb
def test_pywb_output_goes_to_the_log_file_never_into_the_archive(archive, articles, tmp_path):
    out = copy_archive(archive, tmp_path)
    before = snapshot(out)
    log = tmp_path / "pywb.log"
    with serving(out, "--log-file", str(log)) as (base, _):
        assert fetch(f"{base}{NAME}/2100id_/{articles[0]['url']}")[0] == 200
    port = base.rstrip("/").rsplit(":", 1)[1]
    assert f"Starting Gevent Server on {port}" in log.read_text()  # written before it listens
    assert snapshot(out) == before


@needs_pywb
def test_archive_cannot_make_pywb_read_files_outside_it(archive, articles, tmp_path):
    out = copy_archive(archive, tmp_path)
    collection = out / "collections" / NAME
    (warc,) = sorted((collection / "archive").glob("*.warc.gz"))
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.warc.gz"  # the same bytes: any offset in it is a record
    shutil.copyfile(warc, secret)
    (collection / "archive" / "linked.warc.gz").symlink_to(secret)
    # A whole collection of its own outside the archive, linked in.
    shutil.copytree(collection, outside / "evil")
    (out / "collections" / "evil").symlink_to(outside / "evil")
    # Index lines of two articles now name the symlink, and a path out of the archive.
    by_link, by_path = articles[0]["url"], articles[1]["url"]
    index = collection / "indexes" / "index.cdxj"
    lines = []
    for line in index.read_text().splitlines(keepends=True):
        if f'"url": "{by_link}"' in line:
            line = line.replace(warc.name, "linked.warc.gz")
        elif f'"url": "{by_path}"' in line:
            line = line.replace(warc.name, os.path.relpath(secret, warc.parent))
        lines.append(line)
    index.write_text("".join(lines))
    # What the archive names is really there: pywb run by hand in it would serve both.
    assert "linked.warc.gz" in index.read_text() and "../" in index.read_text()

    with serving(out) as (base, proc):
        linked = fetch(f"{base}{NAME}/2100id_/{by_link}")
        escaped = fetch(f"{base}{NAME}/2100id_/{by_path}")
        evil = fetch(f"{base}evil/2100id_/{by_link}")
        kept = fetch(f"{base}{NAME}/2100id_/{articles[2]['url']}")
    # pywb finds the index lines but no file to open for them (503), and no "evil" (404).
    for (status, body), url in [(linked, by_link), (escaped, by_path), (evil, by_link)]:
        assert status in (404, 503) and urllib.request.urlopen(url).read() not in body
    assert kept == (200, urllib.request.urlopen(articles[2]["url"]).read())
    assert "skipped 2 symlinks or odd entries" in proc.stderr.read()


# ---------------------------------------------------------------- stopping


@needs_pywb
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signal_while_pywb_starts_leaves_nothing_behind(archive, tmp_path, sig):
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = replay_process(archive, port, env={**os.environ, "TMPDIR": str(scratch)})
    child = None
    try:
        # pywb exists but is nowhere near answering yet (it takes seconds to start).
        child = wait_for_child(proc)
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
        assert not running(child)
        with pytest.raises(ProcessLookupError):
            os.killpg(child, 0)  # nothing of pywb's process group is left
        assert port_is_free(port)
        assert list(scratch.iterdir()) == []  # the private pywb root is gone too
        assert code == 0, proc.communicate()
    finally:
        if child is not None and running(child):
            os.kill(child, signal.SIGKILL)  # the pywb this test started, left by a failure
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@needs_pywb
def test_pywb_dying_is_exit_2_with_its_last_lines(archive, tmp_path):
    port = free_port()
    proc = replay_process(archive, port)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "pywb is replaying" in first, first + proc.communicate()[1]
        (child,) = children(proc.pid)
        os.kill(child, signal.SIGKILL)  # as the OOM killer would
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_FAILED
    assert "pywb exited with code -9" in stderr
    assert "Starting Gevent Server" in stderr  # pywb's own last lines, though its log is gone
    assert "Traceback" not in stderr


# ---------------------------------------------------------------- read-only archive


@contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """``folder`` bind-mounted read-only at ``view``: unwritable even for root."""
    view.mkdir()
    must_mount("--bind", str(folder), str(view), what=f"{folder} read-only")
    try:
        must_mount("-o", "remount,bind,ro", str(view), what=f"{folder} read-only")
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)])


@needs_pywb
def test_read_only_archive_replays_and_nothing_is_written_in_it(archive, articles, tmp_path):
    out = copy_archive(archive, tmp_path)
    with read_only_view(out, tmp_path / "ro") as ro:
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")
        before = snapshot(ro)
        url = articles[0]["url"]
        with serving(ro) as (base, _):
            raw = fetch(f"{base}{NAME}/2100id_/{url}")
            page = fetch(f"{base}{NAME}/2100/{url}")
        after = snapshot(ro)
    assert raw == (200, urllib.request.urlopen(url).read())
    assert page[0] == 200
    assert after == before


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize("port", ["99999", "abc", "0", "-1"])
def test_bad_port_is_one_line_and_exit_4(archive, port):
    result = run_cli("replay", str(archive), f"--port={port}")
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"autoblog-archive replay: --port {port}: not a port number (1-65535)"
    ]
    assert result.stdout == ""
