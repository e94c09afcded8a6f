"""structlog set-up for the tunnel's command-line programs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LEVEL_NAMES = tuple(_LEVELS)


def configure_json_logs(*, level: str = "info", extra_processors: Sequence[Any] = ()) -> None:
    """Configure structlog for a program's main(); libraries only call structlog.get_logger().
    `extra_processors` run just before rendering (the operator adds the current trace id)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *extra_processors,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
