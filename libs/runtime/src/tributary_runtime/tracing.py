"""W3C trace context (``traceparent``) carried from an upload to the end of its import.

This is trace context *propagation*, not tracing: no spans are recorded or exported. Every
event on Kafka carries a ``traceparent`` header; its trace id is the same from the upload to
the last event of the import, and each stage that handles the import publishes under a span
id of its own whose parent is the span of the event it consumed. A collector or an
OpenTelemetry SDK added later can continue these contexts without any change to the events.

One rule fixes the trace id when no context comes in (an upload without a ``traceparent``
HTTP header, an upstream producer that sends none, a flow operation): the trace id is the
import id. Every stage derives the same id on its own, so an import's events never split
into several traces, and finding an import's trace needs nothing but its id.

Format (https://www.w3.org/TR/trace-context/#traceparent-header):
``00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>``.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

HEADER = "traceparent"
_VERSION = "00"
_SAMPLED = "01"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = _SAMPLED

    @property
    def header(self) -> str:
        return f"{_VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, whose parent is this one."""
        return TraceContext(self.trace_id, new_span_id(), self.flags)


def new_span_id() -> str:
    span = os.urandom(8).hex()
    return span if span != _ZERO_SPAN else new_span_id()


def parse(value: str | bytes | None) -> TraceContext | None:
    """The context of a ``traceparent`` value; None for a missing or malformed one (then start afresh)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    found = _PATTERN.match(value.strip().lower())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    # Version ff is forbidden; version 00 has exactly four fields; all-zero ids are invalid.
    if version == "ff" or (version == _VERSION and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, flags)


def for_import(import_id: uuid.UUID | str) -> TraceContext:
    """A new span in the import's default trace (trace id = the import id), for imports without context."""
    trace_id = uuid.UUID(str(import_id)).hex
    if trace_id == _ZERO_TRACE:  # the nil UUID is no valid trace id
        trace_id = os.urandom(16).hex()
    return TraceContext(trace_id, new_span_id())


def from_headers(headers: Any) -> TraceContext | None:
    """The context in a Kafka message's headers (a sequence of (name, bytes)), if any."""
    for name, value in headers or ():
        if name == HEADER:
            return parse(value)
    return None


def with_header(headers: list[tuple[str, bytes]], context: TraceContext) -> list[tuple[str, bytes]]:
    """``headers`` with its ``traceparent`` set to ``context`` (replacing any earlier one)."""
    return [(k, v) for k, v in headers if k != HEADER] + [(HEADER, context.header.encode())]
