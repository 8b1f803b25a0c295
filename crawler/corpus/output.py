"""Where ``extract`` writes its corpus: checked first, then put in place whole.

A folder holds one corpus. ``extract`` writing beside a crawl's ``corpus/run-*/`` made a
second copy of the same records (``package`` then counted every article twice), and
writing over an earlier ``extract`` mixed old and new parts. So ``extract`` refuses a
crawl's output folder and a folder that holds a corpus, unless told ``--force``; and it
always writes the new corpus in a sibling folder (``.corpus-new-*``) that replaces
``corpus/`` as a whole once complete: a failure (a full disk, Ctrl-C) leaves the old
corpus as it was. The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere,
two renames.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crawler.corpus.shards import corpus_shards
from crawler.exitcodes import UsageError
from crawler.folder import check_output_folder
from crawler.layout import CORPUS_NEW_PREFIX, CORPUS_OLD_PREFIX, OutputLayout

FORCE_HINT = "give another --output, or --force to replace its corpus with the one extracted"


def holds_crawl(root: Path) -> bool:
    """Whether ``root`` is a crawl's output folder (a history, or a pywb collection)."""
    return OutputLayout(root).history.exists() or bool(OutputLayout.find(root))


def check_extract_output(output: str | os.PathLike[str], force: bool) -> Path:
    """The output folder of ``extract``, or a :class:`UsageError` before anything is
    written: a file, a folder it cannot write, a crawl's folder or one holding a corpus
    (those two unless ``force``)."""
    root = check_output_folder(output)
    if force or not root.is_dir():
        return root
    if holds_crawl(root):
        raise UsageError(f"output {root} is a crawl's output folder", FORCE_HINT)
    if corpus_shards(root):
        raise UsageError(f"output {root} already holds a corpus", FORCE_HINT)
    return root


def remove_leftovers(root: Path) -> None:
    """Remove what a killed ``extract`` left beside ``corpus/`` (call under the run lock)."""
    if not root.is_dir():
        return
    for entry in os.scandir(root):
        if entry.name.startswith((CORPUS_NEW_PREFIX, CORPUS_OLD_PREFIX)):
            remove_path(Path(entry.path))


@contextmanager
def replaced_corpus(root: str | os.PathLike[str]) -> Iterator[Path]:
    """A new, empty folder to write a corpus into; it becomes ``<root>/corpus`` (the one
    there before removed) when the block ends, or is removed if the block fails."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    new = new_folder(root, CORPUS_NEW_PREFIX)
    try:
        yield new
        put_in_place(new, OutputLayout(root).corpus, CORPUS_OLD_PREFIX)
    except BaseException:
        remove_path(new)
        raise


def new_folder(parent: Path, prefix: str) -> Path:
    """A new, empty folder in ``parent`` to be put in place whole (:func:`put_in_place`)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def put_in_place(new: Path, target: Path, old_prefix: str) -> None:
    """``new`` becomes ``target``, the folder there before removed (``old_prefix``: its
    name while it is, where the swap cannot be one atomic exchange)."""
    new.chmod(0o755)  # mkdtemp's 0700 would not be the usual folder's mode
    if not os.path.lexists(target):
        os.rename(new, target)
        return
    if _exchange(new, target):
        remove_path(new)  # now the old one
        return
    old = Path(tempfile.mkdtemp(prefix=old_prefix, dir=target.parent))
    os.rename(target, old / target.name)
    os.rename(new, target)
    remove_path(old)


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that cannot be done."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # a kernel or file system without it
    raise OSError(code, os.strerror(code), str(b))


def remove_path(path: Path) -> None:
    """Remove a folder (or a symlink or file standing there), never following a link."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)
