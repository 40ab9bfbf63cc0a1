"""Dozor's one error hierarchy.

Every error Dozor raises on purpose derives from `DozorError`; str() is a message for
the analyst, one line where it can be. Each class lives with the code that raises it
and keeps the standard base its callers catch (ValueError, RuntimeError, Scrapy's
IgnoreRequest). The CLI maps classes to exit codes in one place (`dozor.cli.errors`):
LockBusy exits 75, every other DozorError 2.

    DozorError                       pipelines.errors
    ├── ConfigError (ValueError)     pipelines.errors: a file, setting or variable is invalid
    ├── BadURL (ValueError)          pipelines.urls: not an http(s) URL Dozor can fetch
    ├── TermError (ValueError)       pipelines.terms.matching: a term with no word to search
    ├── QueryError (ValueError)      pipelines.query: a query that does not parse or compile
    ├── ModelError (RuntimeError)    pipelines.models: a translation package cannot be installed
    ├── StoreError (RuntimeError)    pipelines.store: the database or cluster refused or failed
    ├── ArchiveError                 pipelines.archive: the WARC directory cannot be written
    ├── DeliveryError (RuntimeError) pipelines.alert.mailer: a digest was not handed over
    ├── SetupError (RuntimeError)    index_config.install: Elasticsearch/Kibana set-up failed
    ├── UnsafeXML (ValueError)       crawler.feeds: a feed declares entities or a DTD
    ├── NotAFeed (ValueError)        crawler.feeds: the bytes are no feed or sitemap
    ├── RefusedRequest (IgnoreRequest)  crawler.middlewares: the network guard said no
    ├── OffsiteRedirect (IgnoreRequest) crawler.middlewares: a redirect left the source
    ├── OverBudget (IgnoreRequest)   crawler.middlewares: the source's time budget is spent
    ├── LockBusy (RuntimeError)      dozor.lock: another cycle holds the run lock
    ├── ScheduleError (ValueError)   dozor.schedule: a bad --cron, --every or --timeout
    └── BadRequest (ValueError)      dozor.ui.app: a UI request with bad parameters (HTTP 400)
"""

from __future__ import annotations


class DozorError(Exception):
    """Something Dozor could not do; str() says what and why."""


class ConfigError(DozorError, ValueError):
    """A configuration file is unreadable or invalid; str() is a message for the analyst."""
