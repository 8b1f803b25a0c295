"""How this program starts other Python processes: never importing from the operator's folder.

``python -c CODE`` and ``python -m MODULE`` put the current directory first on
``sys.path``: a ``random.py`` or ``json.py`` lying in the folder the operator runs from
would then replace the standard library module inside the child (the extraction workers'
fork server, the WACZ step, the processes of ``crawl --processes``). Our own command lines
therefore start ``python -P`` (no unsafe path first; Python 3.11+). Children that libraries
start themselves (multiprocessing's fork server and resource tracker, Dask's worker
processes) are ``python -c`` command lines we do not write: they inherit the environment,
where ``PYTHONSAFEPATH=1`` means the same as ``-P``. Both keep the installation's own paths
(site-packages, a user install, ``PYTHONPATH``), so the child imports what we import.
"""

from __future__ import annotations

import os
import sys

SAFE_PATH_VARIABLE = "PYTHONSAFEPATH"


def python_command(*args: str) -> list[str]:
    """``[python, -P, *args]``: this interpreter, the current directory not on its path."""
    return [sys.executable, "-P", *args]


def isolate_library_children() -> None:
    """Python children started by libraries from now on do not import from the current
    directory. Idempotent, and best called early, before other threads run (the command
    line does, first thing); the extraction pool and ``extract --dask`` call it again for
    hosts that do not go through the command line (Scrapyd)."""
    if os.environ.get(SAFE_PATH_VARIABLE) != "1":
        os.environ[SAFE_PATH_VARIABLE] = "1"
