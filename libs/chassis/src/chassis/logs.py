"""Logging: JSON lines for machines, one readable line for people, the trace in both.

Every line names the service and, where known, the trace and span it belongs to and
the order and event it is about, so that a log search by `trace_id` or `order_id`
finds what the trace viewer shows. `LOG_FORMAT` chooses: `json`, `console`, or `auto`
(console when standard error is a terminal, JSON otherwise).
"""

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from chassis.settings import LogFormat
from chassis.telemetry import trace_ids

_about: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("chassis.logs.about", default=())
"""What the code running now is about (`order_id`, `event_id`): added to its log lines."""


@contextlib.contextmanager
def about(**fields: str) -> Iterator[None]:
    """Add `fields` (e.g. `order_id=...`) to every log line written inside the block."""
    token = _about.set((*_about.get(), *fields.items()))
    try:
        yield
    finally:
        _about.reset(token)


def _context() -> dict[str, str]:
    ids = trace_ids()
    fields = dict(_about.get())
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, and the context."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL service logger: message [order_id=... trace_id=...]`, for a terminal."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context()
        context.pop("span_id", None)  # the trace id is enough to find the trace
        if not context:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the context
        pairs = " ".join(f"{key}={value}" for key, value in context.items())
        return f"{first} [{pairs}]{newline}{rest}"


def configure_logging(service: str, level: str, log_format: LogFormat) -> None:
    """Send the root logger's records to standard error in `log_format`."""
    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler()
    formatter = JsonFormatter(service) if log_format == "json" else ConsoleFormatter(service)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
