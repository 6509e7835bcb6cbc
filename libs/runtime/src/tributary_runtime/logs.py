"""Logging setup: one JSON object per line, carrying the import being worked on.

Each line has ``ts``, ``level``, ``logger``, ``message`` and ``service``, plus ``import_id``,
``flow_id``, ``correlation_id`` and ``trace_id`` whenever the code logging it works for one
import (``exc_info`` when there is a traceback). Those four come from a context variable: the
consumer sets it for a batch of one import, the staging join and flow operations narrow it to
the event being handled, ingest sets it for an upload. Being a ``ContextVar``, the value follows
the asyncio task, so concurrent uploads and the consumer never see each other's.

``TRIBUTARY_LOG_FORMAT=text`` switches to a plain line for reading in a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

# The fields a line carries for the import it concerns (None: not known here).
FIELDS = ("import_id", "flow_id", "correlation_id", "trace_id")


@dataclass(frozen=True)
class LogContext:
    import_id: str | None = None
    flow_id: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None


EMPTY = LogContext()
_current: ContextVar[LogContext] = ContextVar("tributary_log_context", default=EMPTY)


def current() -> LogContext:
    return _current.get()


def context_of(envelope: Any, trace_id: str | None = None) -> LogContext:
    """The context of an event's import (an ``Envelope``), with the trace id it travels in."""
    return LogContext(
        import_id=str(envelope.import_id) if envelope.import_id else None,
        flow_id=str(envelope.flow_id) if envelope.flow_id else None,
        correlation_id=str(envelope.correlation_id) if envelope.correlation_id else None,
        trace_id=trace_id,
    )


def set_context(context: LogContext) -> Token[LogContext]:
    """Set the context for the rest of this task (until ``reset`` with the returned token)."""
    return _current.set(context)


def reset(token: Token[LogContext]) -> None:
    _current.reset(token)


@contextmanager
def bound(context: LogContext) -> Iterator[None]:
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def with_trace(trace_id: str | None) -> LogContext:
    return replace(_current.get(), trace_id=trace_id)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        context = _current.get()
        for name in FIELDS:
            value = getattr(context, name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format for a terminal: the import id appended when known."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _current.get()
        if context.import_id:
            text += f" [import {context.import_id}]"
        return text


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (uvicorn's and the libraries' too) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt.lower() == "json" else TextFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers get their own handlers only when uvicorn configures logging, which
    # service.py turns off (log_config=None); make sure they reach the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
