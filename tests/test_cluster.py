"""Distributed crawls: worker processes on a real Redis (Debian's redis-server on a free
loopback port), the real command line, the sample farm; merged output read back with
warcio and checked with ``verify``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest
import redis
from hostile import HostileServer, redirect_to
from support import (
    BIN,
    free_port,
    needs_pywb,
    records_by_run,
    replayed,
    responses,
    run_cli,
    wait_for_requests,
)
from warcio.archiveiterator import ArchiveIterator

from crawler.cluster import Keys
from crawler.corpus.shards import read_corpus
from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e


@contextmanager
def redis_server(work: Path, *options: str, tls: Path | None = None) -> Iterator[int]:
    """A redis-server of its own on a free loopback port, no persistence, until it says it
    is ready; with ``tls`` (a folder of ``tls_files``) that port speaks TLS only."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = free_port()
    listen = ["--port", str(port)]
    if tls is not None:
        listen = ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no",
                  "--tls-cert-file", str(tls / "server.pem"), "--tls-key-file",
                  str(tls / "server.key"), "--tls-ca-cert-file", str(tls / "ca.pem")]  # fmt: skip
    proc = subprocess.Popen(
        [server, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work), *options],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    ready, said = threading.Event(), []

    def watch() -> None:  # and keep reading, so that redis-server never blocks on its log
        for line in proc.stdout:
            said.append(line)
            if "Ready to accept connections" in line:
                ready.set()
        ready.set()  # it exited

    threading.Thread(target=watch, daemon=True).start()
    ready.wait(60)
    assert "Ready to accept connections" in "".join(said), "".join(said)[-2000:]
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A redis-server on loopback, no password. Missing in CI: a failure."""
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


def workers(redis_url: str, crawl: str, folders: list[Path], *extra: str) -> list[subprocess.Popen]:
    cmd = [str(BIN / "autoblog-archive"), "worker", "--redis", redis_url, "--crawl-id", crawl]
    cmd += extra
    return [
        subprocess.Popen(
            [*cmd, "--output", str(f), "--fast", "-q", "--set", "CLUSTER_BUSY_TTL=3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]


def finish(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]


def crawl_cluster(
    redis_url: str, crawl: str, farm_url: str, folders: list[Path], merged: Path, *earlier: Path
):
    seeded = run_cli("seed", farm_url, "--redis", redis_url, "--crawl-id", crawl, "--name", "c")
    assert seeded.returncode == 0, seeded.stderr
    finish(workers(redis_url, crawl, folders))
    result = run_cli("merge", *map(str, [*earlier, *folders]), "--output", str(merged))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def records(archive: Path) -> list[tuple[str, str, str]]:
    """(crawlRun, record type, target URI) of every response and revisit record."""
    return [(run, kind, uri) for run, kind, uri, _ in records_by_run(archive)
            if kind in ("response", "revisit")]  # fmt: skip


def cdxj_lines(root: Path) -> int:
    return len((root / "collections" / "c" / "indexes" / "index.cdxj").read_text().splitlines())


def by_url_and_text(folder: Path) -> Counter:
    return Counter((r["url"], r["text"]) for r in read_corpus(folder))


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory):
    """One farm crawled by 3 workers (and by one process, the reference), then grown and
    crawled again by the cluster."""
    base = tmp_path_factory.mktemp("cluster")
    folders = [base / f"worker-{n}" for n in "abc"]
    with start_farm(autoblogs=4, articles=14, seed=5, engine=["0.3.4", "0.2", "2025"]) as farm:
        single = run_cli("crawl", farm.url, "-o", str(base / "single"), "--name", "c", "--fast")
        assert single.returncode == 0, single.stderr[-2000:]
        first = crawl_cluster(redis_url, "farm1", farm.url, folders, base / "merged")
        state = {
            "farm": farm,
            "base": base,
            "truth": farm.truth()["autoblogs"],
            "first": first,
            "verify_first": run_cli("verify", str(base / "merged")),
            "corpus_first": by_url_and_text(base / "merged"),
            "records_first": records(base / "merged" / "collections" / "c" / "archive"),
            "cdxj_first": cdxj_lines(base / "merged"),
        }
        grown_folder = next(iter(state["truth"]))
        state["grown"] = farm.grow(autoblog=grown_folder, n=3)["articles"]
        # Other workers this time: whatever they find unchanged, another worker archived.
        again = [base / f"worker-{n}" for n in "def"]
        merged = base / "merged"
        state["second"] = crawl_cluster(redis_url, "farm1", farm.url, again, merged, *folders)
        yield state


def test_three_workers_merge_to_one_complete_valid_crawl(cluster):
    assert cluster["verify_first"].returncode == 0, cluster["verify_first"].stdout[-3000:]
    captured = Counter(unquote(uri) for _, kind, uri in cluster["records_first"])
    assert captured and max(captured.values()) == 1, captured.most_common(3)
    archive = cluster["base"] / "single" / "collections" / "c" / "archive"
    single = Counter(unquote(u) for u, _, _ in responses(archive))
    assert set(captured) == set(single)
    for blog in cluster["truth"].values():
        for article in blog["articles"]:
            assert unquote(article["url"]) in captured
    assert cluster["cdxj_first"] == cdxj_lines(cluster["base"] / "single")


def test_merged_corpus_equals_single_process_corpus(cluster):
    single = by_url_and_text(cluster["base"] / "single")
    assert single and cluster["corpus_first"] == single


def test_grown_farm_fetches_only_new_articles_across_workers(cluster):
    archive = cluster["base"] / "merged" / "collections" / "c" / "archive"
    second = [(kind, unquote(uri)) for run, kind, uri in records(archive) if run == "2"]
    full = {uri for kind, uri in second if kind == "response"}
    new = {unquote(a["permalink"]) for a in cluster["grown"]}
    old = {unquote(a["url"]) for blog in cluster["truth"].values() for a in blog["articles"]}
    assert new <= full
    assert not old & {uri for _, uri in second}, "an archived article was fetched again"
    assert any(kind == "revisit" for kind, _ in second)
    assert run_cli("verify", str(cluster["base"] / "merged")).returncode == 0
    report = run_cli("report", str(cluster["base"] / "merged"))  # the one merged report
    assert "Run 2 (incremental" in report.stdout
    assert f"articles: {len(new)} new, 0 changed" in report.stdout, report.stdout[:500]


def revisits_across_workers(archive: Path) -> list[tuple[str, str]]:
    """(URI, WARC-Date) of revisits whose original is in another worker's WARC file."""
    writer: dict[str, str] = {}  # record id -> <name>-<worker id>, the file name's prefix
    revisits = []
    for path in sorted(archive.glob("*.warc.gz")):
        prefix = re.match(r"(.*)-\d{17}-", path.name).group(1)
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                h = record.rec_headers
                writer[h["WARC-Record-ID"]] = prefix
                if record.rec_type == "revisit":
                    revisits.append(
                        (h["WARC-Refers-To"], prefix, h["WARC-Target-URI"], h["WARC-Date"])
                    )
    return [(uri, date) for refers, prefix, uri, date in revisits if writer[refers] != prefix]


@needs_pywb
def test_revisit_of_another_workers_capture_replays_in_pywb(cluster):
    archive = cluster["base"] / "merged" / "collections" / "c" / "archive"
    across = [(u, d) for u, d in revisits_across_workers(archive) if u.endswith("/")]
    assert across, "no revisit refers to another worker's capture"
    uri, date = across[0]
    stamp = re.sub(r"\D", "", date)[:14]
    raw = replayed(cluster["base"] / "merged", f"c/{stamp}id_/{uri}")
    assert raw == urllib.request.urlopen(uri).read()


def test_killed_worker_is_reconciled(redis_url, tmp_path):
    with start_farm(autoblogs=3, articles=14, seed=7, fault=["*:latency=0.02"]) as farm:
        seeded = run_cli(
            "seed", farm.url, "--redis", redis_url, "--crawl-id", "kill", "--name", "farm"
        )
        assert seeded.returncode == 0, seeded.stderr
        (victim,) = workers(redis_url, "kill", [tmp_path / "victim"])
        wait_for_requests(farm, 30, victim)  # killed mid-crawl, requests in flight
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        folders = [tmp_path / "victim", tmp_path / "other"]
        finish(workers(redis_url, "kill", folders[1:]))
        merged = tmp_path / "merged"
        rounds = []
        for _ in range(3):
            assert run_cli("merge", *map(str, folders), "-o", str(merged)).returncode == 0
            result = run_cli("reconcile", str(merged), "--redis", redis_url, "--crawl-id", "kill")
            rounds.append(result.returncode)
            if result.returncode == 0:
                break
            finish(workers(redis_url, "kill", folders[1:]))
        assert rounds[-1] == 0 and len(rounds) > 1, rounds
        verify = run_cli("verify", str(merged))
        assert verify.returncode == 0, verify.stdout[-3000:]
        captured = Counter(
            unquote(u) for u, _, _ in responses(merged / "collections" / "farm" / "archive")
        )
        assert max(captured.values()) == 1
        for blog in farm.truth()["autoblogs"].values():
            for article in blog["articles"]:
                assert unquote(article["url"]) in captured


def test_robots_crawl_delay_holds_for_the_cluster_as_a_whole(redis_url, tmp_path):
    delay = 0.3
    with start_farm(autoblogs=1, articles=2, seed=3, crawl_delay=delay) as farm:
        seeded = run_cli("seed", farm.url, "--redis", redis_url, "--crawl-id", "polite")
        assert seeded.returncode == 0, seeded.stderr
        # Two requests at a time per worker: neither takes the whole frontier for itself.
        folders = [tmp_path / "a", tmp_path / "b"]
        finish(workers(redis_url, "polite", folders, "--set", "CONCURRENT_REQUESTS=2"))
        times = sorted(r["time"] for r in farm.requests() if r["path"] != "/robots.txt")
    assert len(times) > 10
    # One request per Crawl-delay from the two workers together: the whole crawl spans
    # (n - 1) delays. Two workers each polite on its own would take about half of that.
    # (A busy machine only delays requests, so this holds however loaded it is.)
    assert times[-1] - times[0] >= 0.9 * delay * (len(times) - 1), times


# -- trust boundaries: what is read from Redis is data, the password is never shown ------


def plant(redis_url: str, crawl: str, *planted: bytes) -> str:
    """Entries put into the current run's queue above every request (popped first), as
    anyone who can write to the Redis could; returns the queue's key."""
    client = redis.Redis.from_url(redis_url)
    keys = Keys(crawl)
    key = keys.requests(int(client.get(keys.run)))
    client.zadd(key, dict.fromkeys(planted, -1000))
    return key


def entry(url: str, **changes: object) -> bytes:
    """A frontier entry as a worker writes it (crawler.cluster.entries), with ``changes``."""
    fields = {"url": url, "method": "GET", "callback": "parse", "errback": "failed",
              "headers": {}, "meta": {}, "priority": 0, "dont_filter": False,
              "flags": []}  # fmt: skip
    return json.dumps(fields | changes).encode()


def worker_log(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((folder / "logs").glob("*.log")))


def crawl_with_planted(redis_url: str, crawl: str, folder: Path, farm, *planted: bytes):
    """Seed a run, plant ``planted``, run one worker to its end: (exit code, queue key, log,
    summary.json). The farm must still be archived whole."""
    seeded = run_cli("seed", farm.url, "--redis", redis_url, "--crawl-id", crawl, "--name", "c")
    assert seeded.returncode == 0, seeded.stderr
    key = plant(redis_url, crawl, *planted)
    (proc,) = workers(redis_url, crawl, [folder])
    out, err = proc.communicate(timeout=300)
    captured = {unquote(u) for u, _, _ in responses(folder / "collections" / "c" / "archive")}
    for blog in farm.truth()["autoblogs"].values():
        for article in blog["articles"]:
            assert unquote(article["url"]) in captured, (out + err)[-2000:]
    summary = json.loads((folder / "summary.json").read_bytes())
    return proc.returncode, key, worker_log(folder), summary


class Unpickled:
    """Unpickling it makes a folder: what a pickled frontier entry could do to a worker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickled_frontier_entry_is_never_unpickled(redis_url, tmp_path):
    marker = tmp_path / "code-ran"
    with start_farm(autoblogs=1, articles=4, seed=21) as farm:
        code, key, log, summary = crawl_with_planted(
            redis_url, "pickled", tmp_path / "w", farm, pickle.dumps(Unpickled(marker))
        )
    assert not marker.exists(), "a frontier entry was unpickled"
    assert f"dropped an entry of the shared frontier {key} (not JSON)" in log
    assert summary["frontier_rejected"] == 1
    assert code == 1 and summary["verdict"].startswith("partial: 1 entries of the shared")


def test_frontier_entries_that_are_no_request_of_the_crawl_are_dropped(redis_url, tmp_path):
    with start_farm(autoblogs=1, articles=4, seed=22) as farm:
        planted = {
            b"\x00\x01 not json": "not JSON",
            entry("http://elsewhere.invalid/autoblogs/x/"): "out of scope",
            entry("file:///etc/passwd"): "out of scope",
            entry(f"{farm.url}?planted-post", method="POST"): "method POST",
            entry(f"{farm.url}?planted-callback", callback="close"): "no callback 'close'",
            entry(f"{farm.url}?planted-big", flags=["x" * 70_000]): "over CLUSTER_MAX_ENTRY_SIZE",
            entry(f"{farm.url}?planted-proxy", meta={"proxy": "http://proxy.invalid:3128"}): (
                "unexpected meta key 'proxy'"
            ),
            entry(f"{farm.url}?planted-class", _class="scrapy.FormRequest"): "not a request entry",
        }
        code, key, log, summary = crawl_with_planted(
            redis_url, "planted", tmp_path / "w", farm, *planted
        )
        fetched = [r["path"] for r in farm.requests()]
    named = f"dropped an entry of the shared frontier {key} ("
    dropped = [line for line in log.splitlines() if named in line]
    assert len(dropped) == len(planted), dropped
    for reason, count in Counter(planted.values()).items():
        assert sum(reason in line for line in dropped) == count, reason
    assert summary["frontier_rejected"] == len(planted)
    assert code == 1, summary["verdict"]
    assert not [p for p in fetched if "planted" in p]


def test_redirect_out_of_scope_is_skipped_not_taken_for_a_planted_entry(redis_url, tmp_path):
    with HostileServer() as elsewhere, HostileServer() as farm:
        base = farm.base()[len(farm.url) - 1 :]
        farm.routes[base + "?feed"] = redirect_to(elsewhere.url + "stolen")
        seeded = run_cli("seed", farm.url, "--redis", redis_url, "--crawl-id", "redirect")
        assert seeded.returncode == 0, seeded.stderr
        (proc,) = workers(redis_url, "redirect", [tmp_path / "w"])
        out, err = proc.communicate(timeout=300)
        assert elsewhere.requests() == []
    summary = json.loads((tmp_path / "w" / "summary.json").read_bytes())
    assert summary["skipped"] == {"out of scope (redirect target)": 1}
    assert summary["frontier_rejected"] == 0
    assert proc.returncode == 0, (out + err)[-3000:]


def tls_files(folder: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 it signed, as PEM files in ``folder``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir()
    now = datetime.datetime.now(datetime.UTC)

    def cert(name: str, key, issuer, signer, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            import ipaddress

            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", ca_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]),
              ca_key, True)  # fmt: skip
    server = cert("127.0.0.1", key, ca.subject, ca_key, False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder


SECRET = "s3cret-Zq7-never-shown"
ACL_SECRET = "acl-Wq9-never-shown"


def written(folder: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under ``folder`` as bytes (gzip files inflated too)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            yield path, data + (gzip.decompress(data) if path.suffix == ".gz" else b"")


def test_redis_password_is_never_written_nor_printed(tmp_path):
    crawl = "secret"
    # An ACL user held to this crawl's keys: what the README advises for a shared Redis.
    alice = f"alice on >{ACL_SECRET} ~autoblog-archive:{crawl}:* +@all -@dangerous".split()
    with (
        redis_server(tmp_path, "--requirepass", SECRET, "--user", *alice) as port,
        start_farm(autoblogs=2, articles=4, seed=23) as farm,
    ):
        at = f"127.0.0.1:{port}/0"
        seed = ["seed", farm.url, "--crawl-id", crawl, "--name", "c"]
        wrong = run_cli(*seed, "--redis", f"redis://:x{SECRET}@{at}")
        seeded = run_cli(*seed, "--redis", f"redis://:{SECRET}@{at}")
        assert seeded.returncode == 0, seeded.stderr
        admin = f"--redis=redis://default:{SECRET}@{at}"
        user = f"redis://alice:{ACL_SECRET}@{at}"
        first, second = tmp_path / "first", tmp_path / "second"
        cmd = ["--crawl-id", crawl, "--fast", "--set", "CLUSTER_BUSY_TTL=3"]
        worked = run_cli("worker", "--redis", user, "-o", str(first), *cmd)
        verbose = run_cli("worker", admin, "-o", str(second), "--verbose", *cmd)
    assert wrong.returncode == 4 and f"redis://***@{at}" in wrong.stderr, wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert worked.returncode == 0 and verbose.returncode == 0, worked.stderr[-3000:]
    # Where the URL was: the command line in the history; Scrapy's settings in the log.
    with sqlite3.connect(first / "history.sqlite") as db:
        (command,) = db.execute("SELECT command FROM runs").fetchone()
    assert f"--redis redis://***@{at}" in command
    assert "Overridden settings" in worker_log(first) and "Overridden settings" in verbose.stderr
    files = list(written(first)) + list(written(second))
    assert any(p.name == "summary.json" for p, _ in files)
    for secret in (SECRET, ACL_SECRET):
        for path, data in files:
            assert secret.encode() not in data, path
        for result in (wrong, seeded, worked, verbose):
            assert secret not in result.stdout + result.stderr, result.args


def test_worker_over_tls(tmp_path):
    tls = tls_files(tmp_path / "tls")
    with (
        redis_server(tmp_path, "--requirepass", SECRET, tls=tls) as port,
        start_farm(autoblogs=1, articles=3, seed=24) as farm,
    ):
        with pytest.raises(redis.ConnectionError):  # the port speaks TLS only
            redis.Redis(host="127.0.0.1", port=port, password=SECRET).ping()
        url = f"rediss://:{SECRET}@127.0.0.1:{port}/0?ssl_ca_certs={tls / 'ca.pem'}"
        seeded = run_cli("seed", farm.url, "--redis", url, "--crawl-id", "tls", "--name", "c")
        assert seeded.returncode == 0, seeded.stderr
        (proc,) = workers(url, "tls", [tmp_path / "w"])
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out + err)[-3000:]
    summary = json.loads((tmp_path / "w" / "summary.json").read_bytes())
    assert summary["verdict"] == "complete" and summary["responses"] > 5
    assert SECRET not in worker_log(tmp_path / "w")
