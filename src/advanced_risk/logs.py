"""The package's logging helper: structlog events routed through the standard library.

The library is silent until the application configures logging: the package logger carries a
``NullHandler`` and nothing here configures logging globally. Event names are snake_case and values
are key-value fields::

    log = get_logger(__name__)
    log.warning("decision_degraded", component="policy", reason="deadline", elapsed_ms=7.2)
"""

from __future__ import annotations

import logging

import structlog

__all__ = ["get_logger"]

logging.getLogger("advanced_risk").addHandler(logging.NullHandler())


def get_logger(name: str = "advanced_risk") -> structlog.stdlib.BoundLogger:
    """Return a structlog logger bound to the stdlib logger ``name`` (silent until configured)."""
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(name), wrapper_class=structlog.stdlib.BoundLogger
    )
    return logger
