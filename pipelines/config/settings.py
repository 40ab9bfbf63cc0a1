"""Operational settings (not sources, topics or rules): one optional YAML file.

Looked up at $DOZOR_CONFIG, else `dozor.yaml` in the data directory (by
`pipelines.config.config.Paths`); every field has a working default, so the file is
only needed to change something.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipelines.config.yamlfile import StrictModel, load_yaml


class CrawlSettings(StrictModel):
    concurrent_requests_per_domain: int = 2
    download_timeout: int = 30
    download_maxsize: int = 20 * 1024 * 1024
    retry_times: int = 2
    autothrottle: bool = True
    max_age_days: int = 14  # feed/sitemap entries older than this are not fetched
    user_agent: str = "Dozor/0.1 (+news monitoring; contact via DOZOR_CONTACT)"
    batch_size: int = 50  # pages per stage batch
    # Telegram (t.me, or whatever DOZOR_TELEGRAM_URL names) is one host to be polite to
    telegram_concurrency: int = 1
    telegram_delay: float = 1.0  # seconds between two channel pages


class TranslationSettings(StrictModel):
    mode: Literal["all", "relevant", "none"] = "relevant"
    models_dir: Path | None = None  # default: $DOZOR_MODELS_DIR or <data>/models
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    threads: int = 0  # CPU threads for translation, 0: one per core
    beam_size: int = 2
    max_batch_tokens: int = 4096


class Settings(StrictModel):
    languages: list[str] = ["ru", "uk", "en"]
    crawl: CrawlSettings = CrawlSettings()
    translation: TranslationSettings = TranslationSettings()


def load_settings(path: Path | None) -> Settings:
    """The settings file at `path`; every default when there is none."""
    return load_yaml(path, Settings) if path else Settings()
