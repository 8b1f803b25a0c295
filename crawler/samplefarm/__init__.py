"""Sample autoblog farm: a faithful, deterministic, fast stand-in for a Projet Autoblog farm.

It is the independent oracle the crawler is tested against: it imports nothing from the
crawler, the spiders or the pipelines. ``start_farm`` runs it as a subprocess.

The truth rule (``/_farm/truth``'s ``text``; one rule for every article, generated prose,
seed articles and real-world shapes alike, each truth typed out from it, never computed
from the markup): an article's text is the text its content block holds, as a reader sees
it on the page with styles and scripts off. Script and style source (escaped or not) is
not text, nor are attributes (image alt, link targets) or what an embed (``iframe``,
``video``) shows. Every block-level element (paragraph, heading, list item, table row,
caption, quotation, ``pre``, figure caption, ``div``) and every ``<br>`` starts a new
line; the cells of a table row are joined by one space; inline elements (links,
emphasis, ``sup``, spans, footnote tooltips) run on inside their line. Lines are trimmed,
runs of ASCII whitespace become one space, empty lines are dropped, no-break spaces stay,
and the text is NFC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["RunningFarm", "start_farm", "farm_argv", "stop_process"]


def farm_argv(**options: Any) -> list[str]:
    """Keyword options -> CLI flags (``error_rate=0.1`` -> ``--error-rate 0.1``; lists of
    engines become one ``--engine a b``; ``fault=[...]`` repeats ``--fault``, ``hostile=[...]``
    ``--hostile``)."""
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if key in ("fault", "faults", "hostile"):
            for f in [value] if isinstance(value, str) else value:
                argv += ["--hostile" if key == "hostile" else "--fault", f]
        elif key in ("engine", "engines"):
            argv += ["--engine", *([value] if isinstance(value, str) else value)]
        elif value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        else:
            argv += [flag, str(value)]
    return argv


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate ``proc``, and kill it if it has not ended within 10 s (a farm, nginx)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RunningFarm:
    """Handle on a farm subprocess: URL, control interface, stop."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.port = int(url.rstrip("/").rsplit(":", 1)[1])

    def _get(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(self.url + path.lstrip("/"), method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    def requests(self) -> list[dict]:
        """The request log (control requests excluded), in arrival order."""
        return [json.loads(x) for x in self._get("_farm/requests").splitlines() if x.strip()]

    def truth(self) -> dict:
        """What the farm serves: every autoblog and article (the tests' oracle)."""
        return json.loads(self._get("_farm/truth"))

    def grow(self, autoblog: str | None = None, n: int = 1) -> dict:
        """Publish ``n`` new articles in ``autoblog`` (the farm's first when none is named)."""
        q = f"n={int(n)}" + (f"&autoblog={urllib.parse.quote(autoblog)}" if autoblog else "")
        return json.loads(self._get(f"_farm/grow?{q}", method="POST"))

    def edit(self, autoblog: str | None = None, article: int = 0, text: str | None = None) -> dict:
        """Append a paragraph to article ``article`` (0 = the oldest) of ``autoblog``."""
        q = f"article={int(article)}" + (
            f"&autoblog={urllib.parse.quote(autoblog)}" if autoblog else ""
        )
        if text is not None:
            q += f"&text={urllib.parse.quote(text, safe='')}"
        return json.loads(self._get(f"_farm/edit?{q}", method="POST"))

    def delete(self, autoblog: str | None = None, n: int = 1) -> dict:
        """Delete the ``n`` newest articles of ``autoblog``; returns what was deleted."""
        q = f"n={int(n)}" + (f"&autoblog={urllib.parse.quote(autoblog)}" if autoblog else "")
        return json.loads(self._get(f"_farm/delete?{q}", method="POST"))

    def add(self, engine: str = "0.3.4", n: int = 12) -> dict:
        """A new autoblog of ``n`` articles; returns its folder and base URL."""
        q = f"engine={urllib.parse.quote(engine)}&n={int(n)}"
        return json.loads(self._get(f"_farm/add?{q}", method="POST"))

    def remove(self, autoblog: str) -> dict:
        """Delete an autoblog: unlisted, its URLs answer 404."""
        q = f"autoblog={urllib.parse.quote(autoblog)}"
        return json.loads(self._get(f"_farm/remove?{q}", method="POST"))

    def fault(self, autoblog: str, fault: str) -> dict:
        """Switch one of an autoblog's faults (``error=1``, ``error=0``, ``latency=200``...)."""
        q = f"autoblog={urllib.parse.quote(autoblog)}&fault={urllib.parse.quote(fault)}"
        return json.loads(self._get(f"_farm/fault?{q}", method="POST"))

    def stop(self) -> None:
        """Stop the farm's process (killed if it does not stop)."""
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> RunningFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_farm(**options: Any) -> RunningFarm:
    """Launch ``python -m crawler.samplefarm --port 0 ...`` and wait for its URL line."""
    options.setdefault("host", "127.0.0.1")
    options["port"] = options.get("port", 0)
    # -P: nothing imported from the current directory (what crawler.children does for the
    # crawler's own children; the oracle imports nothing from the crawler).
    cmd = [sys.executable, "-P", "-m", "crawler.samplefarm", *farm_argv(**options)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    prefix = "sample farm serving on "
    if not line.startswith(prefix):
        proc.kill()
        raise RuntimeError(f"sample farm failed to start: {line!r}")
    return RunningFarm(proc, line[len(prefix) :].strip())
