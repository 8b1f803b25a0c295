"""WARC files: writing them, reading them back, repairing them, indexing them.

The bottom layer: nothing here imports Scrapy, the history, the corpus or anything else
of the crawl above it (``tests/test_layering.py`` holds it to that). Bounds come in as
arguments, never from the settings.

- :mod:`crawler.warc.names`: file names, made, parsed and checked;
- :mod:`crawler.warc.writer`: rolling ``.warc.gz`` files, one gzip member per record;
- :mod:`crawler.warc.records`: the records of one capture (response or revisit, request,
  metadata), built with warcio from what was fetched;
- :mod:`crawler.warc.reader`: bounded reads of one record, and the one walk over every
  record of a file (verify, reindex, extract, merge, repair);
- :mod:`crawler.warc.recovery`: cutting a file back to its last complete record group;
- :mod:`crawler.warc.cdxj`: the CDXJ index.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WarcPointer:
    """Where a record is: enough for a reader to jump straight to it. The one shape of
    this idea, whether the writer, the history, the CDXJ or a corpus record holds it."""

    filename: str
    offset: int
    length: int
    record_id: str

    def as_dict(self) -> dict[str, object]:
        """The pointer as JSON fields."""
        return {
            "filename": self.filename,
            "offset": self.offset,
            "length": self.length,
            "record_id": self.record_id,
        }
