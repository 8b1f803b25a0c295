"""Imported once by the extraction workers' fork server, never by the crawl or ``extract``.

Every extraction worker is forked from that server (:func:`crawler.corpus.worker_context`),
so whatever this loads is loaded once per run and shared by all workers, recycled ones
included, instead of once per worker: the extraction modules (the pool module the workers
unpickle their task function from, hence trafilatura and lxml), trafilatura's options and
py3langid's model (about 0.6 s of CPU and 110 MB, the model mapped from the cache of
:mod:`crawler.corpus.langid_model`, which would otherwise weigh on the crawl process or on
every worker, and a worker is recycled every ``CORPUS_MAX_TASKS`` pages).
"""

import crawler.corpus.pool  # noqa: F401 - the module a worker's task comes from
from crawler.corpus.extraction import _trafilatura_options
from crawler.corpus.text import warm_up

warm_up()
_trafilatura_options()
