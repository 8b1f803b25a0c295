"""Child processes never import from the folder the operator runs a command in.

``python -c``/``-m`` put the current directory first on ``sys.path``: a ``json.py`` or
``random.py`` lying there (a download, a student's script) would run inside every
extraction worker, the WACZ step or a ``--processes`` child. Each command here runs in a
folder holding such modules; each planted module notes who imported it, then becomes the
real module, so a run that did import it still finishes and only the note tells.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_cli

from crawler.samplefarm import start_farm

pytestmark = pytest.mark.e2e

# What the children import early: the fork server and resource tracker (selectors,
# random via tempfile), the WACZ step and the workers' extraction (json).
PLANTED = ("json", "random", "selectors")

SHIM = """
import os, sys
_fd = os.open({marker!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.write(_fd, ("%s imported by pid %d: %r\\n" % (__name__, os.getpid(), sys.argv)).encode())
os.close(_fd)
import importlib.machinery, importlib.util
_here = os.path.dirname(os.path.abspath(__file__))
_path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
_spec = importlib.machinery.PathFinder.find_spec(__name__, _path)
_module = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _module
_spec.loader.exec_module(_module)
"""


def plant(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    for name in PLANTED:
        (folder / f"{name}.py").write_text(SHIM.format(marker=str(marker)))
    return folder


def test_commands_run_from_a_folder_of_planted_modules_never_import_them(tmp_path):
    marker = tmp_path / "imported-from-the-current-folder.txt"
    here = plant(tmp_path / "operator", marker)
    out = tmp_path / "out"

    def run(*args: str) -> str:
        result = run_cli(*args, cwd=here)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
        return result.stdout

    with start_farm(autoblogs=2, articles=8, engine=["0.3.4", "0.2"], seed=4) as farm:
        run("crawl", farm.url, "-o", str(out), "--name", "f", "--fast", "--wacz")
        assert (out / "f.wacz").stat().st_size > 0
        run("crawl", farm.url, "-o", str(tmp_path / "two"), "--name", "f", "--fast",
            "--processes", "2")  # fmt: skip
    assert " 0 records" not in run("extract", str(out), "-o", str(tmp_path / "x"))
    run("extract", str(out), "-o", str(tmp_path / "d"), "--dask", "local", "--workers", "1")
    assert list((tmp_path / "d" / "corpus").glob("part-*.jsonl.gz"))
    run("package", str(out), "--no-parquet")
    run("demo", "-o", str(tmp_path / "demo"), "--autoblogs", "2", "--articles", "5")
    assert not marker.exists(), marker.read_text()
