"""`Config`: everything Dozor reads from outside its files, read once.

An entry point (the `dozor` CLI callback, `scrapy crawl` through the crawler's settings,
the scheduler's child, which is `dozor run`) builds one with `Config.from_env()` and
passes it down; nothing below reads the environment. A test or the demo builds its own
with `dataclasses.replace` instead of patching `os.environ`.

The variables, all optional:
  DOZOR_DATA_DIR      data folder (default: the platform's user data dir for "dozor")
  DOZOR_WARC_DIR      WARC archive (default <data>/warc)
  DOZOR_OUTBOX        digests written as .eml when no SMTP server is set (<data>/outbox)
  DOZOR_MODELS_DIR    translation models (<data>/models)
  DOZOR_SPOOL_DIR     articles an unreachable Elasticsearch could not take (<data>/spool)
  DOZOR_CONFIG        the settings file (default <data>/dozor.yaml when it exists)
  DOZOR_TOPIC         the topic profile (default: the shipped one)
  DOZOR_CONTACT       the operator's address, put into the user agent
  DOZOR_ALLOWED_NETWORKS, DOZOR_TELEGRAM_URL, DOZOR_SOURCES, DOZOR_DB: the crawler's
                      (crawler/settings.py), also given as Scrapy settings
  ELASTICSEARCH_URL, ELASTIC_API_KEY, ELASTIC_USERNAME, ELASTIC_PASSWORD, ELASTIC_CA_CERTS,
  KIBANA_URL, KIBANA_CA_CERTS: the Elasticsearch store and `dozor setup`
  DOZOR_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD, _TIMEOUT, _CAFILE, DOZOR_MAIL_FROM: mail
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from platformdirs import user_data_dir

from pipelines.config.paths import DEFAULTS_DIR
from pipelines.config.settings import Settings, load_settings
from pipelines.errors import ConfigError

# the variables a Config reads besides the paths: secrets and endpoints, kept as given
SECRETS = (
    "ELASTICSEARCH_URL", "ELASTIC_API_KEY", "ELASTIC_USERNAME", "ELASTIC_PASSWORD",
    "ELASTIC_CA_CERTS", "KIBANA_URL", "KIBANA_CA_CERTS",
    "DOZOR_SMTP_HOST", "DOZOR_SMTP_PORT", "DOZOR_SMTP_TLS", "DOZOR_SMTP_USER",
    "DOZOR_SMTP_PASSWORD", "DOZOR_SMTP_TIMEOUT", "DOZOR_SMTP_CAFILE", "DOZOR_MAIL_FROM",
    "DOZOR_REDIS_URL",  # the shared frontier of `dozor worker` and `dozor schedule --redis`
)
# the crawler's own (crawler/settings.py): Scrapy settings that fall back to these
CRAWLER_VARIABLES = ("DOZOR_SOURCES", "DOZOR_DB", "DOZOR_TELEGRAM_URL",
                     "DOZOR_ALLOWED_NETWORKS", "DOZOR_CONTACT")
PATH_VARIABLES = ("DOZOR_DATA_DIR", "DOZOR_WARC_DIR", "DOZOR_OUTBOX", "DOZOR_MODELS_DIR",
                  "DOZOR_SPOOL_DIR", "DOZOR_CONFIG", "DOZOR_TOPIC")
ENVIRONMENT = PATH_VARIABLES + SECRETS + CRAWLER_VARIABLES


@dataclass(frozen=True)
class Paths:
    """Where Dozor keeps its files."""

    data: Path
    warc: Path
    outbox: Path
    models: Path
    spool: Path
    topic: Path
    settings_file: Path | None = None  # None: every setting at its default

    @property
    def db(self) -> Path:
        """The embedded default database."""
        return self.data / "dozor.db"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Paths:
        data = Path(env.get("DOZOR_DATA_DIR") or user_data_dir("dozor", appauthor=False))
        try:
            data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"data directory {data} (DOZOR_DATA_DIR) is not usable: "
                              f"{exc.strerror or exc}") from None
        settings_file = Path(env["DOZOR_CONFIG"]) if env.get("DOZOR_CONFIG") else None
        if settings_file is None and (data / "dozor.yaml").exists():
            settings_file = data / "dozor.yaml"
        return cls(
            data=data,
            warc=Path(env.get("DOZOR_WARC_DIR") or data / "warc"),
            outbox=Path(env.get("DOZOR_OUTBOX") or data / "outbox"),
            models=Path(env.get("DOZOR_MODELS_DIR") or data / "models"),
            spool=Path(env.get("DOZOR_SPOOL_DIR") or data / "spool"),
            topic=Path(env.get("DOZOR_TOPIC") or DEFAULTS_DIR / "topic.yaml"),
            settings_file=settings_file,
        )


@dataclass(frozen=True)
class Config:
    """Operational settings, file locations and secrets, for one command."""

    paths: Paths
    # the SECRETS and CRAWLER_VARIABLES that are set (non-empty), by name
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """The one place Dozor reads its environment (`os.environ` unless given)."""
        env = os.environ if env is None else env
        kept = {name: env[name] for name in SECRETS + CRAWLER_VARIABLES if env.get(name)}
        return cls(paths=Paths.from_env(env), env=kept)

    @cached_property
    def settings(self) -> Settings:
        # read on first use: a command that needs no setting never fails on a bad file
        return load_settings(self.paths.settings_file)

    def get(self, name: str) -> str | None:
        """A secret or crawler variable as given, None when unset."""
        return self.env.get(name) or None

    def with_env(self, **values: str | None) -> Config:
        """This config with variables set (None: removed): the demo's own mail and
        network limits, without touching the process environment."""
        env = {**self.env, **{k: v for k, v in values.items() if v}}
        for name, value in values.items():
            if not value:
                env.pop(name, None)
        return Config(self.paths, env)
