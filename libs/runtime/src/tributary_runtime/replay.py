"""Re-publish one import's events: same bytes, keys, headers and partitions, to the same topics.

Every consumer dedupes (staged joins on ``(import_id, batch_seq)`` and markers, the
applied-event ledger on event ids, reverts on ``import_reverts``), so a replay changes no
table; what it does is give a consumer that is stuck waiting for part of an import (a join
missing a batch, say) another chance to see all of it. ``wait_consumed`` waits until every
consumer group of the topics has read past what was re-published, from the offsets each
service stores beside its effects.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import topics
from contracts.envelope import HEADER_EVENT_TYPE, header_value

from .broker import MAX_MESSAGE_BYTES, kafka_client_options, make_producer
from .checksums import ident
from .settings import ServiceSettings
from .watermarks import high_watermarks

# The topics an import's events live on (outputs such as flows.status.v1 and the DLQs are not replayed).
INPUT_TOPICS = (topics.RECORDS, topics.VALIDATED_RECORDS, topics.EVENTS)
TP = TopicPartition


@dataclass(frozen=True)
class Found:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def event_type(self) -> str | None:
        return header_value(self.headers, HEADER_EVENT_TYPE)


async def find(settings: ServiceSettings, import_id: uuid.UUID, topic_names: Iterable[str] = INPUT_TOPICS
               ) -> list[Found]:
    """Every message keyed by the import on the topics, in timestamp order."""
    key = str(import_id).encode()
    names = tuple(topic_names)
    rank = {t: i for i, t in enumerate(names)}
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=None,
                                client_id="tributary-replay", enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=settings.fetch_max_wait_ms, max_poll_records=2000,
                                max_partition_fetch_bytes=MAX_MESSAGE_BYTES, fetch_max_bytes=16 * MAX_MESSAGE_BYTES)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TP(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        # The high watermark, not end_offsets(): tansu reports the end of a partition whose last batch
        # holds several records as that batch's first offset + 1, which would miss the import's last messages.
        end = await high_watermarks(settings, partitions)
        begin = await consumer.beginning_offsets(partitions)
        # Explicit positions straight after assigning: no offset reset is requested that could land later.
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, begin[tp])
        found: dict[tuple[str, int, int], Found] = {}

        async def poll() -> bool:
            got = await consumer.getmany(*partitions, timeout_ms=200)
            for messages in got.values():
                for m in messages:
                    if m.key == key:
                        found[(m.topic, m.partition, m.offset)] = Found(
                            m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, tuple(m.headers or ()))
            return bool(got)

        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            await poll()
        return sorted(found.values(), key=lambda f: (f.timestamp, rank[f.topic], f.partition, f.offset))
    finally:
        await consumer.stop()


async def republish(settings: ServiceSettings, messages: list[Found]) -> dict[TP, int]:
    """Send each message again to its topic and partition; returns each partition's end after it."""
    producer = make_producer(settings, "tributary-replay")
    await producer.start()
    try:
        sends = [await producer.send(m.topic, value=m.value, key=m.key, partition=m.partition,
                                     headers=list(m.headers)) for m in messages]
        ends: dict[TP, int] = {}
        for m, fut in zip(messages, sends, strict=True):
            meta = await fut
            tp = TP(m.topic, m.partition)
            ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
        return ends
    finally:
        await producer.stop()


async def consumer_positions(conn: asyncpg.Connection, schemas: Iterable[str]) -> dict[tuple[str, str], dict[TP, int]]:
    """{(schema, group): {partition: next offset}} of every group storing offsets in ``schemas``."""
    out: dict[tuple[str, str], dict[TP, int]] = {}
    for schema in schemas:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{ident(schema)}.consumer_offsets")
        if not exists:
            continue
        for r in await conn.fetch(f"SELECT group_id, topic, partition, next_offset"
                                  f" FROM {ident(schema)}.consumer_offsets"):
            out.setdefault((schema, r["group_id"]), {})[TP(r["topic"], r["partition"])] = r["next_offset"]
    return out


async def wait_consumed(settings: ServiceSettings, ends: Mapping[TP, int], schemas: Iterable[str], *,
                        timeout: float = 60.0) -> dict[str, Any]:
    """Wait until every group that consumes a topic has stored offsets at or past ``ends`` on it."""
    schemas = tuple(schemas)
    conn = await asyncpg.connect(settings.asyncpg_dsn)
    deadline = time.monotonic() + timeout
    try:
        while True:
            positions = await consumer_positions(conn, schemas)
            lagging: dict[str, dict[str, int]] = {}
            for (schema, group), pos in positions.items():
                consumed_topics = {tp.topic for tp in pos}
                for tp, end in ends.items():
                    if tp.topic in consumed_topics and pos.get(tp, 0) < end:
                        lagging.setdefault(f"{schema}:{group}", {})[f"{tp.topic}[{tp.partition}]"] = \
                            end - pos.get(tp, 0)
            if not lagging:
                return {"caught_up": True, "groups": sorted(f"{s}:{g}" for s, g in positions)}
            if time.monotonic() > deadline:
                return {"caught_up": False, "lagging": lagging}
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
