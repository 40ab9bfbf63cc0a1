"""The shipped default files. Where Dozor keeps its own files, and the variables that
move them, is `pipelines.config.config.Paths`."""

from __future__ import annotations

import os
from pathlib import Path

# The shipped defaults are the application's data files (dozor/defaults); located as a
# folder, not imported, so this floor never depends on the application package.
DEFAULTS_DIR = Path(__file__).resolve().parents[2] / "dozor" / "defaults"


def default_sources() -> Path:
    """The sources file of a command given no --sources: DOZOR_SOURCES, as the crawler
    itself reads it, else the shipped one."""
    return Path(os.environ.get("DOZOR_SOURCES") or DEFAULTS_DIR / "sources.yaml")


def default_alerts() -> Path:
    return DEFAULTS_DIR / "alerts.yaml"
