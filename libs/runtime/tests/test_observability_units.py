"""The exposition format, trace context parsing and the JSON log line, without a broker."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from tributary_runtime import logs, tracing
from tributary_runtime.metrics import CallbackGauge, Counter, Histogram, Registry, parse_text


def test_exposition_round_trips_counters_histograms_and_gauges() -> None:
    registry = Registry()
    counter = registry.register(Counter("t_events_total", "events", ("topic", "event_type")))
    histogram = registry.register(Histogram("t_seconds", "latency", ("group",), buckets=(0.1, 1)))
    gauge = registry.register(CallbackGauge("t_lag", "lag", ("partition",)))
    counter.inc(3, "a.v1", 'odd "quoted"\nname')  # type: ignore[attr-defined]
    counter.inc(2, "a.v1", 'odd "quoted"\nname')  # type: ignore[attr-defined]
    for value in (0.05, 0.1, 0.5, 7):
        histogram.observe(value, "g")  # type: ignore[attr-defined]
    gauge.add_source(lambda: [(("0",), 4), (("1",), 0)])  # type: ignore[attr-defined]
    text = registry.render()
    assert "# TYPE t_events_total counter\n" in text and "# TYPE t_seconds histogram\n" in text
    samples = parse_text(text)
    assert samples == {
        ("t_events_total", (("event_type", 'odd "quoted"\nname'), ("topic", "a.v1"))): 5,
        # buckets are cumulative and "le" is inclusive: 0.1 falls in the 0.1 bucket
        ("t_seconds_bucket", (("group", "g"), ("le", "0.1"))): 2,
        ("t_seconds_bucket", (("group", "g"), ("le", "1"))): 3,
        ("t_seconds_bucket", (("group", "g"), ("le", "+Inf"))): 4,
        ("t_seconds_sum", (("group", "g"),)): 7.65,
        ("t_seconds_count", (("group", "g"),)): 4,
        ("t_lag", (("partition", "0"),)): 4,
        ("t_lag", (("partition", "1"),)): 0,
    }
    with pytest.raises(ValueError):
        counter.inc(-1, "a.v1", "x")  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        registry.register(Counter("t_events_total", "again"))


def test_traceparent_parse_child_and_import_default() -> None:
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    parent = tracing.parse(header)
    assert parent is not None and parent.header == header
    child = parent.child()
    assert (child.trace_id, child.flags) == (parent.trace_id, "01") and child.span_id != parent.span_id
    assert tracing.parse(header.encode()) == parent
    for bad in (None, "", "garbage", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"):
        assert tracing.parse(bad) is None, bad
    # A later version may append fields: its first four are still understood.
    assert tracing.parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more") is not None
    import_id = uuid.uuid4()
    assert tracing.for_import(import_id).trace_id == import_id.hex
    headers = tracing.with_header([("event_type", b"X"), ("traceparent", b"old")], child)
    assert headers == [("event_type", b"X"), ("traceparent", child.header.encode())]
    assert tracing.from_headers(headers) == child


def test_json_log_line_carries_the_context() -> None:
    formatter = logs.JsonFormatter("validator")
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    assert json.loads(formatter.format(record)).keys() == {"ts", "level", "logger", "message", "service"}
    context = logs.LogContext(import_id="i", flow_id="f", correlation_id="c", trace_id="t")
    with logs.bound(context):
        line = json.loads(formatter.format(record))
    assert {k: line[k] for k in ("level", "logger", "message", "service", "import_id", "flow_id",
                                 "correlation_id", "trace_id")} == {
        "level": "WARNING", "logger": "x.y", "message": "hello world", "service": "validator",
        "import_id": "i", "flow_id": "f", "correlation_id": "c", "trace_id": "t"}
    assert logs.current() == logs.EMPTY
