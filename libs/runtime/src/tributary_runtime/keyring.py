"""The key ring: every API key's hash and tenant, learnt from ``access.api-keys.v1``.

Each process reads the whole (compacted) topic from the beginning and then follows it,
so a key created or revoked anywhere is known everywhere within a fetch wait (50 ms, 200 ms
after ten quiet seconds; ``ServiceSettings.fetch_dormant_wait_ms``), and no
service reads another's schema. Until it has caught up with the topic, the ring is not
ready and the process reports itself not ready.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from contracts import Tenant, topics
from contracts.access import ApiKeyRecord, key_id_of, matches

from .broker import FetchPacing, kafka_client_options
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class KeyRing:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._records: dict[str, ApiKeyRecord] = {}
        self.ready = asyncio.Event()

    def tenant_for(self, key: str) -> Tenant | None:
        """The tenant of a valid, unrevoked key; None otherwise."""
        key_id = key_id_of(key)
        record = self._records.get(key_id) if key_id else None
        if record is None or record.revoked_at is not None or not matches(key, record):
            return None
        return Tenant(client_account_id=record.client_account_id, engagement_id=record.engagement_id)

    def learn(self, value: bytes | None, key: bytes | None) -> None:
        if value is None:  # a tombstone: the key is gone
            if key is not None:
                self._records.pop(key.decode(), None)
            return
        try:
            record = ApiKeyRecord.model_validate_json(value)
        except ValidationError:
            log.warning("ignoring a malformed record on %s", topics.API_KEYS)
            return
        self._records[record.key_id] = record

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
        for tp, offset in end.items():
            # Also the high watermark of the last fetch: ``end`` (ListOffsets) falls short on tansu when a
            # partition's last batch holds several records (see tributary_runtime.watermarks), which
            # would report the ring ready before it knows every key.
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < max(offset, highwater):
                return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(**kafka_client_options(self.settings), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=self.settings.fetch_idle_wait_ms)
        await consumer.start()
        # Keys change rarely: the idle pace at best, the dormant one after a quiet spell; a new or
        # revoked key takes effect everywhere within that wait.
        pacing = FetchPacing(consumer, self.settings, busy_ms=self.settings.fetch_idle_wait_ms)
        try:
            await consumer.topics()
            partitions = [TopicPartition(topics.API_KEYS, p)
                          for p in sorted(consumer.partitions_for_topic(topics.API_KEYS) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions) if partitions else {}
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                pacing.observe(bool(batches))
                for messages in batches.values():
                    for message in messages:
                        self.learn(message.value, message.key)
                if not self.ready.is_set() and await self._caught_up(consumer, end):
                    self.ready.set()
        finally:
            await consumer.stop()
