"""autoblog-archive: preserve Projet Autoblog farms as WARCs and a research corpus."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The version is written once, in pyproject.toml; the installed metadata carries it.
    __version__ = version("autoblog-archive")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
