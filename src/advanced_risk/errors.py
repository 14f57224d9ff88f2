"""The one exception family of advanced_risk.

Every error the library raises on purpose derives from :class:`AdvancedRiskError`, so a trading
loop can catch the family with one ``except``. Messages name the field, the bad value and what is
allowed, e.g. ``"alpha must be in (0, 1), got 1.5"``.
"""

from __future__ import annotations

__all__ = [
    "AdvancedRiskError",
    "ConfigError",
    "DataIntegrityError",
    "DataValidationError",
    "DuplicateDecisionError",
    "InvalidInputError",
    "ModelLoadError",
    "StateStoreError",
]


class AdvancedRiskError(Exception):
    """Base class of every error raised by advanced_risk."""


class InvalidInputError(AdvancedRiskError, ValueError):
    """The caller passed bad input (wrong shape, NaN/inf, out-of-range value)."""


class ConfigError(InvalidInputError):
    """A configuration object holds one or more invalid fields (all are listed in the message)."""


class DataValidationError(InvalidInputError):
    """A data file cannot be read (missing, truncated, not a table) or holds bad data; the message
    names the file, and the row (date) and column at fault where there is one."""


class DataIntegrityError(AdvancedRiskError):
    """A bundled or user data file does not match its recorded SHA-256 or cannot be parsed."""


class ModelLoadError(AdvancedRiskError):
    """A model file is missing, corrupt, truncated or does not match the expected dimensions."""


class StateStoreError(AdvancedRiskError):
    """The SQLite state store failed; inside the manager this degrades decisions, never leaks."""


class DuplicateDecisionError(StateStoreError):
    """A journal write was refused because its ``decision_id`` is journalled already (ids are
    unique); the store itself is healthy, so retrying the same row can never succeed."""
