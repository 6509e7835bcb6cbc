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

A partition batch holding only other consumers' events (known types this consumer does not
handle, told by the type header) opens no transaction: it has no effects, so its offsets are
stored with the partition's next transaction, or by one transaction for every such partition
at most once a second (``OTHERS_STORED_EVERY_S``). Until then a restart reads those events
again and skips them again.

On stop (SIGTERM) the loop fetches no more; the batch in hand gets ``shutdown_grace_s`` to
commit, after which it is cancelled: its transaction rolls back and the batch is redone by
whoever next owns the partition, exactly as after a crash.

Observability (docs/observability.md): what a batch consumed, dead-lettered and counted as
rows reaches the metrics only after its transaction commits, so the counters match the
stored offsets; the log context names the batch's import; what a unit publishes carries a
``traceparent`` continuing the trace of the event it handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

from contracts import REGISTRY, Envelope, UndecodableEvent, decode
from contracts.envelope import HEADER_EVENT_TYPE, header_value

from . import logs, metrics, offsets, sequencing, tracing
from .broker import FetchPacing, make_consumer
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
    # Trace context of the consumed events per import: the parent of what this unit publishes for it.
    traces: dict[Any, tracing.TraceContext] = field(default_factory=dict)
    # Published event types whose payload counts the stage's rows: {event_type: (payload field, stage)}.
    rows_from: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # What this unit adds to the metrics once it commits (never before: a rollback counts nothing).
    rows: dict[str, int] = field(default_factory=dict)
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)
    _spans: dict[Any, tracing.TraceContext] = field(default_factory=dict)

    def span_for(self, import_id: Any) -> tracing.TraceContext:
        """This stage's span for an import: one per unit, child of the consumed event's span."""
        span = self._spans.get(import_id)
        if span is None:
            parent = self.traces.get(import_id)
            span = parent.child() if parent is not None else tracing.for_import(import_id)
            self._spans[import_id] = span
        return span

    def bind(self, envelope: Envelope[Any]) -> None:
        """Attribute the log lines that follow to ``envelope``'s import (until the batch ends)."""
        logs.set_context(logs.context_of(envelope, self.span_for(envelope.import_id).trace_id))

    async def publish(self, topic: str, envelope: Envelope[Any], key: bytes | None = None) -> None:
        headers = tracing.with_header(envelope.headers(), self.span_for(envelope.import_id))
        self._sends.append(await self.producer.send(
            topic, key=key if key is not None else envelope.key, value=envelope.encode(), headers=headers))
        counted = self.rows_from.get(envelope.event_type)
        if counted is not None:
            field_name, stage = counted
            self.rows[stage] = self.rows.get(stage, 0) + int(getattr(envelope.payload, field_name))

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
        for tp in revoked:
            self.owner._committed.pop(tp, None)
            self.owner._others.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self.owner._seek_to_stored(assigned)


def by_size(messages: list[Any], max_bytes: int) -> Iterator[list[Any]]:
    """Consecutive runs of ``messages`` of at most ``max_bytes`` of values each (at least one message)."""
    chunk: list[Any] = []
    size = 0
    for m in messages:
        n = len(m.value or b"")
        if chunk and size + n > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(m)
        size += n
    if chunk:
        yield chunk


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
        rows_from: Mapping[str, tuple[str, str]] | None = None,
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
        # Published event types that count rows (see Unit.rows_from).
        self.rows_from = dict(rows_from or {})
        # The stored offset of each assigned partition as last committed or loaded: with the fetch
        # high watermark, the consumer lag, computed at scrape time without asking anyone.
        self._committed: dict[TopicPartition, int] = {}
        # Partitions whose latest messages are all other consumers' events, not yet stored as
        # consumed: (the first such offset, the offset after the last). See the module docstring.
        self._others: dict[TopicPartition, tuple[int, int]] = {}
        self._others_since = 0.0

    def _lag(self) -> list[tuple[metrics.LabelValues, float]]:
        consumer = self.consumer
        if consumer is None or not self.running:
            return []
        rows: list[tuple[metrics.LabelValues, float]] = []
        for tp in consumer.assignment():
            high, done = consumer.highwater(tp), self._committed.get(tp)
            if high is not None and done is not None:
                rows.append(((self.group_id, tp.topic, str(tp.partition)), max(0, high - done)))
        return rows

    def _unit(self, conn: asyncpg.Connection) -> Unit:
        return Unit(conn, self.producer, self.group_id, rows_from=self.rows_from)

    def _committed_unit(self, tp: TopicPartition, next_offset: int, unit: Unit,
                        consumed: dict[tuple[str, str], int], started: float) -> None:
        """Count what a committed transaction did; called after the commit only."""
        self._committed[tp] = next_offset
        run = self._others.get(tp)
        if run is not None and run[1] <= next_offset:
            del self._others[tp]  # stored past the deferred run
        for (topic, event_type), n in consumed.items():
            metrics.EVENTS_CONSUMED.inc(n, self.group_id, topic, event_type)
        for stage, n in unit.rows.items():
            metrics.ROWS_PROCESSED.inc(n, stage)
        for topic, code in unit.dead_lettered:
            metrics.DEAD_LETTERS.inc(1, self.group_id, topic, code)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started, self.group_id)

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
                # committed hint; that is safe (advance() skips what is applied) but replays work.
                if attempt == 10:
                    raise
                log.warning("loading stored offsets failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _seek_to_stored(self, assigned: Collection[TopicPartition]) -> None:
        assert self.consumer is not None
        stored = await self._load_stored(assigned)
        unstored = []
        for tp in assigned:
            off = stored.get((tp.topic, tp.partition))
            if off is None:
                await self.consumer.seek_to_beginning(tp)
                unstored.append(tp)
            else:
                self.consumer.seek(tp, off)
                self._committed[tp] = off
        if unstored:
            # Never consumed by this group: it starts at the log start, which is what the lag counts from.
            try:
                for tp, off in (await self.consumer.beginning_offsets(unstored)).items():
                    self._committed.setdefault(tp, off)
            except Exception as exc:  # only the lag gauge needs it; it shows up with the first batch
                log.debug("beginning offsets unknown: %r", exc)
        log.info("assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer = make_consumer(self.settings, self.group_id, self.client_id)
        self.consumer.subscribe(list(self.topics), listener=_SeekToStored(self))
        await self.consumer.start()
        pacing = FetchPacing(self.consumer, self.settings)
        self.running = True
        metrics.CONSUMER_LAG.add_source(self._lag)
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.max_poll_records)
                pacing.observe(bool(batches))
                for tp, messages in batches.items():
                    if self._only_others(messages):
                        self._defer(tp, messages[0].offset, messages[-1].offset + 1)
                        continue
                    for chunk in by_size(messages, self.settings.max_transaction_bytes):
                        if stop.is_set():
                            break  # not started: the next owner of the partition fetches it again
                        await self._process_or_abandon(tp, chunk, stop)
                if not stop.is_set():
                    await self._store_others()
                await self._hint_commit()
        finally:
            self.running = False
            await self._close()

    # How long another consumer's events may wait to be stored as consumed when no transaction of
    # their partition comes along. A transaction of their own for each such batch (a quarter of the
    # services' transactions with ten small imports in flight) cost about 1 ms of CPU per import.
    OTHERS_STORED_EVERY_S = 1.0

    def _only_others(self, messages: list[Any]) -> bool:
        """Whether every message is an event of a known type this consumer does not handle: what
        ``_apply`` would skip, with nothing to apply, publish or dead-letter."""
        if self.event_types is None:
            return False
        for m in messages:
            event_type = header_value(m.headers, HEADER_EVENT_TYPE)
            if event_type not in REGISTRY or event_type in self.event_types:
                return False
        return True

    def _defer(self, tp: TopicPartition, first: int, end: int) -> None:
        """Note offsets ``first`` to ``end`` (exclusive) of ``tp`` as other consumers' events."""
        if not self._others:
            self._others_since = time.monotonic()
        known = self._others.get(tp)
        self._others[tp] = (first, end) if known is None else (min(first, known[0]), max(end, known[1]))

    async def _store_others(self, *, force: bool = False) -> None:
        """Store the offsets after the deferred runs of other consumers' events, at most once per
        ``OTHERS_STORED_EVERY_S`` (``force``: now), in one transaction.

        A run is stored only where the partition's stored offset is within it: everything before
        it is applied. Behind it (a batch before the run was rolled back and is to be redone)
        or past it (a new owner went further), the stored offset stays.
        """
        if not self._others or (not force and time.monotonic() - self._others_since < self.OTHERS_STORED_EVERY_S):
            return
        runs, self._others = self._others, {}
        stored_at: dict[TopicPartition, int] = {}
        try:
            async with self.db.transaction() as conn:
                for tp in sorted(runs):  # one lock order for every instance of the group
                    first, end = runs[tp]
                    stored = await offsets.claim(conn, self.group_id, tp.topic, tp.partition)
                    if stored is not None and first <= stored < end:
                        await offsets.store(conn, self.group_id, tp.topic, tp.partition, end)
                        stored_at[tp] = end
        except Exception as exc:  # nothing waits on these offsets: never a reason to stop consuming
            log.warning("storing the offsets past other consumers' events failed, to be retried: %r", exc)
            for tp, (first, end) in runs.items():
                self._defer(tp, first, end)
            return
        for tp, end in stored_at.items():
            if self._committed.get(tp, -1) < end:
                self._committed[tp] = end

    async def _process_or_abandon(self, tp: TopicPartition, messages: list[Any], stop: asyncio.Event) -> None:
        """Process a batch; if stopped meanwhile, let it commit within the grace period or roll it back."""
        work = asyncio.ensure_future(self._process(tp, messages, stop))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait((work,), timeout=self.settings.shutdown_grace_s)
            if not work.done():
                # A phase (a whole import validated or applied in one transaction) can take minutes.
                # Cancelling it rolls the transaction back and stores no offset: the batch is redone
                # after the restart, its re-published events recognised by their deterministic ids.
                log.warning("stopping: abandoning the batch in hand on %s@%d-%d (rolled back, redone after "
                            "restart)", tp, messages[0].offset, messages[-1].offset)
                work.cancel()
                await asyncio.wait((work,), timeout=self.ABANDON_TIMEOUT_S)
                return
            work.result()  # a failure of the loop itself stays fatal
        finally:
            stopped.cancel()

    # Rolling back a cancelled batch sends the server a cancel request and ROLLBACK; bounded so a
    # dead database cannot hold the exit (closing the pool then terminates the connection).
    ABANDON_TIMEOUT_S = 1.5
    # Leaving the group is a courtesy that speeds up the next rebalance; never worth a hang.
    CLOSE_TIMEOUT_S = 1.5

    async def _close(self) -> None:
        assert self.consumer is not None
        metrics.CONSUMER_LAG.remove_source(self._lag)
        try:
            await asyncio.wait_for(self._store_others(force=True), timeout=0.5)
        except (asyncio.TimeoutError, Exception) as exc:
            log.debug("storing the offsets past other consumers' events failed at close: %r", exc)
        try:
            await asyncio.wait_for(self._hint_commit(force=True), timeout=0.5)
        except (asyncio.TimeoutError, Exception) as exc:
            log.debug("final offset hint failed: %r", exc)
        try:
            await asyncio.wait_for(self.consumer.stop(), timeout=self.CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("the Kafka consumer did not close within %.1fs; leaving it", self.CLOSE_TIMEOUT_S)

    async def _hint_commit(self, *, force: bool = False) -> None:
        # Kafka-side offsets are for lag tooling only; the database holds the truth.
        now = time.monotonic()
        if now - self._last_hint < 5 and not force:
            return
        self._last_hint = now
        assert self.consumer is not None
        # The stored offsets, never the consumer's positions: a position runs ahead of what is
        # committed while a batch is in hand, and a batch abandoned or skipped at shutdown is not
        # committed at all. aiokafka positions a newly assigned partition at the Kafka-committed
        # offset until the rebalance listener's seek to the stored one lands, and a fetch in that
        # window starting past the stored offset would skip messages. A hint at or behind the
        # stored offset only ever replays what advance() then skips.
        assigned = self.consumer.assignment()
        hint = {tp: off for tp, off in self._committed.items() if tp in assigned}
        if not hint:
            return
        try:
            await self.consumer.commit(hint)
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
                started = time.perf_counter()
                async with self.db.transaction() as conn:
                    if message.offset < await offsets.advance(conn, self.group_id, tp.topic, tp.partition,
                                                              message.offset + 1):
                        return
                    unit = self._unit(conn)
                    await self._send_dead_letter(unit, message, code, reason)
                    await unit.flush()
                event_type = header_value(message.headers, HEADER_EVENT_TYPE) or "unknown"
                self._committed_unit(tp, message.offset + 1, unit, {(message.topic, event_type): 1}, started)
                return
            except TRANSIENT as exc:
                log.warning("transient error dead-lettering %s@%d: %r", tp, message.offset, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _send_dead_letter(self, unit: Unit, message: Any, code: str, reason: str) -> None:
        await unit.publish_raw(*dead_letter(message, code=code, reason=reason, consumer_group=self.group_id))
        self.dead_letters += 1
        unit.dead_lettered.append((message.topic, code))
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
        started = time.perf_counter()
        consumed: dict[tuple[str, str], int] = {}
        end = messages[-1].offset + 1
        async with self.db.transaction() as conn:
            # Progress is stored first: it commits with the effects below or rolls back with them.
            stored = await offsets.advance(conn, self.group_id, tp.topic, tp.partition, end)
            fresh = [m for m in messages if m.offset >= stored]
            if not fresh:
                self._committed[tp] = stored
                return
            unit = self._unit(conn)
            pending: list[Inbound] = []
            for message in fresh:
                event_type = header_value(message.headers, HEADER_EVENT_TYPE)
                if self.event_types is not None and event_type in REGISTRY and event_type not in self.event_types:
                    continue  # someone else's event on a shared topic
                key = (message.topic, event_type or "unknown")
                consumed[key] = consumed.get(key, 0) + 1
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
                    consumed[key] -= 1
                    continue
                # The latest context of an import in the batch is the parent of what the unit publishes for it.
                trace = tracing.from_headers(message.headers)
                if trace is not None:
                    unit.traces[envelope.import_id] = trace
                pending.append(Inbound(message.topic, message.partition, message.offset, envelope, message))
            if pending:
                await self._handle(unit, pending)
            await unit.flush()
        self._committed_unit(tp, end, unit, {k: n for k, n in consumed.items() if n}, started)

    async def _handle(self, unit: Unit, inbounds: list[Inbound]) -> None:
        # A batch of one import's events logs under its ids; a mixed batch names the import per
        # event where the handler goes through staging or a flow operation (Unit.bind).
        imports = {i.envelope.import_id for i in inbounds}
        token = logs.set_context(logs.context_of(inbounds[0].envelope, unit.span_for(inbounds[0].envelope.import_id)
                                                  .trace_id) if len(imports) == 1 else logs.EMPTY)
        try:
            await self._handle_unblocked(unit, inbounds)
        finally:
            logs.reset(token)

    async def _handle_unblocked(self, unit: Unit, inbounds: list[Inbound]) -> None:
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
