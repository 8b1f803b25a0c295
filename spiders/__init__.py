"""Scrapy spiders (SPIDER_MODULES points here)."""
