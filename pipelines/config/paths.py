"""Where Dozor keeps its files. Every location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir

# The shipped defaults are the application's data files (dozor/defaults); located as a
# folder, not imported, so this floor never depends on the application package.
DEFAULTS_DIR = Path(__file__).resolve().parents[2] / "dozor" / "defaults"


def data_dir() -> Path:
    path = Path(os.environ.get("DOZOR_DATA_DIR") or user_data_dir("dozor", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db() -> Path:
    return data_dir() / "dozor.db"


def warc_dir() -> Path:
    return Path(os.environ.get("DOZOR_WARC_DIR") or data_dir() / "warc")


def outbox_dir() -> Path:
    return Path(os.environ.get("DOZOR_OUTBOX") or data_dir() / "outbox")


def models_dir() -> Path:
    return Path(os.environ.get("DOZOR_MODELS_DIR") or data_dir() / "models")


def spool_dir() -> Path:
    return Path(os.environ.get("DOZOR_SPOOL_DIR") or data_dir() / "spool")


def default_sources() -> Path:
    return DEFAULTS_DIR / "sources.yaml"


def default_topic() -> Path:
    """The topic profile: $DOZOR_TOPIC, else the shipped prisoner-recruitment profile."""
    return Path(os.environ.get("DOZOR_TOPIC") or DEFAULTS_DIR / "topic.yaml")


def default_alerts() -> Path:
    return DEFAULTS_DIR / "alerts.yaml"
