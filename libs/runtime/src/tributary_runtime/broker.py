"""Kafka clients built from settings, and topic creation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from contracts import topics
from contracts.envelope import HEADER_EVENT_TYPE, header_value

from . import metrics
from .settings import ServiceSettings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class CountingProducer(AIOKafkaProducer):
    """A producer that counts what the broker acknowledged (tributary_events_produced_total).

    Every publish of a service goes through ``send`` (``send_and_wait`` too), so one
    callback per message here counts them all; a message is a batch of rows, not a row.
    """

    async def send(self, topic: str, value: Any = None, key: Any = None, partition: Any = None,
                   timestamp_ms: Any = None, headers: Any = None) -> asyncio.Future[Any]:
        future = await super().send(topic, value, key, partition, timestamp_ms, headers)
        event_type = header_value(headers, HEADER_EVENT_TYPE) or "unknown"
        future.add_done_callback(lambda f: _count_acknowledged(f, topic, event_type))
        return future


def _count_acknowledged(future: asyncio.Future[Any], topic: str, event_type: str) -> None:
    if not future.cancelled() and future.exception() is None:
        metrics.EVENTS_PRODUCED.inc(1, topic, event_type)


def make_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    # acks=all without idempotence: brokers without InitProducerId (tansu) work, and
    # duplicates are recognised by deterministic event ids instead.
    return CountingProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        linger_ms=2,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        compression_type=None,
    )


def make_consumer(settings: ServiceSettings, group_id: str, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.max_poll_records,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=16 * MAX_MESSAGE_BYTES,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        rebalance_timeout_ms=30_000,
    )


async def ensure_topics(settings: ServiceSettings, names: tuple[str, ...] = topics.ALL,
                        *, with_dlq: bool = True, attempts: int = 30) -> None:
    """Create missing topics (and their DLQs). Idempotent; retries while the broker starts."""
    wanted = list(names) + ([topics.dlq(n) for n in names] if with_dlq else [])
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                new = [
                    NewTopic(
                        n,
                        num_partitions=settings.topic_partitions,
                        replication_factor=1,
                        topic_configs={"cleanup.policy": "compact"} if n in topics.COMPACTED else {},
                    )
                    for n in missing
                ]
                try:
                    await admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
            return
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            log.info("broker not reachable yet (%s), retrying", settings.kafka_bootstrap_servers)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
