"""The layers of the code, read from its import statements (issue 21).

``crawler/warc/`` is the bottom layer: WARC files written, read, repaired and indexed,
with nothing of the crawl above it (Scrapy, the history, the corpus). The pipelines ask
the extensions through Scrapy, never import them. And no module imports itself back
through others (no known cycle is left; none may come back).

The module graph is built with ``ast`` from every ``import`` of ``crawler/``,
``pipelines/`` and ``spiders/``, those inside functions too (a lazy import is still a
dependency, only a later one).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crawler", "pipelines", "spiders")
SCRAPY = ("scrapy", "twisted", "scrapy_redis")
# Helpers the WARC layer may use: each imports nothing of the crawl (checked below).
LEAVES = {"crawler", "crawler.layout", "crawler.untrusted", "crawler.escaping", "crawler.spill"}
# Import cycles still to break, each a set of modules that import one another (a strongly
# connected component of the graph). Issue 21 broke them all (the last two: report.html's
# and croissant.json's vocabulary moved to the modules both sides import). Never add one.
KNOWN_CYCLES: list[set[str]] = []


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            # ``from crawler.warc import names`` imports the module crawler.warc.names.
            found.update(f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known)
    return found


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(our modules -> our modules they import, our modules -> every module they import)."""
    known = modules()
    every = {name: imports_of(name, path, known) for name, path in known.items()}
    ours = {name: {m for m in found if m in known} for name, found in every.items()}
    return ours, every


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def reached(edges: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def is_warc(name: str) -> bool:
    return name == "crawler.warc" or name.startswith("crawler.warc.")


def test_warc_layer_imports_nothing_from_above():
    ours, every = graph()
    warc = {name for name in ours if is_warc(name)}
    assert {"crawler.warc.reader", "crawler.warc.writer", "crawler.warc.names"} <= warc
    below = reached(ours, warc)
    above = sorted(m for m in below - warc if m not in LEAVES)
    assert not above, f"crawler/warc reaches modules above it: {above}"
    # The leaves it may use import nothing but one another and the WARC layer.
    for leaf in LEAVES:
        assert ours[leaf] <= LEAVES | warc, f"{leaf} is no leaf: {ours[leaf]}"
    scrapy = sorted(
        f"{name} imports {m}" for name in below for m in every[name] if m.split(".")[0] in SCRAPY
    )
    assert not scrapy, scrapy


@pytest.mark.e2e  # a child interpreter
def test_warc_layer_loads_without_the_crawl():
    """What the graph says, seen at run time: importing every module of the WARC layer
    loads neither Scrapy nor the history nor the corpus."""
    warc = sorted(name for name in modules() if is_warc(name))
    code = (
        "import importlib, sys\n"
        f"for name in {warc!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    loaded = [
        m
        for m in out
        if m.split(".")[0] in SCRAPY
        or m.startswith(("crawler.history", "crawler.corpus", "crawler.extensions"))
        or m.split(".")[0] in ("pipelines", "spiders")
    ]
    assert not loaded, loaded


def test_pipelines_do_not_import_the_extensions():
    ours, _ = graph()
    found = sorted(
        f"{name} imports {m}"
        for name, targets in ours.items()
        if name.split(".")[0] == "pipelines"
        for m in targets
        if m == "crawler.extensions" or m.startswith("crawler.extensions.")
    )
    assert not found, found


LOOKUPS = ("get_extension", "get_downloader_middleware", "get_item_pipeline",
           "get_spider_middleware")  # fmt: skip


def test_no_component_looks_another_up():
    """Components are handed what they share (crawler.services), never find each other."""
    found = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno} calls {node.attr}"
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in LOOKUPS
    )
    assert not found, found


def test_history_package_knows_nothing_of_the_crawl_components():
    """The history service is injected into the components: it imports none of them."""
    ours, _ = graph()
    above = ("crawler.extensions", "crawler.services", "pipelines", "spiders", "crawler.cluster.")
    found = sorted(
        f"{name} imports {m}"
        for name, targets in ours.items()
        if name.startswith("crawler.history")
        for m in targets
        if m.startswith(above) and m != "crawler.cluster"
    )
    assert not found, found


def test_import_cycles_only_shrink():
    ours, _ = graph()
    found = cycles(ours)
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not new, f"new or grown import cycles: {new}"
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {gone}"
