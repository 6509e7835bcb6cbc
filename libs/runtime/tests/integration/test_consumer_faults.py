"""The consumer loop against the real broker and PostgreSQL: a backend terminated mid-transaction,
a poison message, an import's later events parked behind its dead letter, and other consumers'
events stored as consumed without a transaction each."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import Envelope, Phase, PhaseProgress, PhaseRetryRequested, Tenant, topics
from tributary_cli.testing import CountingConnection
from tributary_runtime import offsets
from tributary_runtime.broker import ensure_topics, make_producer
from tributary_runtime.consumer import EventConsumer, Inbound, Unit
from tributary_runtime.db import Database
from tributary_runtime.offsets import PLUMBING_DDL
from tributary_runtime.sequencing import SEQUENCED_DEAD_LETTERS_DDL
from tributary_runtime.settings import ServiceSettings

GROUP = "faults"
EFFECTS_DDL = """
CREATE TABLE effects (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   uuid   NOT NULL,
    import_id  uuid   NOT NULL,
    event_type text   NOT NULL
);
"""
TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())


@dataclass
class Stack:
    settings: ServiceSettings
    db: Database
    admin: asyncpg.Connection
    producer: AIOKafkaProducer
    topic: str


@pytest.fixture
async def stack(stack_env: dict[str, str]) -> AsyncIterator[Stack]:
    schema = f"consumer_faults_{uuid.uuid4().hex[:10]}"
    settings = ServiceSettings(database_url=stack_env["DATABASE_URL"],
                               kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
                               topic_partitions=1, handler_retry_backoff_s=0.05)
    topic = f"test.{schema}"
    await ensure_topics(settings, (topic,))
    admin = await asyncpg.connect(settings.asyncpg_dsn)
    await admin.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
    await admin.execute(PLUMBING_DDL + SEQUENCED_DEAD_LETTERS_DDL + EFFECTS_DDL)
    db = await Database.connect(settings.asyncpg_dsn, schema, max_size=3)
    producer = make_producer(settings, "test")
    await producer.start()
    try:
        yield Stack(settings, db, admin, producer, topic)
    finally:
        await producer.stop()
        await db.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@dataclass
class Recorder:
    """A handler whose effect is one COPY of the events' rows; poisoned events fail as bad input."""

    poisoned: set[uuid.UUID] = field(default_factory=set)
    calls: list[list[int]] = field(default_factory=list)
    before_effect: Callable[[Unit, list[Inbound]], object] | None = None

    async def __call__(self, unit: Unit, events: list[Inbound]) -> None:
        self.calls.append([e.offset for e in events])
        if self.before_effect is not None:
            await self.before_effect(unit, events)  # type: ignore[misc]
        for e in events:
            if e.envelope.event_id in self.poisoned:
                # An argument the driver cannot encode: asyncpg's DataError, an InterfaceError
                # raised on a perfectly healthy connection. The message's fault, not the database's.
                await unit.conn.execute("SELECT $1::integer", "not a number")
        await unit.conn.copy_records_to_table(
            "effects", columns=("event_id", "import_id", "event_type"),
            records=[(e.envelope.event_id, e.envelope.import_id, e.envelope.event_type) for e in events])


def progress(import_id: uuid.UUID, n: int) -> Envelope:
    return Envelope.wrap(PhaseProgress(phase=Phase.VALIDATION, rows_done=n, rows_total=100), tenant=TENANT,
                         import_id=import_id, producer="test", stage_key=str(n))


def retry(import_id: uuid.UUID) -> Envelope:
    return Envelope.wrap(PhaseRetryRequested(phase=Phase.VALIDATION), tenant=TENANT, import_id=import_id,
                         producer="test", stage_key="retry")


async def publish(stack: Stack, envelopes: Iterable[Envelope]) -> None:
    for env in envelopes:
        await stack.producer.send_and_wait(stack.topic, key=env.key, value=env.encode(), headers=env.headers())


async def stored_offset(stack: Stack) -> int | None:
    return await stack.admin.fetchval(
        "SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 0",
        GROUP, stack.topic)


async def until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout}s")
        await asyncio.sleep(0.05)


async def consumed_up_to(stack: Stack, offset: int) -> None:
    async def reached() -> bool:
        return (await stored_offset(stack) or 0) >= offset

    await until(reached, f"the stored offset to reach {offset}")


def consumer(stack: Stack, handler: Recorder, *, sequenced: bool = False,
             event_types: Iterable[str] | None = None, settings: ServiceSettings | None = None) -> EventConsumer:
    return EventConsumer(settings=settings or stack.settings, db=stack.db, producer=stack.producer, group_id=GROUP,
                         topics=(stack.topic,), handler=handler, sequenced=sequenced, event_types=event_types)


def counting_transactions(db: Database) -> list[float]:
    """Make ``db`` note the time each transaction it opens starts; returns the list it fills."""
    opened: list[float] = []
    transaction = db.transaction

    def counted() -> object:
        opened.append(time.monotonic())
        return transaction()

    db.transaction = counted  # type: ignore[method-assign]
    return opened


async def effects(stack: Stack) -> list[tuple[uuid.UUID, str]]:
    rows = await stack.admin.fetch("SELECT event_id, event_type FROM effects ORDER BY seq")
    return [(r["event_id"], r["event_type"]) for r in rows]


async def dead_letters(stack: Stack, count: int) -> list[dict[str, str]]:
    reader = AIOKafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap_servers, group_id=None,
                              enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topics.dlq(stack.topic), 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while len(found) < count and time.monotonic() < deadline:
            for messages in (await reader.getmany(timeout_ms=200)).values():
                found += [{k: v.decode() for k, v in m.headers} for m in messages]
        return found
    finally:
        await reader.stop()


async def test_a_backend_terminated_mid_transaction_is_retried_and_applied_once(stack: Stack) -> None:
    import_id = uuid.uuid4()
    events = [progress(import_id, n) for n in range(5)]
    await publish(stack, events)
    in_transaction: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    terminated = asyncio.Event()

    async def hold_first_transaction(unit: Unit, batch: list[Inbound]) -> None:
        if not in_transaction.done():
            in_transaction.set_result(await unit.conn.fetchval("SELECT pg_backend_pid()"))
            await terminated.wait()  # the COPY below then runs on a connection the server has dropped

    handler = Recorder(before_effect=hold_first_transaction)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer(stack, handler).run(stop))
    try:
        pid = await asyncio.wait_for(in_transaction, 60)
        assert await stack.admin.fetchval("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            return not await stack.admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

        await until(gone, "the terminated backend to exit")
        terminated.set()
        await consumed_up_to(stack, 5)
    finally:
        stop.set()
        await task

    assert await effects(stack) == [(e.event_id, "PhaseProgress") for e in events]
    first_offsets = [call[0] for call in handler.calls]
    assert first_offsets.count(0) == 2, handler.calls  # the terminated attempt, then the one that committed
    assert await dead_letters(stack, 0) == []


async def test_an_imports_events_wait_behind_its_dead_letter_until_a_retry(stack: Stack) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    poison, a_later, b_first, a_last = progress(a, 1), progress(a, 2), progress(b, 1), progress(a, 3)
    handler = Recorder(poisoned={poison.event_id})
    await publish(stack, [poison, a_later, b_first, a_last])  # offsets 0..3, one partition
    stop = asyncio.Event()
    events_consumer = consumer(stack, handler, sequenced=True)
    task = asyncio.create_task(events_consumer.run(stop))
    try:
        await consumed_up_to(stack, 4)
        # A's later events are parked behind the poison; B, on the same partition, is applied.
        assert await effects(stack) == [(b_first.event_id, "PhaseProgress")]
        queued = await stack.admin.fetch(
            "SELECT event_id, head, \"offset\", reason FROM dead_letter_sequences WHERE group_id = $1 AND import_id = $2"
            " ORDER BY position", GROUP, a)
        assert [(r["event_id"], r["head"], r["offset"]) for r in queued] == [
            (poison.event_id, True, 0), (a_later.event_id, False, 1), (a_last.event_id, False, 3)]
        assert queued[0]["reason"].startswith("handler_failed: DataError")
        assert {r["reason"] for r in queued[1:]} == {f"parked behind {stack.topic}:0@0"}
        letters = await dead_letters(stack, 1)
        assert [(h["dlq.error_code"], h["dlq.source_offset"]) for h in letters] == [("handler_failed", "0")]

        # The cause is fixed; the retry applies the poison, then what waited behind it, in order.
        handler.poisoned.clear()
        request, b_later = retry(a), progress(b, 2)
        await publish(stack, [request, b_later])
        await consumed_up_to(stack, 6)
    finally:
        stop.set()
        await task

    assert await effects(stack) == [
        (b_first.event_id, "PhaseProgress"), (poison.event_id, "PhaseProgress"), (a_later.event_id, "PhaseProgress"),
        (a_last.event_id, "PhaseProgress"), (request.event_id, "PhaseRetryRequested"),
        (b_later.event_id, "PhaseProgress")]
    assert await stack.admin.fetchval("SELECT count(*) FROM dead_letter_sequences") == 0
    assert (events_consumer.dead_letters, events_consumer.parked) == (1, 2)


async def test_two_transactions_claiming_a_new_partition_take_turns(stack: Stack) -> None:
    """The first claim of a partition creates its progress row; a second claim waits for the first
    transaction and then sees the offset it stored (one of two racing consumers wins each batch)."""
    first, second = await stack.db.pool.acquire(), await stack.db.pool.acquire()
    try:
        tx = first.transaction()
        await tx.start()
        assert await offsets.claim(first, GROUP, stack.topic, 0) == 0
        waiting = asyncio.ensure_future(_claim_in_transaction(second, stack.topic))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the first's row lock
        await offsets.store(first, GROUP, stack.topic, 0, 42)
        await tx.commit()
        assert await asyncio.wait_for(waiting, 10) == 42
        # Once the row exists a claim is one statement, and still locks it.
        tx = first.transaction()
        await tx.start()
        assert await offsets.claim(first, GROUP, stack.topic, 0) == 42
        waiting = asyncio.ensure_future(_claim_in_transaction(second, stack.topic))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await tx.rollback()
        assert await asyncio.wait_for(waiting, 10) == 42
    finally:
        await stack.db.pool.release(first)
        await stack.db.pool.release(second)


async def test_advancing_progress_locks_it_and_never_moves_it_back(stack: Stack) -> None:
    """``advance`` claims and stores in one statement: it creates a new partition's row, holds its
    lock to the end of the transaction (a racing transaction waits, then sees what the first
    stored), moves the offset only forward, and a rollback undoes it."""
    first, second = await stack.db.pool.acquire(), await stack.db.pool.acquire()
    try:
        async with first.transaction():
            assert await offsets.advance(first, GROUP, stack.topic, 0, 5) == 0
            waiting = asyncio.ensure_future(_advance_in_transaction(second, stack.topic, 3))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # blocked on the first's row lock
        assert await asyncio.wait_for(waiting, 10) == 5  # its batch (up to 3) was applied already
        assert await stored_offset(stack) == 5  # not moved back to 3

        tx = first.transaction()
        await tx.start()
        assert await offsets.advance(first, GROUP, stack.topic, 0, 9) == 5
        waiting = asyncio.ensure_future(_advance_in_transaction(second, stack.topic, 9))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await tx.rollback()  # the effects failed: the progress goes with them
        assert await asyncio.wait_for(waiting, 10) == 5
        assert await stored_offset(stack) == 9
    finally:
        await stack.db.pool.release(first)
        await stack.db.pool.release(second)


async def _advance_in_transaction(conn: asyncpg.Connection, topic: str, end: int) -> int:
    async with conn.transaction():
        return await offsets.advance(conn, GROUP, topic, 0, end)


async def test_a_batch_stores_its_progress_with_the_statement_that_claims_it(stack: Stack) -> None:
    """A batch's transaction sends one statement for its progress besides the handler's effect
    (claiming, then storing, was two), and a batch seen again changes nothing."""
    import_id = uuid.uuid4()
    handler = Recorder()
    counted: list[CountingConnection] = []
    transaction = stack.db.transaction

    @asynccontextmanager
    async def counting() -> AsyncIterator[CountingConnection]:
        async with transaction() as conn:
            counted.append(CountingConnection(conn))
            yield counted[-1]

    stack.db.transaction = counting  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer(stack, handler).run(stop))
    try:
        await publish(stack, [progress(import_id, 0)])
        await consumed_up_to(stack, 1)  # the partition's first transaction also creates its row
        await publish(stack, [progress(import_id, 1)])
        await consumed_up_to(stack, 2)
    finally:
        stop.set()
        await task
    assert counted[-1].statements == 2  # the progress, and the handler's COPY
    assert handler.calls == [[0], [1]]
    assert [e[1] for e in await effects(stack)] == ["PhaseProgress", "PhaseProgress"]

    stack.db.transaction = transaction  # type: ignore[method-assign]
    again = Recorder()
    await consumer(stack, again)._apply(TopicPartition(stack.topic, 0), [_Redelivered(stack.topic, 1)])
    assert again.calls == [] and await stored_offset(stack) == 2


@dataclass
class _Redelivered:
    """A message the consumer stored as consumed already (offset below the stored one)."""

    topic: str
    offset: int
    partition: int = 0
    headers: tuple = ()
    value: bytes = b""


async def _claim_in_transaction(conn: asyncpg.Connection, topic: str) -> int | None:
    async with conn.transaction():
        return await offsets.claim(conn, GROUP, topic, 0)


async def test_other_consumers_events_are_stored_as_consumed_about_once_a_second(stack: Stack) -> None:
    """Twenty polls holding only events of a type this consumer does not handle open about one
    transaction a second between them, not one each; its own events still commit at once, with
    whatever others' events came before them; a stop stores what is left."""
    import_id = uuid.uuid4()
    handler = Recorder()
    opened = counting_transactions(stack.db)
    stop = asyncio.Event()
    # One message per poll: twenty batches.
    retries_only = consumer(stack, handler, event_types={"PhaseRetryRequested"},
                            settings=stack.settings.model_copy(update={"max_poll_records": 1}))
    task = asyncio.create_task(retries_only.run(stop))
    try:
        started = time.monotonic()
        await publish(stack, [progress(import_id, n) for n in range(20)])
        await consumed_up_to(stack, 20)
        elapsed = time.monotonic() - started
        assert handler.calls == []
        # One transaction per batch would be about twenty. At most one per started second, plus
        # the one the first claim of the partition may need.
        assert len(opened) <= int(elapsed / EventConsumer.OTHERS_STORED_EVERY_S) + 2, (len(opened), elapsed)

        request = retry(import_id)
        await publish(stack, [progress(import_id, 20), request])
        await consumed_up_to(stack, 22)
        assert await effects(stack) == [(request.event_id, "PhaseRetryRequested")]

        before = len(opened)
        await publish(stack, [progress(import_id, 21), progress(import_id, 22)])
        await until(lambda: _positioned(retries_only, 24), "the consumer to fetch offsets 22 and 23")
    finally:
        stop.set()
        await task
    # Stopped before a second had passed: the close stored them.
    assert await stored_offset(stack) == 24
    assert len(opened) == before + 1


async def test_other_consumers_events_never_move_a_stored_offset_back(stack: Stack) -> None:
    """A run of others' events is stored only where the stored offset lies within it: a new
    owner of the partition that went further keeps its offset."""
    import_id = uuid.uuid4()
    await publish(stack, [progress(import_id, n) for n in range(3)])
    stop = asyncio.Event()
    retries_only = consumer(stack, Recorder(), event_types={"PhaseRetryRequested"})
    task = asyncio.create_task(retries_only.run(stop))
    try:
        await consumed_up_to(stack, 3)
        await publish(stack, [progress(import_id, 3), progress(import_id, 4)])
        await until(lambda: _positioned(retries_only, 5), "the consumer to fetch offsets 3 and 4")
        # Another instance of the group stored further meanwhile.
        await stack.admin.execute("UPDATE consumer_offsets SET next_offset = 40 WHERE group_id = $1", GROUP)
    finally:
        stop.set()
        await task
    assert await stored_offset(stack) == 40


async def _positioned(events_consumer: EventConsumer, offset: int) -> bool:
    """Whether the consumer has fetched up to ``offset`` (False until it has the partition)."""
    tp = TopicPartition(events_consumer.topics[0], 0)
    if events_consumer.consumer is None or tp not in events_consumer.consumer.assignment():
        return False
    return await events_consumer.consumer.position(tp) >= offset


async def test_a_failed_store_of_other_consumers_offsets_is_tried_again(stack: Stack) -> None:
    import_id = uuid.uuid4()
    await publish(stack, [progress(import_id, n) for n in range(3)])
    failures: list[str] = []
    transaction = stack.db.transaction

    def failing_once() -> object:
        if not failures:
            failures.append("refused")
            raise ConnectionRefusedError("the database is restarting")
        return transaction()

    stop = asyncio.Event()
    retries_only = consumer(stack, Recorder(), event_types={"PhaseRetryRequested"})
    task = asyncio.create_task(retries_only.run(stop))
    try:
        await until(lambda: _positioned(retries_only, 3), "the consumer to fetch offsets 0 to 2")
        stack.db.transaction = failing_once  # type: ignore[method-assign]
        await consumed_up_to(stack, 3)
    finally:
        stop.set()
        await task
    assert failures == ["refused"] and task.exception() is None
