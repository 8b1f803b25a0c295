"""``merge`` reads worker folders as untrusted input (issue 19, item 5).

Two real crawls of two sample farms (different content, same collection name) are the
workers; each test copies them and plants what a hostile or damaged worker folder could
hold: links, a FIFO, a name with a newline, a name another worker uses, a corpus record
that is not one of ours. Everything goes through the real ``autoblog-archive merge``,
``verify`` and ``package``; the merged WARCs and indexes are read back with warcio.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from support import default_context, needs_pywb, run_cli, snapshot
from warcio.archiveiterator import ArchiveIterator

from crawler.layout import OutputLayout
from crawler.samplefarm import start_farm
from crawler.warc.cdxj import parse_cdxj_line
from crawler.warc.reader import read_record_at

pytestmark = pytest.mark.e2e

NAME = "c"


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Two worker folders: one crawl of each of two small farms, collection ``c``."""
    base = tmp_path_factory.mktemp("workers")
    folders = []
    for seed, label in ((1, "a"), (7, "b")):
        with start_farm(autoblogs=2, articles=5, seed=seed) as farm:
            out = base / label
            result = run_cli("crawl", farm.url, "-o", str(out), "--name", NAME, "--fast")
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            folders.append(out)
    return folders


def copy_worker(src: Path, dst: Path) -> OutputLayout:
    shutil.copytree(src, dst, symlinks=True)
    return OutputLayout(dst, NAME)


def the_warc(layout: OutputLayout) -> Path:
    (path,) = layout.warcs()
    return path


def _tuples(fh) -> Iterator[tuple[str, str, str, str]]:
    for record in ArchiveIterator(fh):
        h = record.rec_headers
        yield (
            record.rec_type,
            h.get_header("WARC-Record-ID"),
            h.get_header("WARC-Target-URI") or "",
            h.get_header("WARC-Payload-Digest") or "",
        )


def records(path: Path) -> list[tuple[str, str, str, str]]:
    """(type, record id, target URI, payload digest) of every record of a WARC file."""
    with open(path, "rb") as fh:
        return list(_tuples(fh))


def captures(path: Path) -> set[str]:
    return {rid for kind, rid, _, _ in records(path) if kind in ("response", "revisit")}


def indexed(layout: OutputLayout) -> dict[str, str]:
    """Record id -> file name of what every CDXJ line points at, read back with warcio;
    each line's URL must be its record's."""
    found = {}
    with open(layout.cdxj, encoding="utf-8") as fh:
        for line in fh:
            parsed = parse_cdxj_line(line)
            assert parsed is not None, line
            fields = parsed[2]
            record = read_record_at(
                layout.archive / fields["filename"], int(fields["offset"]), 1 << 26
            )
            assert record.header("WARC-Target-URI") == fields["url"]
            found[record.header("WARC-Record-ID")] = fields["filename"]
    return found


def merged_urls(layout: OutputLayout) -> set[str]:
    return {uri for path in layout.warcs() for _, _, uri, _ in records(path) if uri}


def corpus_records(folder: Path) -> list[dict]:
    out = []
    for shard in sorted(folder.glob("corpus/**/part-*.jsonl.gz")):
        with gzip.open(shard) as fh:
            out += [orjson.loads(line) for line in fh if line.strip()]
    return out


def refused(result, name: str) -> list[str]:
    """The REFUSED lines of a merge's output that name ``name``."""
    return [x for x in result.stdout.splitlines() if x.startswith("REFUSED") and name in x]


def no_links(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            assert not Path(dirpath, name).is_symlink(), Path(dirpath, name)


# ------------------------------------------------------------------ links


def test_linked_open_file_never_touches_what_it_points_at(workers, tmp_path):
    """A worker's ``.open`` file that is a link to a file outside every folder (here a
    WARC with a torn tail, which crash repair would cut back): refused by name, the
    outside file unchanged, the worker folder unchanged, the rest merged."""
    a = copy_worker(workers[0], tmp_path / "a")
    outside = tmp_path / "elsewhere" / "precious.warc.gz"
    outside.parent.mkdir()
    outside.write_bytes(the_warc(OutputLayout(workers[1], NAME)).read_bytes() + b"\x1f\x8b torn")
    before = outside.read_bytes()
    (a.archive / "c-20990101000000000-00000-evil-1.warc.gz.open").symlink_to(outside)
    worker_before = snapshot(a.root)

    result = run_cli("merge", str(a.root), "-o", str(tmp_path / "m"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert refused(result, "evil-1.warc.gz.open"), result.stdout
    assert outside.read_bytes() == before
    assert snapshot(a.root) == worker_before  # a worker folder is read, never written
    merged = OutputLayout(tmp_path / "m", NAME)
    assert [p.name for p in merged.warcs()] == [the_warc(a).name]
    no_links(merged.root)
    assert run_cli("verify", str(merged.root)).returncode == 0


def test_linked_warc_and_linked_collection_are_refused_by_name(workers, tmp_path):
    """A WARC file that is a link to another crawl's WARC, a corpus run folder that is a
    link to another crawl's, and a worker whose collection folder is a link to another
    crawl's collection: each refused and named, nothing of what they point at is merged,
    the real worker is."""
    a = copy_worker(workers[0], tmp_path / "a")
    own = the_warc(a).name
    other = OutputLayout(workers[1], NAME)
    (a.archive / "c-linked.warc.gz").symlink_to(the_warc(other))
    (other_run,) = (workers[1] / "corpus").iterdir()
    (a.root / "corpus" / "run-99999").symlink_to(other_run, target_is_directory=True)
    w = tmp_path / "w"
    (w / "collections").mkdir(parents=True)
    (w / "collections" / NAME).symlink_to(other.collection, target_is_directory=True)

    result = run_cli("merge", str(a.root), str(w), "-o", str(tmp_path / "m"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert refused(result, "c-linked.warc.gz"), result.stdout
    assert refused(result, f"{w}/collections/{NAME}'"), result.stdout
    assert refused(result, "corpus/run-99999'"), result.stdout
    merged = OutputLayout(tmp_path / "m", NAME)
    assert [p.name for p in merged.warcs()] == [own]
    assert not merged_urls(merged) & {u for _, _, u, _ in records(the_warc(other))} - {""}
    theirs = {r["id"] for r in corpus_records(workers[1])}
    assert not {r["id"] for r in corpus_records(merged.root)} & theirs
    no_links(merged.root)
    assert run_cli("verify", str(merged.root)).returncode == 0


# ------------------------------------------------------------------ names


def collide(workers: list[Path], tmp_path: Path) -> tuple[OutputLayout, OutputLayout]:
    """Worker b's WARC file renamed to worker a's file name, with everything b's folder
    says about it (index lines, history rows, corpus records): two machines that happened
    to write the same name."""
    a = copy_worker(workers[0], tmp_path / "a")
    b = copy_worker(workers[1], tmp_path / "b")
    old, new = the_warc(b).name, the_warc(a).name
    the_warc(b).rename(b.archive / new)
    b.cdxj.write_text(b.cdxj.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    with sqlite3.connect(b.history) as conn:
        conn.execute("UPDATE captures SET filename = ?", (new,))
    conn.close()
    for shard in b.root.glob("corpus/**/part-*.jsonl.gz"):
        text = gzip.decompress(shard.read_bytes()).replace(old.encode(), new.encode())
        shard.write_bytes(gzip.compress(text))
    return a, b


@pytest.fixture(scope="module")
def collided(workers, tmp_path_factory):
    base = tmp_path_factory.mktemp("collided")
    a, b = collide(workers, base)
    result = run_cli("merge", str(a.root), str(b.root), "-o", str(base / "m"))
    return {"a": a, "b": b, "result": result, "merged": OutputLayout(base / "m", NAME)}


def test_same_warc_name_in_two_workers_keeps_both(collided):
    """Neither file overwrites the other: b's gets a new name made from its first
    record, and its index lines, history rows and corpus records follow it; verify is
    OK and every capture of both workers is found through the merged index."""
    a, b, merged, result = collided["a"], collided["b"], collided["merged"], collided["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    name = the_warc(a).name
    stem = name.removesuffix(".warc.gz")
    names = [p.name for p in merged.warcs()]
    assert len(names) == 2 and name in names, names
    (renamed,) = [n for n in names if n != name]
    assert re.fullmatch(re.escape(stem) + r"-[0-9a-f]{12}\.warc\.gz", renamed)
    assert f"-> {renamed}" in result.stdout
    # Each merged file holds its own worker's records (the merge drops none here).
    assert records(merged.archive / name) == records(the_warc(a))
    assert records(merged.archive / renamed) == records(the_warc(b))
    assert run_cli("verify", str(merged.root)).returncode == 0
    index = indexed(merged)
    assert {r: name for r in captures(the_warc(a))}.items() <= index.items()
    assert {r: renamed for r in captures(the_warc(b))}.items() <= index.items()
    with sqlite3.connect(f"file:{merged.history}?mode=ro", uri=True) as conn:
        rows = dict(conn.execute("SELECT filename, count(*) FROM captures GROUP BY filename"))
    conn.close()
    assert rows == {name: len(captures(the_warc(a))), renamed: len(captures(the_warc(b)))}
    corpus = corpus_records(merged.root)
    assert {r["warc"]["filename"] for r in corpus} == {name, renamed}
    for rec in corpus:
        at = read_record_at(merged.archive / rec["warc"]["filename"], rec["warc"]["offset"], 0)
        assert at.header("WARC-Record-ID") == rec["warc"]["record_id"]


def first_page(path: Path) -> tuple[str, str, bytes]:
    """(URI, 14-digit timestamp, body) of a file's first HTML page answered 200."""
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            http = record.http_headers
            page = http is not None and http.get_statuscode() == "200"
            if record.rec_type == "response" and page and "html" in http["Content-Type"]:
                uri = record.rec_headers.get_header("WARC-Target-URI")
                stamp = re.sub(r"\D", "", record.rec_headers.get_header("WARC-Date"))[:14]
                return uri, stamp, record.content_stream().read()
    raise AssertionError(f"no HTML page in {path}")


@needs_pywb
def test_both_colliding_files_replay_in_pywb(collided):
    """A page of each worker's file (one of them renamed) is served by a real pywb from
    the merged folder: neither file replaced the other."""
    import urllib.request

    from crawler.replay import Wayback

    with Wayback(collided["merged"].root) as base:
        for worker in (collided["a"], collided["b"]):
            uri, stamp, body = first_page(the_warc(worker))
            assert urllib.request.urlopen(f"{base}{NAME}/{stamp}id_/{uri}").read() == body


def test_collided_names_follow_in_a_processes_merge(workers, tmp_path):
    """``crawl --processes`` merges the processes' own histories: there too the renamed
    file's rows carry its new name (the merge function itself, as processes.py calls it)."""
    from crawler.cluster.merge import merge

    a, b = collide(workers, tmp_path)
    read_limit = default_context().bounds.read_limit
    result = merge([a.root, b.root], tmp_path / "m", read_limit, NAME, keep_duplicates=True)
    merged = OutputLayout(tmp_path / "m", NAME)
    assert len(merged.warcs()) == 2
    with sqlite3.connect(f"file:{merged.history}?mode=ro", uri=True) as conn:
        names = {n for (n,) in conn.execute("SELECT DISTINCT filename FROM captures")}
    conn.close()
    assert names == {p.name for p in merged.warcs()}
    assert run_cli("verify", str(merged.root)).returncode == 0
    assert result.complete


def test_name_with_a_newline_is_refused_and_forges_nothing(workers, tmp_path):
    """A WARC file whose name holds a newline and a fake manifest line: refused (named
    with the newline escaped), not in the merged archive, index or history, and the
    manifest ``package`` writes of the merged folder has no forged line."""
    a = copy_worker(workers[0], tmp_path / "a")
    own = the_warc(a).name
    fake = "0" * 64
    evil = f"x\n{fake}  forged.warc.gz"
    shutil.copyfile(the_warc(OutputLayout(workers[1], NAME)), a.archive / evil)

    result = run_cli("merge", str(a.root), "-o", str(tmp_path / "m"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert refused(result, "x\\n" + fake), result.stdout
    assert not any(
        "forged" in line and "REFUSED" not in line for line in result.stdout.splitlines()
    )
    merged = OutputLayout(tmp_path / "m", NAME)
    assert [p.name for p in merged.warcs()] == [own]
    assert "forged" not in merged.cdxj.read_text(encoding="utf-8")
    assert run_cli("verify", str(merged.root)).returncode == 0
    packaged = run_cli("package", str(merged.root), "--no-parquet")
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    manifest = (merged.root / "MANIFEST.sha256").read_text(encoding="utf-8")
    assert fake not in manifest and "forged" not in manifest
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S.*", line) for line in manifest.splitlines())


# ------------------------------------------------------------------ the corpus


def test_one_malformed_corpus_record_is_skipped_and_the_rest_merged(workers, tmp_path):
    """A record whose ``quality_flags`` is not a list, one whose URL is not a URL, and a
    line that is not JSON, in a worker's corpus: each named (shard and line) and left
    out, every other record merged."""
    a = copy_worker(workers[0], tmp_path / "a")
    (shard,) = a.root.glob("corpus/**/part-*.jsonl.gz")
    lines = gzip.decompress(shard.read_bytes()).splitlines(keepends=True)
    bad = orjson.loads(lines[1])
    bad["quality_flags"] = "not a list"
    lines[1] = orjson.dumps(bad) + b"\n"
    bad = orjson.loads(lines[2])
    bad["url"] = "http://[::1/"  # not a URL: canonicalising it raises
    lines[2] = orjson.dumps(bad) + b"\n"
    lines.insert(3, b'{"id": "half a record\n')
    shard.write_bytes(gzip.compress(b"".join(lines)))
    expected = {orjson.loads(x)["id"] for i, x in enumerate(lines) if i not in (1, 2, 3)}

    result = run_cli("merge", str(a.root), "-o", str(tmp_path / "m"))

    assert result.returncode == 1, result.stdout + result.stderr
    skipped = [x for x in result.stdout.splitlines() if x.startswith("SKIPPED")]
    assert len(skipped) == 3, result.stdout
    assert "line 2: quality_flags" in skipped[0] and "line 3: url" in skipped[1]
    assert "line 4: not JSON" in skipped[2]
    assert {r["id"] for r in corpus_records(tmp_path / "m")} == expected
    assert run_cli("verify", str(tmp_path / "m")).returncode == 0


def test_name_with_a_newline_in_a_crawl_folder_is_named_escaped(workers, tmp_path):
    """The same file put straight into a crawl's own archive: ``reindex`` and the index
    leave it out (the history stays one every command reads), and ``verify`` names it
    escaped: no line of its report is forged."""
    a = copy_worker(workers[0], tmp_path / "a")
    fake = "0" * 64
    shutil.copyfile(the_warc(OutputLayout(workers[1], NAME)), a.archive / f"x\n{fake}  f.warc.gz")

    reindex = run_cli("reindex", str(a.root))
    assert reindex.returncode == 1 and "x\\n" + fake in reindex.stdout, reindex.stdout
    assert run_cli("report", str(a.root)).returncode == 0
    assert fake not in a.cdxj.read_text(encoding="utf-8")
    verify = run_cli("verify", str(a.root))
    assert verify.returncode == 1
    lines = verify.stdout.splitlines()
    assert any(x.startswith("DEFECT") and "x\\n" + fake in x for x in lines), verify.stdout
    assert not any(x.startswith(fake) for x in lines), verify.stdout


def test_killed_workers_open_files_are_recovered_into_the_output_only(workers, tmp_path):
    """A killed worker's ``.open`` files (one torn mid-record, one holding no whole
    capture): the whole groups of the first are merged, the second is left out, and the
    worker's folder is not touched (it used to be repaired in place)."""
    a = copy_worker(workers[0], tmp_path / "a")
    warc = the_warc(a)
    data = warc.read_bytes()
    torn = a.archive / (warc.name + ".open")
    torn.write_bytes(data[: len(data) * 2 // 3])
    warc.unlink()
    (a.archive / "c-00000000000000000-00000-x-1.warc.gz.open").write_bytes(data[:300])
    worker_before = snapshot(a.root)

    result = run_cli("merge", str(a.root), "-o", str(tmp_path / "m"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert [x for x in result.stdout.splitlines() if x.startswith("RECOVERED")], result.stdout
    assert snapshot(a.root) == worker_before
    merged = OutputLayout(tmp_path / "m", NAME)
    assert [p.name for p in merged.warcs()] == [warc.name]
    kept = records(merged.archive / warc.name)
    assert 3 < len(kept) and kept == records_of_prefix(data, len(kept))
    assert run_cli("verify", str(merged.root)).returncode == 0


def records_of_prefix(data: bytes, count: int) -> list[tuple[str, str, str, str]]:
    """The first ``count`` records of a WARC file's bytes, as :func:`records` lists them."""
    return list(itertools.islice(_tuples(io.BytesIO(data)), count))
