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

from . import offsets, sequencing
from .broker import make_consumer
from .db import CONNECTION_LOST, Database
from .dlq import dead_letter
from .settings import ServiceSettings

log = logging.getLogger(__name__)

# Retried with backoff for as long as they last; never counted as a handler failure, because
# dead-lettering a good message over a database restart would fail its import for nothing.
# asyncpg's InterfaceError is not here as such: an InterfaceError on a live connection (e.g. an
# argument that cannot be encoded) is the message's fault and must reach the DLQ, not loop;
# on a dead connection ``Database`` turns it into DatabaseUnavailable.
TRANSIENT = (
    OSError,  # DatabaseUnavailable is a ConnectionError
    asyncio.TimeoutError,
    *CONNECTION_LOST,
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
    # The message as consumed (bytes and headers), kept for parking it behind a dead letter.
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass
class Unit:
    """One transaction of effects, plus the events to publish before it commits."""

    conn: asyncpg.Connection
    producer: AIOKafkaProducer
    group_id: str
    _sends: list[Any] = field(default_factory=list)
    # Imports whose dead-letter sequence was released in this transaction (see sequencing).
    released: set[Any] = field(default_factory=set)

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
        sequenced: bool = False,
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
        # Park an import's later events behind its dead-lettered one (needs the sequencing table).
        self.sequenced = sequenced
        self.parked = 0
        self.consumer: AIOKafkaConsumer | None = None
        self.dead_letters = 0
        self._last_hint = 0.0
        # True from the first poll until run() returns, for whatever reason; /ready reports it.
        self.running = False

    async def _load_stored(self, assigned: Collection[TopicPartition]) -> dict[tuple[str, int], int]:
        delay = self.settings.handler_retry_backoff_s
        for attempt in range(1, 11):
            try:
                stored: dict[tuple[str, int], int] = {}
                async with self.db.connection() as conn:
                    for topic in {tp.topic for tp in assigned}:
                        for partition, off in (await offsets.load(conn, self.group_id, topic)).items():
                            stored[(topic, partition)] = off
                return stored
            except TRANSIENT as exc:
                # aiokafka logs and swallows a listener's error, leaving the positions at Kafka's
                # committed hint; that is safe (claim() skips what is applied) but replays work.
                if attempt == 10:
                    raise
                log.warning("loading stored offsets failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _seek_to_stored(self, assigned: Collection[TopicPartition]) -> None:
        assert self.consumer is not None
        stored = await self._load_stored(assigned)
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
        self.running = True
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.max_poll_records)
                for tp, messages in batches.items():
                    if stop.is_set():
                        break
                    await self._process(tp, messages, stop)
                await self._hint_commit()
        finally:
            self.running = False
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
        if self.on_dead_letter is None and not self.sequenced:
            return
        try:
            envelope = decode(message.value, message.headers)
        except UndecodableEvent:
            return
        if self.on_dead_letter is not None:
            await self.on_dead_letter(unit, Inbound(message.topic, message.partition, message.offset, envelope),
                                      f"{code}: {reason}")
        if self.sequenced and envelope.import_id is not None and not await sequencing.blocked(
                unit.conn, self.group_id, [envelope.import_id]):
            # A sequence has one head: a release request that fails again leaves the old head in place.
            await sequencing.record(unit.conn, self.group_id, message, envelope, head=True,
                                    reason=f"{code}: {reason}")

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
                        await self._handle(unit, pending)
                        pending = []
                    await self._send_dead_letter(unit, message, exc.code, str(exc))
                    continue
                if self.event_types is not None and envelope.event_type not in self.event_types:
                    continue
                pending.append(Inbound(message.topic, message.partition, message.offset, envelope, message))
            if pending:
                await self._handle(unit, pending)
            await offsets.store(conn, self.group_id, tp.topic, tp.partition, fresh[-1].offset + 1)
            await unit.flush()

    async def _handle(self, unit: Unit, inbounds: list[Inbound]) -> None:
        """The handler over ``inbounds``, except events of imports blocked behind a dead letter."""
        if not self.sequenced:
            await self.handler(unit, inbounds)
            return
        blocked = await sequencing.blocked(unit.conn, self.group_id,
                                           {i.envelope.import_id for i in inbounds if i.envelope.import_id})
        ready: list[Inbound] = []
        for inbound in inbounds:
            env = inbound.envelope
            if env.import_id not in blocked:
                ready.append(inbound)
            elif env.event_type in sequencing.RELEASED_BY:
                # Order within the import: the head, what was parked behind it, then this request.
                if ready:
                    await self.handler(unit, ready)
                    ready = []
                queued = await sequencing.release(unit.conn, self.group_id, env.import_id)
                blocked.discard(env.import_id)
                unit.released.add(env.import_id)
                log.info("releasing %d event(s) of import %s on %s", len(queued), env.import_id, env.event_type)
                await self.handler(unit, [Inbound(q.topic, q.partition, q.offset, decode(q.value, q.headers), q)
                                          for q in queued])
                ready.append(inbound)
            else:
                behind = await sequencing.head_of(unit.conn, self.group_id, env.import_id)
                await sequencing.record(unit.conn, self.group_id, inbound.raw, env, head=False,
                                        reason=f"parked behind {behind}")
                self.parked += 1
                log.warning("parked %s %s@%d of import %s behind the dead letter %s", env.event_type,
                            inbound.topic, inbound.offset, env.import_id, behind)
        if ready:
            await self.handler(unit, ready)
