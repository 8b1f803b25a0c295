"""Imported once by the extraction workers' fork server, never by the crawl or ``extract``.

Every extraction worker is forked from that server (:func:`crawler.corpus.worker_context`),
so whatever this loads is loaded once per run and shared by all workers, recycled ones
included, instead of once per worker: the extraction modules and py3langid's model (about
0.4 s of CPU and 70 MB, which would otherwise weigh on the crawl process or on every
worker).
"""

from crawler.corpus.text import warm_up

warm_up()
