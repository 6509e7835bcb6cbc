"""Observability of one import, end to end: /metrics counts exactly its events and rows, the
JSON log lines name it, and one trace id travels on every event from upload to completion."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from contracts import topics
from contracts.envelope import header_value
from flow_state.projection import EVENT_TYPES as FLOW_STATE_EVENT_TYPES
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess
from tributary_runtime import tracing
from tributary_runtime.metrics import parse_text
from tributary_runtime.watermarks import high_watermarks

pytestmark = pytest.mark.e2e

ROWS = 2_500
INVALID_EVERY = 50
# Which service publishes what (the envelope's producer field) and its consumer group.
GROUPS = {"validator": "validator", "enricher": "enricher", "flow-state": "flow-state"}
PRODUCER_NAMES = {"ingest": "ingest", "validator": "validator", "enricher": "enricher", "flow-state": "flow-state"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def cmdb_file(rows: int) -> bytes:
    lines = ["hostname,ip_address,environment"]
    for i in range(1, rows + 1):
        ip = "10.1.1.999" if i % INVALID_EVERY == 0 else f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        lines.append(f"observed-{i:06d}.corp.example,{ip},production")
    return ("\n".join(lines) + "\n").encode()


def scrape(service: ServiceProcess) -> Samples:
    response = httpx.get(service.url + "/metrics", timeout=10)  # no API key: scrapers have none
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_text(response.text)


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def delta(before: Samples, after: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The growth of each series of a counter between two scrapes (series that grew only)."""
    grown = {}
    for labels, value in series(after, name).items():
        change = value - before.get((name, labels), 0.0)
        if change:
            grown[labels] = change
    return grown


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


async def _messages_keyed(bootstrap: str, topic: str, key: bytes) -> list[Any]:
    """Every message with ``key`` on ``topic``: its partition read from the start to the high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=10,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        partition = DefaultPartitioner()(key, partitions, partitions)
        tp = TopicPartition(topic, partition)
        end = (await high_watermarks(bootstrap, [tp]))[tp]
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        found = []
        while await consumer.position(tp) < end:
            for messages in (await consumer.getmany(tp, timeout_ms=500)).values():
                found += [m for m in messages if m.key == key]
        return found
    finally:
        await consumer.stop()


def import_messages(bootstrap: str, import_id: str, flow_id: str) -> dict[str, list[Any]]:
    async def read() -> dict[str, list[Any]]:
        by_topic = {t: await _messages_keyed(bootstrap, t, import_id.encode())
                    for t in (topics.RECORDS, topics.EVENTS, topics.VALIDATED_RECORDS)}
        by_topic[topics.FLOW_STATUS] = await _messages_keyed(bootstrap, topics.FLOW_STATUS, flow_id.encode())
        return by_topic

    return asyncio.run(read())


def wait_until_caught_up(services: list[ServiceProcess], timeout: float = 120) -> dict[str, Samples]:
    """Scrapes of every service once each consumer's lag is 0 on every partition it owns."""
    deadline = time.monotonic() + timeout
    while True:
        scrapes = {s.name: scrape(s) for s in services}
        lags = {name: series(samples, "tributary_consumer_lag") for name, samples in scrapes.items()}
        if all(lags[n] and not any(lags[n].values()) for n in GROUPS):
            return scrapes
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer lag did not return to 0 in {timeout}s: {lags}")
        time.sleep(0.2)


def log_lines(service: ServiceProcess, import_id: str) -> list[dict[str, Any]]:
    """The service's log lines about ``import_id`` (each must be one JSON object)."""
    text = (service.log_dir / service.log_name).read_text(errors="replace")
    return [json.loads(line) for line in text.splitlines() if import_id in line]


def test_metrics_logs_and_trace_of_one_import(client: TributaryClient, pipeline: dict[str, ServiceProcess],
                                              stack_env: dict[str, str]) -> None:
    services = list(pipeline.values())
    before = wait_until_caught_up(services)
    caller = tracing.TraceContext(trace_id=uuid.uuid4().hex, span_id="00f067aa0ba902b7")

    response = httpx.post(f"{client.ingest_url}/v1/imports", headers=client.headers | {"traceparent": caller.header},
                          files={"file": ("observed.csv", cmdb_file(ROWS))}, data={"category": "cmdb_export"},
                          timeout=120)
    assert response.status_code == 202, response.text
    import_id, flow_id = response.json()["import_id"], response.json()["flow_id"]
    flow = client.wait_for_flow(flow_id, timeout=240)
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    invalid = ROWS // INVALID_EVERY
    after = wait_until_caught_up(services)

    # --- the import's events, as the broker has them
    messages = import_messages(stack_env["KAFKA_BOOTSTRAP_SERVERS"], import_id, flow_id)
    published: dict[str, Counter[tuple[str, str]]] = {name: Counter() for name in PRODUCER_NAMES}
    for topic, found in messages.items():
        for m in found:
            producer = json.loads(m.value)["producer"]
            published[producer][(topic, header_value(m.headers, "event_type"))] += 1
    record_batches = published["ingest"][(topics.RECORDS, "RecordBatch")]
    validated_batches = published["validator"][(topics.VALIDATED_RECORDS, "ValidatedBatch")]
    assert record_batches >= 3 and validated_batches >= 3
    assert published["validator"][(topics.EVENTS, "ValidationCompleted")] == 1
    assert published["enricher"][(topics.EVENTS, "EnrichmentCompleted")] == 1

    # --- metrics: what each process counted equals what the broker holds for the import
    for name, service in pipeline.items():
        produced = delta(before[name], after[name], "tributary_events_produced_total")
        assert produced == {labels(topic=t, event_type=e): n for (t, e), n in published[name].items()}, name
    consumed = {name: delta(before[name], after[name], "tributary_events_consumed_total") for name in GROUPS}
    assert consumed["validator"] == {
        labels(group="validator", topic=topics.RECORDS, event_type="RecordBatch"): record_batches,
        labels(group="validator", topic=topics.EVENTS, event_type="ImportUploaded"): 1}
    assert consumed["enricher"] == {
        labels(group="enricher", topic=topics.VALIDATED_RECORDS, event_type="ValidatedBatch"): validated_batches,
        labels(group="enricher", topic=topics.EVENTS, event_type="ValidationCompleted"): 1}
    lifecycle = Counter(e for m in messages[topics.EVENTS]
                        if (e := header_value(m.headers, "event_type")) in FLOW_STATE_EVENT_TYPES)
    assert consumed["flow-state"] == {labels(group="flow-state", topic=topics.EVENTS, event_type=e): n
                                      for e, n in lifecycle.items()}
    rows = {name: delta(before[name], after[name], "tributary_rows_processed_total") for name in pipeline}
    assert rows == {"ingest": {labels(stage="published"): ROWS}, "validator": {labels(stage="validated"): ROWS},
                    "enricher": {labels(stage="applied"): ROWS - invalid}, "flow-state": {}}
    for name, group in GROUPS.items():
        assert delta(before[name], after[name], "tributary_dead_letters_total") == {}
        handled = delta(before[name], after[name], "tributary_batch_handling_seconds_count")
        assert handled and handled[labels(group=group)] >= 1

    # --- one trace from the caller's context to completion; each stage under a span of its own
    contexts = [(topic, header_value(m.headers, "event_type"), tracing.from_headers(m.headers))
                for topic, found in messages.items() for m in found]
    assert all(c is not None for _, _, c in contexts), [(t, e) for t, e, c in contexts if c is None]
    assert {c.trace_id for _, _, c in contexts} == {caller.trace_id}
    span_of = {e: c.span_id for _, e, c in contexts}
    assert caller.span_id not in span_of.values()
    assert len({span_of["ImportUploaded"], span_of["ValidationCompleted"], span_of["EnrichmentCompleted"],
                span_of["FlowStatus"]}) == 4

    # --- JSON log lines naming the import carry its ids and trace id
    for name, must_say in (("ingest", "published"), ("validator", "validation phase"),
                           ("enricher", "enrichment phase")):
        lines = log_lines(pipeline[name], import_id)
        assert any(must_say in line["message"] for line in lines), (name, lines)
        for line in lines:
            assert {"ts", "level", "logger", "message", "service"} <= line.keys()
            assert (line["service"], line.get("import_id"), line.get("flow_id"), line.get("trace_id")) == (
                name, import_id, flow_id, caller.trace_id), line

    # --- an upload without trace context is traced under its import id
    plain = client.upload_bytes(b"hostname,ip_address\nuntraced-1,10.9.9.1\n", "untraced.csv", "cmdb_export")
    assert plain.status_code == 202, plain.text
    client.wait_for_flow(plain.json()["flow_id"], timeout=120)
    untraced = import_messages(stack_env["KAFKA_BOOTSTRAP_SERVERS"], plain.json()["import_id"],
                               plain.json()["flow_id"])
    ids = {tracing.from_headers(m.headers).trace_id for found in untraced.values() for m in found}  # type: ignore[union-attr]
    assert ids == {uuid.UUID(plain.json()["import_id"]).hex}


def test_health_ready_and_metrics_need_no_key(pipeline: dict[str, ServiceProcess]) -> None:
    for service in pipeline.values():
        assert httpx.get(service.url + "/health", timeout=5).json() == {"status": "ok"}
        ready = httpx.get(service.url + "/ready", timeout=5)
        expected = {"keyring": True, "database": True} | ({"consumer": True} if service.name in GROUPS else {})
        assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": expected})
        assert httpx.get(service.url + "/metrics", timeout=5).status_code == 200
