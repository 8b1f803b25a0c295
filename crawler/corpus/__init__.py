"""The research corpus: clean article text from captured pages, the same at crawl time
and from WARCs alone.

- :mod:`crawler.corpus.extraction`: THE extraction function (one page in, article
  records out), with :mod:`~crawler.corpus.text`, :mod:`~crawler.corpus.dates` and the
  run-time self-check :mod:`~crawler.corpus.selfcheck`;
- :mod:`crawler.corpus.pool`: extraction in worker processes (pebble), warmed by
  :mod:`~crawler.corpus.preload`;
- :mod:`crawler.corpus.builder`: pages in, records spooled, shards out at the end
  (:mod:`~crawler.corpus.dedup` annotates duplicates, :mod:`~crawler.corpus.shards`
  writes and reads them);
- :mod:`crawler.corpus.from_warcs`: ``autoblog-archive extract``;
- :mod:`crawler.corpus.dataset`: ``autoblog-archive package`` (manifest, card, Parquet).
"""
