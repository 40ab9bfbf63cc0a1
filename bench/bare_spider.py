"""The bare side of bench.crawl: a Scrapy spider that fetches a feed and every page it
links to with Dozor's crawl settings (concurrency, AutoThrottle, timeouts, user agent,
robots.txt), and does nothing with what it gets.

    .venv/bin/python -m bench.bare_spider FEED_URL true|false
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import settings as dozor_settings
from pipelines.config.settings import CrawlSettings

_LINK = re.compile(rb"<link>([^<]+)</link>")


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, feed: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed = feed
        self.pages = 0

    async def start(self) -> Any:
        yield scrapy.Request(self.feed, callback=self.parse_feed)

    def parse_feed(self, response: scrapy.http.Response) -> Iterator[scrapy.Request]:
        for url in _LINK.findall(response.body)[1:]:  # the first is the channel's
            yield scrapy.Request(url.decode(), callback=self.parse_page)

    def parse_page(self, response: scrapy.http.Response) -> None:
        self.pages += 1

    def closed(self, reason: str) -> None:
        print(f"bare: {self.pages} pages", flush=True)


def main() -> None:
    feed, autothrottle = sys.argv[1], sys.argv[2] == "true"
    settings = Settings()
    for name in ("ROBOTSTXT_OBEY", "COOKIES_ENABLED", "CONCURRENT_REQUESTS",
                 "REDIRECT_MAX_TIMES", "AUTOTHROTTLE_START_DELAY", "AUTOTHROTTLE_MAX_DELAY",
                 "AUTOTHROTTLE_TARGET_CONCURRENCY", "TELNETCONSOLE_ENABLED"):
        settings.set(name, getattr(dozor_settings, name))
    operational = dozor_settings.operational(CrawlSettings())
    operational["AUTOTHROTTLE_ENABLED"] = autothrottle
    settings.setdict({k: v for k, v in operational.items() if not k.startswith("DOZOR_")})
    settings.set("LOG_LEVEL", "WARNING")
    process = CrawlerProcess(settings)
    process.crawl(BareSpider, feed=feed)
    process.start()


if __name__ == "__main__":
    main()
