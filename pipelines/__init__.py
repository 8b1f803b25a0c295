"""Scrapy components that consume what the spiders fetch: WARC capture, corpus writing."""
