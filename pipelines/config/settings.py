"""Operational settings (not sources, topics or rules): one optional YAML file.

Looked up at $DOZOR_CONFIG, else `dozor.yaml` in the data directory (by
`pipelines.config.config.Paths`); every field has a working default, so the file is
only needed to change something.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from langdetect.detector_factory import PROFILES_DIRECTORY
from pydantic import Field, field_validator

from pipelines.config.yamlfile import StrictModel, load_yaml


class CrawlSettings(StrictModel):
    # ranges: 0 concurrency hangs the crawl, a 0 size turns the decompression-bomb bound
    # off, a negative timeout or age fetches nothing
    concurrent_requests_per_domain: int = Field(2, ge=1, le=64)
    download_timeout: int = Field(30, ge=1, le=3600)  # seconds
    download_maxsize: int = Field(20 * 1024 * 1024, ge=64 * 1024, le=1024 ** 3)  # bytes
    retry_times: int = Field(2, ge=0, le=10)
    # seconds between two request starts on one host, over every worker of a frontier;
    # AutoThrottle never goes below it
    download_delay: float = Field(0, ge=0, le=60)
    autothrottle: bool = True
    # feed/sitemap entries older than this are not fetched
    max_age_days: int = Field(14, ge=1, le=3650)
    user_agent: str = Field("Dozor/0.1 (+news monitoring; contact via DOZOR_CONTACT)",
                            min_length=1)
    batch_size: int = Field(50, ge=1, le=10_000)  # pages per stage batch
    # worker processes the stages run in beside the crawl: none given, one per CPU the
    # process may use; 0, on the crawl's own process (downloads wait for each batch)
    stage_workers: int | None = Field(None, ge=0, le=256)
    sitemap_depth: int = Field(3, ge=1, le=10)  # sitemap-index levels followed below a root
    sitemaps_per_source: int = Field(50, ge=1, le=10_000)  # sitemaps fetched per run
    source_budget: int = Field(600, ge=1, le=86_400)  # seconds per source per run
    # Telegram (t.me, or whatever DOZOR_TELEGRAM_URL names) is one host to be polite to
    telegram_concurrency: int = Field(1, ge=1, le=8)
    telegram_delay: float = Field(1.0, ge=0, le=60)  # seconds between two channel pages


class TranslationSettings(StrictModel):
    mode: Literal["all", "relevant", "none"] = "relevant"
    models_dir: Path | None = None  # default: $DOZOR_MODELS_DIR or <data>/models
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    threads: int = 0  # CPU threads for translation, 0: one per core
    beam_size: int = 2
    max_batch_tokens: int = 4096


class PollingSettings(StrictModel):
    """How often a source is polled (seconds): from how often it publishes, within these
    bounds; errors back off exponentially up to max_error_backoff."""

    min_interval: int = Field(300, ge=10, le=86_400)
    max_interval: int = Field(21_600, ge=60, le=7 * 86_400)
    max_error_backoff: int = Field(21_600, ge=60, le=7 * 86_400)


_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class RevisitSettings(StrictModel):
    """When a stored article is fetched again after it was first seen: one revisit per
    delay (`1h`, `6h`, `24h`, `3d`, `7d`: a number and s, m, h or d), none after the last."""

    schedule: list[str] = Field(["1h", "6h", "24h", "3d", "7d"], max_length=50)

    @field_validator("schedule")
    @classmethod
    def _durations(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not _DURATION.fullmatch(v.strip())]
        if bad:
            raise ValueError(f"not a delay: {', '.join(map(repr, bad))} (write 1h, 6h, 3d...)")
        delays = [cls.seconds(v) for v in values]
        if delays != sorted(delays):
            raise ValueError("the revisit delays must grow")
        return values

    @staticmethod
    def seconds(value: str) -> int:
        match = _DURATION.fullmatch(value.strip())
        assert match is not None  # validated
        return int(match[1]) * _UNIT[match[2]]

    @property
    def delays(self) -> list[int]:
        """Seconds after the first fetch of each revisit."""
        return [self.seconds(v) for v in self.schedule]


class Settings(StrictModel):
    languages: list[str] = Field(["ru", "uk", "en"], min_length=1)
    crawl: CrawlSettings = CrawlSettings()
    polling: PollingSettings = PollingSettings()
    revisit: RevisitSettings = RevisitSettings()
    translation: TranslationSettings = TranslationSettings()

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, codes: list[str]) -> list[str]:
        # the codes the language detector has a profile for: any other is never detected
        known = {p.name for p in Path(PROFILES_DIRECTORY).iterdir()}
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ValueError(f"unknown language code(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        return codes


def load_settings(path: Path | None) -> Settings:
    """The settings file at `path`; every default when there is none."""
    return load_yaml(path, Settings) if path else Settings()
