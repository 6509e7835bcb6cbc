"""Where a partition ends, on the real development broker (tansu): the high watermark, not ListOffsets.

tansu answers ListOffsets(latest) (aiokafka's ``end_offsets()``) with the base offset of the
partition's last record batch + 1. ``high_watermarks`` must count every message of that batch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tributary_cli import devstack
from tributary_runtime.watermarks import high_watermarks


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    broker, address = devstack.start_broker()
    try:
        yield address
    finally:
        broker.terminate()
        broker.wait(timeout=10)


async def _create(bootstrap: str, partitions: int) -> str:
    topic = f"watermarks-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def _publish_in_batches(bootstrap: str, topic: str, partition: int, sizes: tuple[int, ...]) -> None:
    """One record batch per size: the sends of a batch are all in flight together (linger)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for size in sizes:
            await asyncio.gather(*[await producer.send(topic, b"x", partition=partition) for _ in range(size)])
    finally:
        await producer.stop()


async def _listed_and_read(bootstrap: str, tps: list[TopicPartition], ends: dict[TopicPartition, int]
                           ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, list[int]]]:
    """What ListOffsets says, and every offset read from the beginning up to ``ends``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        listed = await consumer.end_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        read: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                read[tp] += [m.offset for m in messages]
        return listed, read
    finally:
        await consumer.stop()


def test_the_high_watermark_counts_every_message_of_the_last_batch(bootstrap: str) -> None:
    async def scenario() -> None:
        topic = await _create(bootstrap, 3)
        tps = [TopicPartition(topic, p) for p in range(3)]
        await _publish_in_batches(bootstrap, topic, 0, (4, 3))  # offsets 0-3 and 4-6
        await _publish_in_batches(bootstrap, topic, 1, (500,))  # a bulk publish: one batch
        ends = await high_watermarks(bootstrap, tps)
        assert ends == {tps[0]: 7, tps[1]: 500, tps[2]: 0}
        listed, read = await _listed_and_read(bootstrap, tps, ends)
        assert read == {tps[0]: list(range(7)), tps[1]: list(range(500)), tps[2]: []}
        # What the watermark is for: ListOffsets falls short where the last batch holds several records.
        print(f"\nListOffsets(latest) said {listed[tps[0]]} for 7 messages, {listed[tps[1]]} for 500")
        assert all(listed[tp] <= ends[tp] for tp in tps)

    asyncio.run(scenario())


def test_no_partitions_no_request(bootstrap: str) -> None:
    assert asyncio.run(high_watermarks(bootstrap, [])) == {}
