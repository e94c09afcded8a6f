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
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        *extra_processors,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library (the OpenTelemetry exporter's "failed to export", aiohttp's
    # errors): the same JSON lines, with the logger's name, so a log pipeline never meets a line it cannot parse.
    # Warnings and up only: their info lines (access logs, retries) are noise next to ours.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(logging.WARNING, _LEVELS[level]))
