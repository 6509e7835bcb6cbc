"""Events that cannot be applied: a checksum that does not match, a body that is not JSON."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import Envelope, ImportUploaded, RecordBatch, Tenant, topics
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e


async def publish_mismatched_import(bootstrap: str, tenant: Tenant) -> uuid.UUID:
    import_id, flow_id = uuid.uuid4(), uuid.uuid4()
    batch = RecordBatch(category="cmdb_export", batch_seq=1, columns=["hostname"], row_numbers=[1], rows=[["h-1"]])
    marker = ImportUploaded(category="cmdb_export", filename="x", file_format="events", record_count=1,
                            batch_count=1, checksum="0" * 64, columns=["hostname"], source="upstream")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, payload in ((topics.RECORDS, batch), (topics.EVENTS, marker)):
            env = Envelope.wrap(payload, tenant=tenant, import_id=import_id, flow_id=flow_id, producer="upstream:test",
                                stage_key="1")
            await producer.send_and_wait(topic, key=env.key, value=env.encode(), headers=env.headers())
        await producer.send_and_wait(topics.EVENTS, key=str(import_id).encode(), value=b"{not json",
                                     headers=[("event_type", b"ImportUploaded"), ("schema_version", b"1")])
    finally:
        await producer.stop()
    return flow_id


async def dead_letters(bootstrap: str, key: bytes) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(topics.dlq(topics.EVENTS), bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[dict[str, str]] = []
        for _ in range(100):
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                found += [{k: v.decode() for k, v in m.headers} for m in messages if m.key == key]
            if len(found) >= 2:  # one per consumer group of the events topic that decodes it
                break
        return found
    finally:
        await consumer.stop()


def test_checksum_mismatch_fails_and_poison_goes_to_dlq(client: TributaryClient, stack_env: dict[str, str],
                                                        tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    flow_id = asyncio.run(publish_mismatched_import(bootstrap, tenant))
    flow = client.wait_for_flow(flow_id)
    assert flow["master"]["status"] == "failed"
    assert flow["child"]["phase_state"]["validation"]["code"] == "checksum_mismatch"

    import_id = flow["child"]["data_import_id"]
    letters = asyncio.run(dead_letters(bootstrap, import_id.encode()))
    assert letters, "the undecodable event never reached the DLQ"
    for headers in letters:
        assert headers["dlq.error_code"] == "malformed"
        assert headers["dlq.source_topic"] == topics.EVENTS
        assert headers["dlq.source_offset"].isdigit()
    assert {h["dlq.consumer_group"] for h in letters} >= {"validator", "flow-state"}

    # The partition keeps flowing: a later import completes.
    response = client.upload_bytes(b"hostname\nafter-poison\n", "after.csv", "cmdb_export")
    assert client.wait_for_flow(response.json()["flow_id"])["master"]["status"] == "completed"
