"""Guarantee 7, schema evolution, on the real topic: ImportFailed v1 and v2 project identically, v3 is dead-lettered.

ImportFailed v2 groups the error as ``error`` {code, reason, details}; v1 had those fields
flat. The services emit v2; the log may still hold v1 (and upstream tools may still
publish it), which flow-state upcasts on decode. A version newer than the code knows
goes to ``imports.events.v1.dlq`` and changes no table.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import Envelope, ErrorInfo, ImportFailed, ImportUploaded, RecordBatch, Tenant, topics
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e

T = TypeVar("T")
PRODUCER = "upstream:cmdb-sync"
# The same failure, as each version carries it.
PHASE, CODE, REASON = "validation", "batches_missing", "batch 2 of 2 never arrived; the upstream gave up"
DETAILS = {"received_batches": [1], "expected_batches": 2}


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := check()) is not None:
            return result
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


async def _send(bootstrap: str, messages: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]) -> list[Any]:
    """Publish (topic, key, value, headers) in order; return each record's metadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, key=key, value=value, headers=headers)
                for topic, key, value, headers in messages]
    finally:
        await producer.stop()


def send(bootstrap: str, *messages: tuple[str, bytes, bytes, list[tuple[str, bytes]]]) -> list[Any]:
    return asyncio.run(_send(bootstrap, list(messages)))


def wire(env: Envelope) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    return topics.EVENTS, env.key, env.encode(), env.headers()


def start_stalled_import(bootstrap: str, tenant: Tenant, at: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """A real upstream import that announced 2 batches and delivered 1: its flow waits in validation."""
    import_id, flow_id = uuid.uuid4(), uuid.uuid4()
    batch = RecordBatch(category="cmdb_export", batch_seq=1, columns=["hostname"], row_numbers=[1, 2],
                        rows=[["stalled-1"], ["stalled-2"]])
    marker = ImportUploaded(category="cmdb_export", filename="cmdb-sync", file_format="events", record_count=4,
                            batch_count=2, checksum="0" * 64, columns=["hostname"], source="upstream")

    def wrap(payload: Any, stage_key: str) -> Envelope:
        return Envelope.wrap(payload, tenant=tenant, import_id=import_id, flow_id=flow_id, producer=PRODUCER,
                             user_id="cmdb-sync", stage_key=stage_key, occurred_at=at)

    batch_env = wrap(batch, "1")
    send(bootstrap, (topics.RECORDS, batch_env.key, batch_env.encode(), batch_env.headers()), wire(wrap(marker, "")))
    return import_id, flow_id


def failed_envelope(tenant: Tenant, import_id: uuid.UUID, flow_id: uuid.UUID, at: datetime) -> Envelope:
    """ImportFailed as the current code writes it (v2)."""
    return Envelope.wrap(ImportFailed(phase=PHASE, error=ErrorInfo(code=CODE, reason=REASON, details=DETAILS)),
                         tenant=tenant, import_id=import_id, flow_id=flow_id, producer=PRODUCER, user_id="cmdb-sync",
                         stage_key="gave-up", occurred_at=at)


def as_version(env: Envelope, version: int, payload: dict[str, Any]) -> tuple[str, bytes, bytes, list]:
    """``env`` on the wire as another schema version of its event, as an older or newer producer sends it."""
    body = json.loads(env.encode()) | {"schema_version": version, "payload": payload}
    headers = [(k, str(version).encode() if k == "schema_version" else v) for k, v in env.headers()]
    return topics.EVENTS, env.key, json.dumps(body).encode(), headers


def running_in_validation(client: TributaryClient, flow_id: uuid.UUID) -> dict[str, Any]:
    flow = client.wait_for_flow(flow_id, statuses=("running",))
    assert (flow["child"]["current_phase"], flow["child"]["status"]) == ("validation", "running")
    return flow


def normalised(flow: dict[str, Any]) -> Any:
    """The flow document with its own ids replaced by placeholders, so two flows can be compared."""
    text = json.dumps(flow, sort_keys=True, default=str)
    ids = {flow["master"]["flow_id"]: "<flow>", flow["child"]["id"]: "<child>",
           flow["child"]["data_import_id"]: "<import>"}
    ids |= {entry["event_id"]: f"<event {entry['seq']}>" for entry in flow["timeline"]}
    for value, placeholder in ids.items():
        text = text.replace(str(value), placeholder)
    return json.loads(text)


async def _events_of(bootstrap: str, topic: str, key: bytes) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                found += [m for m in messages if m.key == key]
        return found
    finally:
        await consumer.stop()


def events_of(bootstrap: str, topic: str, key: bytes) -> list[Any]:
    return asyncio.run(_events_of(bootstrap, topic, key))


def stored_offset(database_url: str, partition: int) -> int:
    async def load() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(
                "SELECT next_offset FROM flow_state.consumer_offsets"
                " WHERE group_id = 'flow-state' AND topic = $1 AND partition = $2", topics.EVENTS, partition) or 0
        finally:
            await conn.close()

    return asyncio.run(load())


def test_the_services_publish_import_failed_v2(client: TributaryClient, stack_env: dict[str, str]) -> None:
    response = client.upload_bytes(b"os,ram\nlinux,16\n", "no-identifier.csv", "cmdb_export")
    assert response.status_code == 202, response.text
    flow = client.wait_for_flow(response.json()["flow_id"])
    assert flow["child"]["phase_state"]["validation"]["code"] == "required_column"

    import_id = response.json()["import_id"]
    failures = [m for m in events_of(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topics.EVENTS, import_id.encode())
                if dict(m.headers)["event_type"] == b"ImportFailed"]
    assert len(failures) == 1
    [message] = failures
    assert dict(message.headers)["schema_version"] == b"2"
    body = json.loads(message.value)
    assert body["schema_version"] == 2 and body["producer"] == "validator"
    assert body["payload"]["error"]["code"] == "required_column"
    assert body["payload"]["error"]["reason"] == flow["child"]["error_message"]
    assert not {"code", "reason", "details"} & set(body["payload"])


def test_v1_and_v2_on_the_topic_are_projected_identically(client: TributaryClient, stack_env: dict[str, str],
                                                          tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    # Both imports and both failures carry the same times, so their flows may be compared whole.
    started, gave_up = datetime.now(UTC).replace(microsecond=0), datetime.now(UTC).replace(microsecond=500000)
    old_import, old_flow = start_stalled_import(bootstrap, tenant, started)
    new_import, new_flow = start_stalled_import(bootstrap, tenant, started)
    running_in_validation(client, old_flow)
    running_in_validation(client, new_flow)

    v1 = as_version(failed_envelope(tenant, old_import, old_flow, gave_up), 1,
                    {"phase": PHASE, "code": CODE, "reason": REASON, "details": DETAILS})
    v2 = wire(failed_envelope(tenant, new_import, new_flow, gave_up))
    assert dict(v1[3])["schema_version"] == b"1" and dict(v2[3])["schema_version"] == b"2"
    assert "code" in json.loads(v1[2])["payload"] and "error" in json.loads(v2[2])["payload"]
    send(bootstrap, v1, v2)

    by_v1, by_v2 = client.wait_for_flow(old_flow), client.wait_for_flow(new_flow)
    for flow in (by_v1, by_v2):
        child = flow["child"]
        assert (flow["master"]["status"], child["status"], child["current_phase"]) == ("failed", "failed",
                                                                                      "validation")
        assert child["error_message"] == REASON
        assert {k: child["phase_state"]["validation"][k] for k in ("status", "code", "reason", "details")} == {
            "status": "failed", "code": CODE, "reason": REASON, "details": DETAILS}
        step = next(s for s in flow["steps"] if s["step_name"] == "validation")
        assert (step["status"], step["error_message"], step["output"]) == ("failed", REASON,
                                                                           {"code": CODE, **DETAILS})
        assert flow["timeline"][-1]["event_type"] == "ImportFailed"
        assert flow["timeline"][-1]["detail"] == {"phase": PHASE, "code": CODE, "reason": REASON}
    # Master, child, steps and timeline: the same document but for the flows' own ids.
    assert normalised(by_v1) == normalised(by_v2)


def test_a_newer_version_goes_to_the_dlq_and_changes_no_table(client: TributaryClient, stack_env: dict[str, str],
                                                             database_url: str, tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    now = datetime.now(UTC)
    import_id, flow_id = start_stalled_import(bootstrap, tenant, now)
    before = running_in_validation(client, flow_id)

    v3 = as_version(failed_envelope(tenant, import_id, flow_id, now), 3, {
        "phase": PHASE, "error": {"code": CODE, "reason": REASON, "details": DETAILS}, "severity": "fatal"})
    [sent] = send(bootstrap, v3)

    letters = wait_until(lambda: events_of(bootstrap, topics.dlq(topics.EVENTS), str(import_id).encode()) or None,
                         "the v3 event in the DLQ")
    assert len(letters) == 1, "only flow-state consumes ImportFailed; the others skip it by its header"
    [letter] = letters
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq.error_code"] == "unsupported_schema_version"
    assert headers["dlq.error"] == "ImportFailed schema_version 3 is newer than supported 2"
    assert headers["dlq.consumer_group"] == "flow-state"
    assert (headers["dlq.source_topic"], headers["dlq.source_partition"], headers["dlq.source_offset"]) == (
        topics.EVENTS, str(sent.partition), str(sent.offset))
    assert (headers["event_type"], headers["schema_version"]) == ("ImportFailed", "3")
    assert letter.value == v3[2], "the original bytes, unchanged"

    # flow-state has committed past the v3 event, and the flow is as it was: no failure, no timeline entry.
    wait_until(lambda: stored_offset(database_url, sent.partition) > sent.offset or None,
               "flow-state to store its offset past the v3 event")
    after = client.get_flow(flow_id).json()
    assert after == before
    assert after["master"]["status"] == "running" and after["child"]["error_message"] is None
    assert "ImportFailed" not in [e["event_type"] for e in after["timeline"]]
