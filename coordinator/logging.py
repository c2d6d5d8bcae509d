"""Logging at the edge: one JSON object per line on stderr, through structlog.

Library code logs with the standard ``logging`` module (``logging.getLogger(__name__)``,
fields in ``extra=``); ``configure()`` renders those records, uvicorn's and structlog's own
as JSON. Called by the CLI before it serves; never at import. Log lines carry ids, codes
and timings, never personal data.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_QUIET = {"uvicorn.access": logging.WARNING}     # the request middleware logs each request


def _drop_color_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop("color_message", None)       # uvicorn's ANSI-coloured copy of the message
    return event


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """Route stdlib and structlog logging to stderr as JSON (or console text)."""
    shared = _processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
