"""Scrapy settings for Dozor.

`scrapy crawl news` reads this module through scrapy.cfg, and `crawler.runner` starts
from it. Values an operator tunes (timeouts, sizes, concurrency, ...) come from Dozor's
settings file (`pipelines.config.settings`, section `crawl`) through `operational()`, which the
spiders apply at "spider" priority, so `scrapy crawl news -s NAME=VALUE` still wins.

Dozor's own settings; the first four also come from the environment (through the
entry point's `Config`, see `apply_config`):
  DOZOR_SOURCES                sources.yaml for `scrapy crawl news` (default: the shipped one)
  DOZOR_DB                     SQLite file for `scrapy crawl news` (default: the data dir's)
  DOZOR_TELEGRAM_URL           base Telegram channel previews are read from, <base>/s/<name>
                               (default https://t.me; a mirror, or a test server)
  DOZOR_ALLOWED_NETWORKS       comma-separated CIDRs the network guard lets through
  DOZOR_ALLOW_PRIVATE_NETWORK  true: the guard lets every non-metadata address through
                               (`dozor run --allow-private-network`)
"""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings

from pipelines.config.config import CRAWLER_VARIABLES, Config
from pipelines.config.settings import CrawlSettings

BOT_NAME = "dozor"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

ROBOTSTXT_OBEY = True
COOKIES_ENABLED = False  # articles are public; cookies only bring consent walls and tracking
# open ports with control over the crawl are not wanted
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"

# Only http(s): a link in a feed must never make the crawler read a local file or S3.
DOWNLOAD_HANDLERS = {"file": None, "data": None, "s3": None, "ftp": None}

CONCURRENT_REQUESTS = 16
DNS_TIMEOUT = 20
REDIRECT_MAX_TIMES = 5  # ends redirect chains and loops early
DUPEFILTER_CLASS = "crawler.middlewares.RedirectLoopFilter"  # names the loops it ends
# connections use the address the guard's policy approves at connect time (DNS rebinding)
TWISTED_DNS_RESOLVER = "crawler.resolver.GuardedResolver"
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

DOWNLOADER_MIDDLEWARES = {
    # process_response runs from the highest number down: the guard checks the address
    # the response came from before the archive keeps it, and both see every raw
    # response (redirects, errors, still-compressed bodies) before Scrapy's own
    # redirect (600), decompression (590) and retry (550) middlewares act on it.
    # process_request runs from the lowest up: an offsite redirect is dropped before
    # robots.txt (100) or the guard fetch or resolve anything for its host
    "crawler.middlewares.RedirectScopeMiddleware": 50,
    "crawler.middlewares.SourceBudgetMiddleware": 60,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    # nearest the spider: it sees the answer Scrapy's redirects and retries ended with
    "crawler.health.HealthMiddleware": 40,
    "crawler.middlewares.NetworkGuardMiddleware": 640,
    "crawler.middlewares.WarcArchiveMiddleware": 630,
}
ITEM_PIPELINES = {"crawler.batches.BatchPipeline": 300}
SPIDER_MIDDLEWARES = {"crawler.health.HealthSpiderMiddleware": 45}
ADDONS = {"crawler.settings.ConfigAddon": 0}
# configured only when the crawl's starter gives a progress reporter (DOZOR_PROGRESS)
EXTENSIONS = {"crawler.progress.ProgressStats": 0, "crawler.middlewares.RobotsErrorLines": 0}

DOZOR_ALLOW_PRIVATE_NETWORK = False
DOZOR_RETRY_BACKOFF = 1.0  # seconds before the first retry; doubled for each next one
DOZOR_SOURCE_BUDGET = 0  # seconds per source per run (0: none); from crawl.source_budget
DOZOR_ARCHIVE = True  # the sources check turns it off: it only looks at feeds
CONFIG_SETTING = "DOZOR_RUN_CONFIG"


def operational(crawl: CrawlSettings, contact: str | None = None) -> dict[str, Any]:
    """Scrapy settings for Dozor's operational `crawl` settings (`contact`: the
    operator's DOZOR_CONTACT, put into the user agent)."""
    return {
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": crawl.download_timeout,
        # also the bound on decompressed size: HttpCompressionMiddleware stops there
        "DOWNLOAD_MAXSIZE": crawl.download_maxsize,
        "DOWNLOAD_WARNSIZE": min(crawl.download_maxsize // 2, 32 * 1024 * 1024),
        "RETRY_TIMES": crawl.retry_times,
        "DOWNLOAD_DELAY": crawl.download_delay,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        # sites that want to reach whoever runs the crawler find the operator's address
        # where the default user agent has the DOZOR_CONTACT placeholder
        "USER_AGENT": crawl.user_agent.replace(
            "DOZOR_CONTACT", contact or "DOZOR_CONTACT"),
        "DOZOR_BATCH_SIZE": crawl.batch_size,
        "DOZOR_MAX_AGE_DAYS": crawl.max_age_days,
        "DOZOR_SITEMAP_DEPTH": crawl.sitemap_depth,
        "DOZOR_SITEMAPS_PER_SOURCE": crawl.sitemaps_per_source,
        "DOZOR_SOURCE_BUDGET": crawl.source_budget,
        # crawler.spiders.telegram sends every channel page through this one slot
        "DOWNLOAD_SLOTS": {"telegram": {"concurrency": crawl.telegram_concurrency,
                                        "delay": crawl.telegram_delay,
                                        "jitter": 0}},
    }


def setting_or_env(settings: BaseSettings, name: str) -> str | None:
    """A DOZOR_* setting, else the environment variable of the same name (which
    `apply_config` put into the settings: nothing here reads the environment)."""
    value = settings.get(name)
    return str(value) if value not in (None, "") else None


def apply_config(settings: BaseSettings, config: Config) -> None:
    """Put what the crawl needs of `config` into Scrapy `settings`: the operational
    values at "spider" priority (`-s NAME=VALUE` still wins), the WARC folder, and the
    crawler's environment variables where no setting gives them. The Config itself goes
    in as DOZOR_RUN_CONFIG, for the stages a `scrapy crawl` builds."""
    settings.set(CONFIG_SETTING, config, priority="spider")
    settings.setdict(operational(config.settings.crawl, config.get("DOZOR_CONTACT")),
                     priority="spider")
    settings.set("DOZOR_WARC_DIR", str(config.paths.warc), priority="spider")
    for name in CRAWLER_VARIABLES:
        value = config.get(name)
        if value and settings.get(name) in (None, ""):
            settings.set(name, value, priority=settings.getpriority(name) or "default")


class ConfigAddon:
    """A Scrapy add-on (ADDONS below) that gives every crawl Dozor's Config. Under
    `scrapy crawl` no Dozor command started the crawl, so this is the entry point that
    reads the environment: into the process's settings first (the DNS resolver is built
    from those), then each crawler's. A crawl `crawler.runner` starts has its Config."""

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        if settings.get(CONFIG_SETTING) is None:
            apply_config(settings, Config.from_env())

    def update_settings(self, settings: BaseSettings) -> None:
        self.update_pre_crawler_settings(settings)


def run_config(settings: BaseSettings) -> Config:
    """The Config `apply_config` put into `settings`."""
    config = settings.get(CONFIG_SETTING)
    assert isinstance(config, Config), "apply_config was not called on these settings"
    return config
