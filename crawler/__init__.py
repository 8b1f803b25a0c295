"""autoblog-archive: preserve Projet Autoblog farms as WARCs and a research corpus."""

__version__ = "0.2.0"
