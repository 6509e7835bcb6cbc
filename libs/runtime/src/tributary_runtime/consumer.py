"""The consumer loop every service runs: exactly-once effects over at-least-once delivery.

For each partition batch from ``getmany`` the loop opens one database transaction,
locks the partition's stored offset, skips what was already applied, lets the
service's handler make its effects, publishes what the handler emitted (and waits for
the broker's acknowledgement), stores the next offset, and commits. A crash anywhere
before the commit replays the batch; everything emitted carries a deterministic id, so
the replay's duplicates are recognised downstream.

A batch whose handler fails is retried message by message; a message that keeps
failing (or cannot be decoded) goes to ``<topic>.dlq`` and the partition moves on.
Connection-level errors are transient: retried with backoff, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

from contracts import REGISTRY, Envelope, UndecodableEvent, decode
from contracts.envelope import HEADER_EVENT_TYPE, header_value

from . import offsets
from .broker import make_consumer
from .db import Database
from .dlq import dead_letter
from .settings import ServiceSettings

log = logging.getLogger(__name__)

TRANSIENT = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)


@dataclass(frozen=True)
class Inbound:
    topic: str
    partition: int
    offset: int
    envelope: Envelope[Any]


@dataclass
class Unit:
    """One transaction of effects, plus the events to publish before it commits."""

    conn: asyncpg.Connection
    producer: AIOKafkaProducer
    group_id: str
    _sends: list[Any] = field(default_factory=list)

    async def publish(self, topic: str, envelope: Envelope[Any], key: bytes | None = None) -> None:
        self._sends.append(await self.producer.send(
            topic, key=key if key is not None else envelope.key, value=envelope.encode(),
            headers=envelope.headers()))

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes | None,
                          headers: list[tuple[str, bytes]]) -> None:
        self._sends.append(await self.producer.send(topic, key=key, value=value, headers=headers))

    async def flush(self) -> None:
        sends, self._sends = self._sends, []
        for fut in sends:
            await fut


Handler = Callable[[Unit, list[Inbound]], Awaitable[None]]
DeadLetterHook = Callable[[Unit, Inbound, str], Awaitable[None]]


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, owner: EventConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self.owner._seek_to_stored(assigned)


class EventConsumer:
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        db: Database,
        producer: AIOKafkaProducer,
        group_id: str,
        topics: tuple[str, ...],
        handler: Handler,
        event_types: Collection[str] | None = None,
        on_dead_letter: DeadLetterHook | None = None,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.producer = producer
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.event_types = frozenset(event_types) if event_types is not None else None
        self.on_dead_letter = on_dead_letter
        self.client_id = client_id or group_id
        self.consumer: AIOKafkaConsumer | None = None
        self.dead_letters = 0
        self._last_hint = 0.0

    async def _seek_to_stored(self, assigned: Collection[TopicPartition]) -> None:
        assert self.consumer is not None
        stored: dict[tuple[str, int], int] = {}
        async with self.db.connection() as conn:
            for topic in {tp.topic for tp in assigned}:
                for partition, off in (await offsets.load(conn, self.group_id, topic)).items():
                    stored[(topic, partition)] = off
        for tp in assigned:
            off = stored.get((tp.topic, tp.partition))
            if off is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, off)
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer = make_consumer(self.settings, self.group_id, self.client_id)
        self.consumer.subscribe(list(self.topics), listener=_SeekToStored(self))
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.max_poll_records)
                for tp, messages in batches.items():
                    if stop.is_set():
                        break
                    await self._process(tp, messages, stop)
                await self._hint_commit()
        finally:
            await self.consumer.stop()

    async def _hint_commit(self) -> None:
        # Kafka-side offsets are for lag tooling only; the database holds the truth.
        now = time.monotonic()
        if now - self._last_hint < 5:
            return
        self._last_hint = now
        try:
            await self.consumer.commit()
        except Exception as exc:  # a hint may fail (rebalance in progress); nothing depends on it
            log.debug("offset hint commit failed: %s", exc)

    async def _process(self, tp: TopicPartition, messages: list[Any], stop: asyncio.Event) -> None:
        """The whole batch in one transaction; after a handler error, message by message."""
        delay = self.settings.handler_retry_backoff_s
        while True:
            try:
                await self._apply(tp, messages)
                return
            except TRANSIENT as exc:
                if stop.is_set():
                    return
                log.warning("transient error on %s, retrying in %.1fs: %r", tp, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                log.exception("batch on %s failed; retrying message by message", tp)
                for message in messages:
                    await self._process_one(tp, message, stop)
                return

    async def _process_one(self, tp: TopicPartition, message: Any, stop: asyncio.Event) -> None:
        attempts = 0
        delay = self.settings.handler_retry_backoff_s
        while True:
            try:
                await self._apply(tp, [message])
                return
            except TRANSIENT as exc:
                if stop.is_set():
                    return
                log.warning("transient error on %s@%d: %r", tp, message.offset, exc)
            except Exception as exc:
                attempts += 1
                if attempts >= self.settings.handler_max_attempts:
                    log.exception("giving up on %s@%d after %d attempts", tp, message.offset, attempts)
                    await self._dead_letter(tp, message, "handler_failed", f"{type(exc).__name__}: {exc}")
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _dead_letter(self, tp: TopicPartition, message: Any, code: str, reason: str) -> None:
        delay = self.settings.handler_retry_backoff_s
        while True:
            try:
                async with self.db.transaction() as conn:
                    stored = await offsets.claim(conn, self.group_id, tp.topic, tp.partition)
                    if stored is not None and message.offset < stored:
                        return
                    unit = Unit(conn, self.producer, self.group_id)
                    await self._send_dead_letter(unit, message, code, reason)
                    await offsets.store(conn, self.group_id, tp.topic, tp.partition, message.offset + 1)
                    await unit.flush()
                return
            except TRANSIENT as exc:
                log.warning("transient error dead-lettering %s@%d: %r", tp, message.offset, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _send_dead_letter(self, unit: Unit, message: Any, code: str, reason: str) -> None:
        await unit.publish_raw(*dead_letter(message, code=code, reason=reason, consumer_group=self.group_id))
        self.dead_letters += 1
        if self.on_dead_letter is not None:
            try:
                envelope = decode(message.value, message.headers)
            except UndecodableEvent:
                return
            await self.on_dead_letter(unit, Inbound(message.topic, message.partition, message.offset, envelope),
                                      f"{code}: {reason}")

    async def _apply(self, tp: TopicPartition, messages: list[Any]) -> None:
        async with self.db.transaction() as conn:
            stored = await offsets.claim(conn, self.group_id, tp.topic, tp.partition)
            fresh = [m for m in messages if stored is None or m.offset >= stored]
            if not fresh:
                return
            unit = Unit(conn, self.producer, self.group_id)
            pending: list[Inbound] = []
            for message in fresh:
                event_type = header_value(message.headers, HEADER_EVENT_TYPE)
                if self.event_types is not None and event_type in REGISTRY and event_type not in self.event_types:
                    continue  # someone else's event on a shared topic
                try:
                    envelope = decode(message.value, message.headers)
                except UndecodableEvent as exc:
                    # Keep order: apply what came before the poison, then dead-letter it.
                    if pending:
                        await self.handler(unit, pending)
                        pending = []
                    await self._send_dead_letter(unit, message, exc.code, str(exc))
                    continue
                if self.event_types is not None and envelope.event_type not in self.event_types:
                    continue
                pending.append(Inbound(message.topic, message.partition, message.offset, envelope))
            if pending:
                await self.handler(unit, pending)
            await offsets.store(conn, self.group_id, tp.topic, tp.partition, fresh[-1].offset + 1)
            await unit.flush()
