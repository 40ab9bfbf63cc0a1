"""Dozor's one error hierarchy.

Every error Dozor raises on purpose derives from `DozorError`; str() is a message for
the analyst, one line where it can be. The CLI maps each class to an exit code in one
place (`dozor.cli.errors`).

    DozorError
    └── ConfigError        a configuration file, setting or argument is invalid
"""

from __future__ import annotations


class DozorError(Exception):
    """Something Dozor could not do; str() says what and why."""


class ConfigError(DozorError, ValueError):
    """A configuration file is unreadable or invalid; str() is a message for the analyst."""
