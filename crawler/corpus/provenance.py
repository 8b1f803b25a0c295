"""Where a packaged dataset came from, as PROV-O for ``croissant.json``: the crawl (its
runs, the WARCs' ``warcinfo`` records, the capture dates) and the extraction.

Text from outside only ever becomes a JSON value (see :mod:`crawler.corpus.croissant`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crawler.history.files import run_seeds
from crawler.history.readback import READ_ERRORS, first_warcinfo
from crawler.layout import OutputLayout


def warcinfos(base: Path) -> list[dict[str, str]]:
    """The warcinfo fields of every WARC file of the folder (symbolic links not followed,
    an unreadable file skipped: they describe the crawl, they do not make the dataset)."""
    found = []
    for layout in OutputLayout.find(base):
        for warc in layout.warcs():
            if warc.is_symlink():
                continue
            try:
                fields = first_warcinfo(warc)
            except READ_ERRORS:
                continue
            if fields:
                found.append(fields)
    return found


def unique(values: Iterable[str | None]) -> list[str]:
    """The values given, once each, in order, none empty."""
    return list(dict.fromkeys(v for v in values if v))


def _property(name: str, value: object) -> dict[str, Any]:
    """A schema.org ``PropertyValue``."""
    return {"@type": "PropertyValue", "name": name, "value": value}


def _agent(name: str, version: str | None) -> dict[str, Any]:
    """A PROV software agent, its version when known."""
    agent: dict[str, Any] = {"@type": "prov:SoftwareAgent", "name": name}
    if version:
        agent["softwareVersion"] = version
    return agent


def _software(software: str) -> dict[str, Any]:
    """A warcinfo's ``autoblog-archive/0.2.0 (Scrapy, warcio)`` as a PROV software agent."""
    name, _, version = software.split(" ", 1)[0].partition("/")
    return _agent(name, version)


def crawl_activity(
    runs: list[dict[str, Any]], infos: list[dict[str, str]], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """The crawl as one PROV activity: its runs (history.sqlite rows), what each WARC
    file's warcinfo says (software, robots.txt policy, User-Agent, operator), the capture
    dates of the records."""
    captured = sorted(r["crawl_date"] for r in records if r.get("crawl_date"))
    started = unique([*(r.get("started") for r in runs), *captured[:1]])
    ended = unique([*(r.get("finished") for r in reversed(runs)), *captured[-1:]])
    activity: dict[str, Any] = {
        "@type": "prov:Activity",
        "@id": "crawl",
        "name": "crawl of Projet Autoblog farms into WARC files",
        "prov:startedAtTime": min(started) if started else None,
        "prov:endedAtTime": max(ended) if ended else None,
    }
    seeds = unique(s for r in runs for s in run_seeds(r))
    if seeds:
        activity["prov:used"] = [{"@type": "prov:Entity", "url": s} for s in seeds]
    agents = [_software(s) for s in unique(i.get("software") for i in infos)]
    if agents:
        activity["prov:wasAssociatedWith"] = agents
    properties = [_property("runs", len(runs))] if runs else []
    for name, key in (("robots.txt", "robots"), ("User-Agent", "http-header-user-agent")):
        properties += [_property(name, v) for v in unique(i.get(key) for i in infos)]
    properties += [_property("operator", v) for v in unique(i.get("operator") for i in infos)]
    if properties:
        activity["additionalProperty"] = properties
    return {k: v for k, v in activity.items() if v is not None}


def extraction_activity(records: list[dict[str, Any]]) -> dict[str, Any]:
    """How the records were made from the captures: the extractor and the pipeline."""
    agents: dict[tuple[str, str], None] = {}
    for r in records:
        ext = r.get("extraction") or {}
        pipeline, _, release = str(ext.get("pipeline") or "").partition(" ")
        for name, version in ((ext.get("tool"), ext.get("version")), (pipeline, release)):
            if name:
                agents[(str(name), str(version or ""))] = None
    return {
        "@type": "prov:Activity",
        "@id": "extraction",
        "name": "one record per article, text by the extractor on the article's own block",
        "prov:used": {"@id": "crawl"},
        "prov:wasAssociatedWith": [_agent(name, version) for name, version in agents],
    }
