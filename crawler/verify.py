"""``autoblog-archive verify DIR``: is this archive whole and self-consistent?

Checks what a preservation audit asks: every WARC readable to its end with valid
block and payload digests, a ``warcinfo`` record first, every response paired with
its request (adjacent, ``WARC-Concurrent-To``, same date and target), every conversion
record of the text WARC files (``archive/text/``) referring to a response record of the
archive with its target and date, no ``.open`` leftovers, and every CDXJ line pointing at
a real record of the named file; then that
every capture the history lists is still in a WARC file. Then the audit that closes every
crawl (crawler.history.audit), on what the WARC files hold now: each item the farm
declared that the archive lacks is one ``MISSING`` line (a shortfall, not damage).
``--qa`` then replays the pages in a browser (crawler/qa/).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warcio.timeutils import iso_date_to_timestamp

from crawler.escaping import terminal
from crawler.exitcodes import UsageError
from crawler.layout import HISTORY_NAME, OutputLayout
from crawler.spill import DiskMap
from crawler.untrusted import shown
from crawler.warc.names import OPEN_SUFFIX, WARC_SUFFIX, index_name_problem, warc_name_problem
from crawler.warc.reader import read_record_at, walk_file

if TYPE_CHECKING:
    from crawler.context import RunContext
    from crawler.history.audit import AuditBounds
    from crawler.history.consistency import Unheld


@dataclass
class Report:
    """What ``verify`` found: counts, defects and missing items."""

    files: int = 0
    records: int = 0
    cdxj_lines: int = 0
    problems: list[str] = field(default_factory=list)
    # What the farm declared that the archive lacks (the audit): not damage, a shortfall.
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong or missing."""
        return not self.problems and not self.missing

    @property
    def verdict(self) -> str:
        """The verdict: OK, or what was found."""
        if self.ok:
            return "OK"
        found = [f"{len(self.problems)} defects"] if self.problems else []
        found += [f"{len(self.missing)} missing items"] if self.missing else []
        return f"FAILED ({', '.join(found)})"


def check_warc(
    path: Path,
    report: Report,
    responses: DiskMap | None = None,
    captures: DiskMap | None = None,
) -> None:
    """Digests, warcinfo first, response/request pairing of one file. ``responses``: note
    each response record (id -> target and date) in it; ``captures``: the file is a text
    WARC file, each of whose conversion records must refer to one of those."""
    previous = None
    # The stored (still content-coded) blocks, in chunks: digests are over those bytes,
    # and a compressed bomb is never inflated.
    with walk_file(path, check_digests=True) as walk:
        for index, record in enumerate(walk):
            headers = record.rec_headers
            rtype = record.rec_type
            where = f"{path.name} offset {record.offset}"
            if record.defect:
                report.problems.append(f"{where}: {record.defect}")
            if responses is not None and rtype == "response" and record.record_id:
                responses[record.record_id] = _capture_key(headers)
            if captures is not None and index > 0:
                check_conversion(headers, rtype, captures, where, report)
            if index == 0 and rtype != "warcinfo":
                report.problems.append(f"{where}: first record is {rtype}, not warcinfo")
            if record.digest_problems:
                report.problems.append(f"{where}: digest mismatch {list(record.digest_problems)}")
            if rtype == "request":
                if previous is None or previous[0] not in ("response", "revisit"):
                    report.problems.append(f"{where}: request without its response before it")
                else:
                    _, prev_id, prev_date, prev_uri = previous
                    if headers.get_header("WARC-Concurrent-To") != prev_id:
                        report.problems.append(f"{where}: request not concurrent to {prev_id}")
                    if headers.get_header("WARC-Date") != prev_date:
                        report.problems.append(f"{where}: request date differs from response")
                    if headers.get_header("WARC-Target-URI") != prev_uri:
                        report.problems.append(f"{where}: request target differs")
            elif previous is not None and previous[0] in ("response", "revisit"):
                report.problems.append(f"{where}: response {previous[1]} has no request")
            previous = (rtype, record.record_id, headers.get_header("WARC-Date"), record.target_uri)
        stopped = walk.stopped(path.name)
    if stopped:
        report.problems.append(stopped)
    if previous is not None and previous[0] in ("response", "revisit"):
        report.problems.append(f"{path.name}: last response {previous[1]} has no request")
    if walk.count == 0:
        report.problems.append(f"{path.name}: no records")
    report.records += walk.count
    report.files += 1


def _capture_key(headers: Any) -> str:
    """A record's target and date (to the second, as the CDXJ has it), as one string."""
    date = headers.get_header("WARC-Date") or ""
    try:
        date = iso_date_to_timestamp(date)
    except (ValueError, TypeError):
        pass
    return f"{date} {headers.get_header('WARC-Target-URI')}"


def check_conversion(
    headers: Any, rtype: str, captures: DiskMap, where: str, report: Report
) -> None:
    """A record of a text WARC file (crawler.corpus.wet): a conversion record whose
    ``WARC-Refers-To`` names a response record of the archive, of the same target and
    date (the capture its text was read from)."""
    if rtype != "conversion":
        report.problems.append(f"{where}: a {rtype} record in a text WARC file")
        return
    refers = headers.get_header("WARC-Refers-To")
    capture = captures.get(refers) if refers else None
    if capture is None:
        report.problems.append(
            f"{where}: conversion record refers to {refers!r}, no response record of the archive"
        )
    elif capture != _capture_key(headers):
        report.problems.append(
            f"{where}: conversion record of {_capture_key(headers)} refers to the capture {capture}"
        )


def check_warcs(layout: OutputLayout, report: Report) -> None:
    """Every WARC file of a collection, its text WARC files included."""
    texts = layout.text_warcs()
    responses = DiskMap() if texts else None
    try:
        for path in [*layout.warcs(), *texts]:
            problem = warc_name_problem(path.name)
            if problem is not None:
                # Named quoted and escaped: a raw newline would forge a line of this report.
                report.problems.append(f"{shown(path)}: {problem}, left out of the indexes")
                continue
            if path.parent == layout.archive:
                check_warc(path, report, responses=responses)
            else:
                check_warc(path, report, captures=responses)
    finally:
        if responses is not None:
            responses.close()


def check_cdxj(layout: OutputLayout, report: Report) -> None:
    """Every CDXJ line opens, at its offset, a record with its URL and timestamp."""
    if not layout.cdxj.exists():
        report.problems.append(f"{layout.cdxj}: missing CDXJ index")
        return
    previous_key = ""
    with open(layout.cdxj, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            report.cdxj_lines += 1
            where = f"index.cdxj line {lineno}"
            try:
                key, ts, blob = line.rstrip("\n").split(" ", 2)
                fields = json.loads(blob)
                name, offset, url = fields["filename"], int(fields["offset"]), fields["url"]
                if not isinstance(name, str) or index_name_problem(name) or offset < 0:
                    raise ValueError(f"bad filename or offset {name!r} {offset!r}")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                report.problems.append(f"{where}: malformed line ({exc!r}): {line[:120]!r}")
                continue
            if previous_key and f"{key} {ts}" < previous_key:
                report.problems.append(f"{where}: not sorted")
            previous_key = f"{key} {ts}"
            path = layout.archive / name
            if not path.exists():
                report.problems.append(f"{where}: {name} does not exist")
                continue
            try:
                record = read_record_at(path, offset, limit=0)
                uri = record.header("WARC-Target-URI")
                date = iso_date_to_timestamp(record.header("WARC-Date"))
            except Exception as exc:  # noqa: BLE001 - a damaged record is a defect
                report.problems.append(f"{where}: no readable record at offset ({exc!r})")
                continue
            if uri != url or date != ts:
                report.problems.append(f"{where}: points at {uri} {date}, not {url}")


def check_history(root: Path, report: Report) -> list[Unheld] | None:
    """Every capture ``history.sqlite`` lists is in a WARC and in the index; returns the
    captures that are not (None: no readable history)."""
    from crawler.history.consistency import unheld_captures
    from crawler.history.files import read_capture_locations
    from crawler.history.validate import HistoryError

    path = OutputLayout(root).history
    if not path.exists():
        return None  # optional: rebuilt from the WARCs by the next crawl or `reindex`
    try:
        unheld = unheld_captures(read_capture_locations(path), root)
    except HistoryError as exc:
        # A defect of the archive like any other: the WARCs are still checked and listed.
        report.problems.append(str(exc))
        return None
    except sqlite3.Error as exc:
        report.problems.append(f"{HISTORY_NAME}: unreadable ({exc}); run `reindex` to rebuild it")
        return None
    by_reason: dict[str, list] = {}
    for capture in unheld:
        by_reason.setdefault(capture.reason, []).append(capture)
    for reason, captures in sorted(by_reason.items()):
        examples = ", ".join(f"{c.url} ({c.filename})" for c in captures[:3])
        more = f" and {len(captures) - 3} more" if len(captures) > 3 else ""
        report.problems.append(
            f"{HISTORY_NAME}: {len(captures)} captures it lists are missing ({reason}): "
            f"{examples}{more}"
        )
    return unheld


def check_audit(root: Path, report: Report, unheld: list[Unheld], bounds: AuditBounds) -> None:
    """The audit that closes every crawl (crawler.history.audit), run on what the WARC
    files hold now: one missing item per item the farm declared that the archive lacks."""
    from crawler.history.archive_view import ArchiveView
    from crawler.history.audit import (
        AuditScope,
        audit_archive,
        missing_before,
    )
    from crawler.history.files import read_only
    from crawler.scope import Scope
    from crawler.urls import autoblog_base

    # Captures not in the index are still in their file: held, only not replayable.
    lost = frozenset((u.filename, u.offset) for u in unheld if u.reason != "not in the index")
    archives = [layout.archive for layout in OutputLayout.find(root)]
    try:
        with read_only(OutputLayout(root).history) as conn:
            conn.row_factory = sqlite3.Row
            seeds: set[str] = set()
            for (raw,) in conn.execute("SELECT seeds FROM runs"):
                listed = json.loads(raw or "[]")
                seeds.update(s for s in listed if isinstance(s, str))
            # Autoblogs named with --autoblogs are written nowhere but in what the last
            # crawl's audit found missing of them.
            named = [m.url for m in missing_before(conn) if m.what == "autoblog"]
            scope = AuditScope(sorted(seeds), Scope(autoblog_base(s) for s in seeds), named)
            view = ArchiveView(conn, archives, bounds.read_limit, lost)
            audit = audit_archive(view, scope, bounds)
    except (sqlite3.Error, ValueError) as exc:
        report.problems.append(f"{HISTORY_NAME}: cannot be audited ({exc})")
        return
    report.missing += [
        item.line() if item.url == item.autoblog else f"{item.line()}, autoblog {item.autoblog}"
        for item in audit.missing
    ]
    if audit.missing_total > len(audit.missing):
        more = audit.missing_total - len(audit.missing)
        report.missing.append(f"and {more} more (AUDIT_MAX_MISSING)")


def verify(root: str | Path, context: RunContext) -> Report:
    """Check an output folder, or one WARC file alone (its records, digests, pairing); the
    audit reads as deep as ``context`` says (AUDIT_*, DOWNLOAD_MAXSIZE)."""
    report = Report()
    root = Path(root)
    if root.is_file() and root.name.endswith((WARC_SUFFIX, WARC_SUFFIX + OPEN_SUFFIX)):
        check_warc(root, report)
        return report
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"{root} is a file, not an output folder",
            "give the folder a crawl wrote, or one .warc.gz file",
        )
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    layouts = OutputLayout.find(root)
    if not layouts:
        report.problems.append(f"{root}: no collections/ folder, nothing to verify")
    for layout in layouts:
        for leftover in layout.open_warcs():
            report.problems.append(f"{shown(leftover.name)}: unfinished .open file")
        if not layout.warcs():
            report.problems.append(f"{layout.archive}: no WARC files")
        check_warcs(layout, report)
        check_cdxj(layout, report)
    if layouts:
        unheld = check_history(root, report)
        if unheld is not None:
            from crawler.history.audit import AuditBounds

            check_audit(root, report, unheld, AuditBounds.of(context))
    return report


def run_verify(args: argparse.Namespace) -> int:
    """Handler of ``autoblog-archive verify``: check the folder (then ``qa``)."""
    from crawler.context import command_context

    context = command_context(args.set)  # every value checked before anything is read
    qa = getattr(args, "qa", False)
    if qa:
        from crawler.qa.browser import check_prerequisites

        check_prerequisites()  # what to install is said before anything long runs
    report = verify(args.directory, context)
    for problem in report.problems:
        print(terminal(f"DEFECT  {problem}"))
    for item in report.missing:
        print(terminal(f"MISSING  {item}"))
    print(
        terminal(
            f"{report.verdict}: {report.files} WARC files, {report.records} records, "
            f"{report.cdxj_lines} CDXJ lines checked in {args.directory}"
        )
    )
    code = 0 if report.ok else 1
    if qa:
        from crawler.qa.command import run_qa

        code = max(code, run_qa(args))
    return code
