"""Reading a farm's own documents: its index page, its export, its media lists, its
sitemap. Each is read as a stream that keeps no tree and stops at ``limit`` entries: a
farm may list a hundred thousand autoblogs. The autoblogs' pages are
:mod:`crawler.parsing`'s.
"""

from __future__ import annotations

import codecs
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from urllib.parse import urljoin

import ijson
import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from crawler.parsing import XML_DECLARATION, absolute_link


@dataclass
class FarmPage:
    """What a farm's index lists: its autoblogs, its requisites, which exports it links."""

    autoblogs: list[str] = field(default_factory=list)
    requisites: list[str] = field(default_factory=list)
    linked: set[str] = field(default_factory=set)  # of the hrefs asked for
    cut: int = 0  # autoblogs and requisites left out (``limit``)


FEED_CHUNK = 1 << 16


def read_farm_page(
    body: str | bytes, url: str, limit: int = 0, wanted: Collection[str] = ()
) -> FarmPage:
    """A farm index (0.3 and 0.2 farm pages) read in one pass that keeps no tree.

    The autoblogs are the links ``//section[@id='autoblogs']//li/header/a/@href`` and
    ``//div[@class='vignette']/div/a/@href`` (distinct, in page order, absolute); the
    requisites, ``//img/@src | //link[@rel='stylesheet']/@href``. At most ``limit`` of
    each (0: all); ``cut`` counts the rest. A farm lists its autoblogs all on one page, so
    that page is read whole, however long: each element is dropped once read, and memory
    stays that of one list entry, not of the page's tree.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    body = XML_DECLARATION.sub("", body, count=1)
    page = FarmPage()
    bases: dict[str, None] = {}
    requisites: dict[str, None] = {}
    in_list = 0  # open <section id="autoblogs"> elements
    parser = lxml.etree.HTMLPullParser(events=("start", "end"))
    for at in range(0, len(body), FEED_CHUNK):
        parser.feed(body[at : at + FEED_CHUNK])
        for event, el in parser.read_events():
            tag = el.tag
            if event == "end":
                if tag == "section" and el.get("id") == "autoblogs":
                    in_list -= 1
                el.clear(keep_tail=True)
                parent = el.getparent()
                while parent is not None and el.getprevious() is not None:
                    del parent[0]
                continue
            if tag == "a":
                href = el.get("href")
                if href is not None:
                    if href in wanted:
                        page.linked.add(href)
                    if _is_farm_entry(el, in_list > 0):
                        if limit and len(bases) >= limit:
                            page.cut += 1  # counted, not resolved
                        else:
                            target = absolute_link(url, href)
                            if target:
                                bases.setdefault(target, None)
            elif tag == "section" and el.get("id") == "autoblogs":
                in_list += 1
            elif tag == "img" or (tag == "link" and el.get("rel") == "stylesheet"):
                src = el.get("src" if tag == "img" else "href")
                if src is not None:
                    target = urljoin(url, src)
                    if target not in requisites:
                        if limit and len(requisites) >= limit:
                            page.cut += 1
                        else:
                            requisites[target] = None
    try:
        parser.close()
    except lxml.etree.XMLSyntaxError:
        pass  # an empty or hopeless page: nothing listed
    page.autoblogs, page.requisites = list(bases), list(requisites)
    return page


def _is_farm_entry(a: HtmlElement, in_list: bool) -> bool:
    """``section#autoblogs … li/header/a`` (0.3) or ``div.vignette/div/a`` (0.2)."""
    parent = a.getparent()
    above = parent.getparent() if parent is not None else None
    if above is None:
        return False
    if in_list and parent.tag == "header" and above.tag == "li":
        return True
    return parent.tag == "div" and above.tag == "div" and above.get("class") == "vignette"


# -- the farm's exports (JSON, sitemap XML): read as a stream, never as one object ------

# A real export nests three levels; Python's own parser failed near 1,000 (RecursionError).
JSON_MAX_DEPTH = 64


class NestedTooDeeply(ValueError):
    """A JSON document nested deeper than :data:`JSON_MAX_DEPTH`."""


def _json_events(body: bytes) -> Iterator[tuple[int, str, Any]]:
    """(depth, event, value) of a JSON document, depth that of the enclosing container.

    ijson reads it as a stream (a farm's ``?export`` of a million entries took 718 MB as
    one ``json.loads``). Raises ``ValueError`` on what is not JSON (:class:`NestedTooDeeply`
    past :data:`JSON_MAX_DEPTH`).
    """
    depth = 0
    try:
        for event, value in ijson.basic_parse(BytesIO(body.removeprefix(UTF8_BOM))):
            if event == "start_map" or event == "start_array":
                yield depth, event, value
                depth += 1
                if depth > JSON_MAX_DEPTH:
                    raise NestedTooDeeply(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
            elif event == "end_map" or event == "end_array":
                depth -= 1
                yield depth, event, value
            else:
                yield depth, event, value
    except ijson.JSONError as exc:
        raise ValueError(f"not JSON: {exc}") from None


UTF8_BOM = b"\xef\xbb\xbf"


def read_export(body: bytes, farm_root: str, limit: int = 0) -> tuple[list[str], int]:
    """Base URLs from a farm's ``?export`` JSON (the keys of its top-level ``autoblogs``
    object, like ``autoblogs/<folder>``): at most ``limit`` (0: all), and how many more."""
    bases: dict[str, None] = {}
    cut = 0
    key = None  # the top-level key whose value is being read
    inside = False  # in the value of the top-level "autoblogs", an object
    for depth, event, value in _json_events(body):
        if depth == 1 and event == "map_key":
            key = value
        elif depth == 1 and event in ("start_map", "start_array") and key == "autoblogs":
            bases, cut = {}, 0  # a repeated key: the last one counts, as in a dict
            inside = event == "start_map"
        elif depth == 1 and event in ("end_map", "end_array"):
            inside = False
        elif inside and depth == 2 and event == "map_key":
            if limit and len(bases) >= limit:
                cut += 1  # counted, not resolved: a million entries cost seconds of urljoin
            else:
                bases.setdefault(urljoin(farm_root, value.strip("/") + "/"), None)
    return list(bases), cut


def read_media_list(body: bytes, limit: int = 0) -> tuple[object, list[str], int]:
    """An autoblog's ``?media`` JSON: its ``url`` (as found: any JSON value) and the
    names in its ``files`` (an object's values or an array's items, strings not starting
    with "."): at most ``limit`` (0: all), and how many more."""
    folder: object = None
    names: list[str] = []
    cut = 0
    key = None
    inside = False  # in the value of the top-level "files"
    for depth, event, value in _json_events(body):
        if depth == 1 and event == "map_key":
            key = value
        elif depth == 1 and key == "url" and event not in ("end_map", "end_array"):
            folder = value if event not in ("start_map", "start_array") else None
        elif depth == 1 and event in ("start_map", "start_array") and key == "files":
            names, cut, inside = [], 0, True
        elif depth == 1 and event in ("end_map", "end_array"):
            inside = False
        elif inside and depth == 2 and event == "string" and value and value[0] != ".":
            if limit and len(names) >= limit:
                cut += 1
            else:
                names.append(value)
    return folder, names, cut


def read_sitemap(body: bytes, limit: int = 0) -> tuple[list[str], int]:
    """The text of every ``loc`` element of a sitemap (any namespace, stripped), read as a
    stream; at most ``limit`` (0: all), and how many more.

    Parsed as Scrapy's XML selector would (UTF-8, errors replaced, recovering, no
    entities resolved, a comment splitting a text), a chunk at a time, each element
    dropped once read: memory is that of a chunk, not of the document (a sitemap of
    900,000 URLs took 1.3 GB as one tree).
    """
    locs: list[str] = []
    cut = 0
    parser = lxml.etree.XMLPullParser(
        events=("end",),
        encoding="utf-8",
        recover=True,
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
    )
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        for at in range(0, len(body) or 1, FEED_CHUNK):
            last = at + FEED_CHUNK >= len(body)
            parser.feed(decoder.decode(body[at : at + FEED_CHUNK], last).encode("utf-8"))
            if last:
                parser.close()
            for _, el in parser.read_events():
                if _local_name(el) == "loc":
                    # The loc's text nodes, as //loc/text() gives them.
                    for text in (el.text, *(child.tail for child in el)):
                        if text:
                            if limit and len(locs) >= limit:
                                cut += 1
                            else:
                                locs.append(text.strip())
                parent = el.getparent()
                if parent is not None and _local_name(parent) == "loc":
                    continue  # its tail is the loc's text: read when the loc ends
                el.clear(keep_tail=True)
                while parent is not None and el.getprevious() is not None:
                    del parent[0]
    except lxml.etree.XMLSyntaxError:
        pass  # what came before the damage is kept, as a recovering parser does
    return locs, cut


def _local_name(el: Any) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
