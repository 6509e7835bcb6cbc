"""An upstream system submits an import as events (no HTTP); dashboards follow the status topic."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import Tenant, topics
from contracts.producer import ImportSubmitter
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e


async def submit(bootstrap: str, tenant: Tenant, rows: list[dict]) -> tuple:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return await ImportSubmitter(producer, producer_name="upstream:cmdb-sync", batch_rows=3).submit(
            tenant=tenant, category="cmdb_export", records=enumerate(rows, start=1), filename="cmdb-sync",
            user_id="cmdb-sync")
    finally:
        await producer.stop()


async def read_status(bootstrap: str, flow_id: str) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topics.FLOW_STATUS, p) for p in consumer.partitions_for_topic(topics.FLOW_STATUS)
                      or await _partitions(consumer)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        snapshots = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for m in messages:
                    body = json.loads(m.value)
                    if m.key.decode() == flow_id:
                        snapshots.append(body["payload"])
        return snapshots
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    await consumer.topics()  # refreshes metadata
    return consumer.partitions_for_topic(topics.FLOW_STATUS) or set()


def test_upstream_import_as_events(client: TributaryClient, stack_env: dict[str, str], tenant: Tenant) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    rows = [{"Hostname": f"up-{i:02d}", "IP": f"10.9.0.{i}", "Environment": "production"} for i in range(1, 8)]
    submitted = asyncio.run(submit(bootstrap, tenant, rows))
    assert (submitted.record_count, submitted.batch_count) == (7, 3)

    flow = client.wait_for_flow(submitted.flow_id)
    child = flow["child"]
    assert flow["master"]["status"] == "completed"
    assert child["phase_state"]["upload"]["source"] == "upstream"
    assert child["phase_state"]["validation"]["field_mapping"] == {
        "Hostname": "hostname", "IP": "ip_address", "Environment": "environment"}
    assert child["phase_state"]["enrichment"]["assets_created"] == 7
    assert flow["timeline"][0]["producer"] == "upstream:cmdb-sync"

    snapshots = asyncio.run(read_status(bootstrap, str(submitted.flow_id)))
    assert snapshots, "no FlowStatus published"
    versions = [s["version"] for s in snapshots]
    assert versions == sorted(versions)
    last = snapshots[-1]
    assert (last["status"], last["current_phase"], last["progress_percentage"]) == ("completed", "complete", 100.0)
    assert last["version"] == flow["master"]["version"]
