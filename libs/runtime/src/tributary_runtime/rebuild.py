"""Replay = rebuild: a service's tables rebuilt from the event log, verified, swapped in (blue/green).

The procedure (docs/operations.md, "Rebuild flow-state", is the runbook):

1. **Fresh schema.** ``<schema>_rebuild_<n>`` is created with the service's own alembic
   migrations (the same DDL as the live schema). Tables that are configuration rather than
   projection (``carried``, e.g. the enricher's inventory policies) are copied from the live
   schema.
2. **Replay.** A reader assigned to every partition of the service's topics (no Kafka group
   membership, so the live consumer group never rebalances) applies the events with the
   service's own handler, publishing switched off (and a producer that cannot send, as a
   guard), storing its offsets under a new group ``<group>@<rebuild schema>`` in the same
   transaction as the effects, exactly as the live consumer does. Undecodable messages and
   messages whose handler keeps failing are skipped (the live consumer dead-lettered them;
   their effect on the tables is none, and the ImportFailed it published is on the topic).
   A service whose tables depend on the order *across* partitions (the enricher) replays all
   partitions merged by message timestamp, the order in which the live consumer saw them.
   Any other service's bulk (the first pass) is replayed by reader processes side by side,
   one per core (``ParallelReaders``): each partition by one of them, with its offsets stored
   in its own transactions, so the result is a single reader's.
3. **Catch up.** The reader never passes the live consumer: each round's target is, per
   partition, ``min(end offset now, live group's stored offset)``. The first round (the bulk)
   runs to the end offsets captured at start (or the live position, if the live is behind).
   Rounds repeat while imports keep flowing, until a round has little left to do.
4. **Verify, exactly.** In one REPEATABLE READ snapshot of the live schema the live group's
   stored offsets are read; they are committed atomically with the live tables, so the
   snapshot is the live state *at exactly those offsets*. The reader runs to exactly those
   offsets, then every table is checksummed on both sides (explicit columns, key order). No
   flow is "still moving" in this comparison: both sides have consumed the same prefix of
   every partition. Differences are reported per table with the differing keys and flow ids.
5. **Swap (optional), in one transaction:** lock the live ``consumer_offsets`` table ACCESS
   EXCLUSIVE (waits for the live consumer's current batch to commit, then fences it: its next
   batch blocks on its first statement), read the live offsets, run the reader to exactly
   them, verify again (the live is frozen: exact), copy the carried tables, put the rebuild
   group's offsets and applied-event ledger under the live group id (the offsets are then
   equal to the live ones: checked), rename ``<schema>`` →
   ``<schema>_old_<n>`` and the rebuild schema → ``<schema>``, terminate the live service's
   database sessions (``application_name = tributary-<schema>``), commit. The live process
   sees connection errors, which its consumer retries as transient; its pool reconnects, and
   new sessions resolve ``search_path=<schema>`` to the new tables (no stale prepared
   statements survive: they lived in the terminated sessions). It continues from the offsets
   it had reached, now stored in the new schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import REGISTRY, UndecodableEvent, decode
from contracts.envelope import HEADER_EVENT_TYPE, header_value

from . import offsets
from .broker import MAX_MESSAGE_BYTES, kafka_client_options
from .checksums import SESSION_SETTINGS, TableCheck, TableComparison, compare, ident
from .collector import fewer_collections
from .consumer import TRANSIENT, DeadLetterHook, Handler, Inbound, Unit
from .db import Database
from .settings import ServiceSettings
from .watermarks import high_watermarks

log = logging.getLogger("tributary.rebuild")

TP = TopicPartition

# Young collections during a replay, every this many allocations: a fetch's messages, decoded and
# folded, all live until its transaction commits, so a collection inside a batch scans them for
# nothing. A flow-state batch (5,000 events) grows the young generation by ~100k objects; at the
# services' 50,000 a replay spent a tenth of its reader's CPU in collections.
REPLAY_YOUNG = 500_000


@dataclass(frozen=True)
class RebuildSpec:
    """What a service's rebuild needs to know about it."""

    service: str
    schema: str  # the live schema
    migrations: Path
    group_id: str  # the live consumer group
    topics: tuple[str, ...]
    event_types: tuple[str, ...]
    handler: Callable[[], Handler]  # the service's handler, publishing switched off
    tables: tuple[TableCheck, ...]  # what is verified
    carried: tuple[str, ...] = ()  # configuration tables copied from the live schema, not rebuilt
    ordered: bool = False  # replay all partitions merged by timestamp (state depends on cross-partition order)
    group_label: str = "row"  # what the tables' ``group`` columns name (differences are reported per group)
    # Ordered replay: end the transaction after each of these (one import applied per transaction, as
    # live; a transaction of hundreds of imports only piles up dead rows and locks).
    commit_after: tuple[str, ...] = ()
    # The service's own dead-letter hook (ConsumerSpec.on_dead_letter): what the live consumer writes when
    # it gives up on a message; the rebuild runs it (publishing nothing) for a message it gives up on.
    on_dead_letter: DeadLetterHook | None = None
    settings_factory: Callable[[], ServiceSettings] = ServiceSettings
    # Messages per fetch and transaction. Small lifecycle events fold by the thousand; a topic of bulk
    # rows (the enricher's batches, up to megabytes each) keeps it low to bound memory.
    batch: int = 1000

    @property
    def application_name(self) -> str:
        return f"tributary-{self.schema}"  # what tributary_runtime.db names the live service's sessions


class SuppressedProducer:
    """The producer a rebuild hands its handler: nothing leaves the process; what would have is counted."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   headers: Any = None, **_: Any) -> asyncio.Future[None]:
        self.counts[f"{topic} {header_value(headers, HEADER_EVENT_TYPE) or '?'}"] += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class Stats:
    messages: int = 0  # offsets consumed
    applied: int = 0  # events handed to the handler
    skipped_undecodable: int = 0
    skipped_failed: int = 0
    transactions: int = 0

    def add(self, other: Stats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class LiveBehind(Exception):
    """The live consumer has not yet reached where the rebuild is: wait for it."""


class Replayer:
    """Applies the service's topics into the rebuild schema, stopping exactly at target offsets."""

    def __init__(self, spec: RebuildSpec, settings: ServiceSettings, db: Database, group_id: str,
                 batch: int = 1000) -> None:
        self.spec = spec
        self.settings = settings
        self.db = db
        self.group_id = group_id
        self.batch = batch
        self.handler = spec.handler()
        self.producer = SuppressedProducer()
        self.stats = Stats()
        self.rank = {t: i for i, t in enumerate(spec.topics)}
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TP] = []
        self.beginning: dict[TP, int] = {}
        self.position: dict[TP, int] = {}
        self._reported = time.monotonic()

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            **kafka_client_options(self.settings), group_id=None,
            client_id=f"rebuild-{self.spec.service}", enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms, max_poll_records=self.batch,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES, fetch_max_bytes=16 * MAX_MESSAGE_BYTES)
        await self.consumer.start()
        await self.consumer.topics()  # metadata for every topic
        for topic in self.spec.topics:
            parts = self.consumer.partitions_for_topic(topic)
            if not parts:
                raise RuntimeError(f"topic {topic} not found on {self.settings.kafka_bootstrap_servers}")
            self.partitions += [TP(topic, p) for p in sorted(parts)]
        self.beginning = await self.consumer.beginning_offsets(self.partitions)
        stored = await self.stored()
        self.position = {tp: stored.get(tp, self.beginning[tp]) for tp in self.partitions}
        # Explicit positions straight after assigning (no await in between): no offset reset is ever
        # requested, so none can land later and move a partition behind our back.
        self.consumer.assign(self.partitions)
        for tp in self.partitions:
            self.consumer.seek(tp, self.position[tp])
        self.consumer.pause(*self.partitions)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def run_bulk(self, target: Mapping[TP, int], parallel: ParallelReaders | None) -> int:
        """``run_to(target)``, by the parallel readers when there are any (their positions adopted)."""
        if parallel is None:
            return await self.run_to(target)
        shares = await parallel.run_to(target, self.position)
        await self.adopt(shares)
        return shares.messages

    async def adopt(self, stats: Stats) -> None:
        """Take over from parallel readers: their counts, and the positions they stored."""
        self.stats.add(stats)
        stored = await self.stored()
        self.position = {tp: stored.get(tp, self.beginning[tp]) for tp in self.partitions}

    async def stored(self) -> dict[TP, int]:
        async with self.db.connection() as conn:
            return {TP(topic, p): off for topic in self.spec.topics
                    for p, off in (await offsets.load(conn, self.group_id, topic)).items()}

    async def end_offsets(self) -> dict[TP, int]:
        """Each partition's end now: the high watermark (``end_offsets()`` falls short on tansu; see watermarks)."""
        return await high_watermarks(self.settings, self.partitions)

    def targets(self, live: Mapping[TP, int], end: Mapping[TP, int] | None = None) -> dict[TP, int]:
        """Per partition: the live position (never passed), capped by ``end``; never behind where we are."""
        out = {}
        for tp in self.partitions:
            t = live.get(tp, self.beginning[tp])
            if end is not None:
                t = min(t, end[tp])
            out[tp] = max(t, self.position[tp])
        return out

    def behind(self, live: Mapping[TP, int]) -> list[TP]:
        """Partitions where the rebuild is past the live consumer (the swap must wait for it)."""
        return [tp for tp in self.partitions if self.position[tp] > live.get(tp, self.beginning[tp])]

    def remaining(self, target: Mapping[TP, int]) -> int:
        return sum(max(0, target[tp] - self.position[tp]) for tp in self.partitions)

    async def run_to(self, target: Mapping[TP, int]) -> int:
        """Apply every message below ``target[tp]``, never one at or beyond it. Returns messages consumed."""
        assert self.consumer is not None
        pending = {tp for tp in self.partitions if self.position[tp] < target.get(tp, 0)}
        if not pending:
            return 0
        before = self.stats.messages
        for tp in pending:
            self.consumer.seek(tp, self.position[tp])
        self.consumer.resume(*pending)
        try:
            with fewer_collections(REPLAY_YOUNG):
                if self.spec.ordered:
                    await self._run_merged(target, pending)
                else:
                    await self._run_partitions(target, pending)
        finally:
            self.consumer.pause(*self.partitions)
        return self.stats.messages - before

    async def _fetch(self, wanted: set[TP], fetched: dict[TP, int], target: Mapping[TP, int]
                     ) -> dict[TP, list[Any]]:
        """One fetch for ``wanted``; messages in [fetched, target) per partition; drops what is done."""
        assert self.consumer is not None
        got = await self.consumer.getmany(*wanted, timeout_ms=200, max_records=self.batch)
        if time.monotonic() - self._reported > 10:  # a long replay (or a stalled fetch) says where it is
            self._reported = time.monotonic()
            log.info("replaying: %d messages so far; waiting on %s", self.stats.messages,
                     {f"{tp.topic}[{tp.partition}]": f"{fetched[tp]}/{target[tp]}" for tp in sorted(wanted)})
        out: dict[TP, list[Any]] = {}
        for tp, messages in got.items():
            if tp not in wanted:
                continue
            keep = [m for m in messages if fetched[tp] <= m.offset < target[tp]]
            if keep:
                out[tp] = keep
                fetched[tp] = keep[-1].offset + 1
            if fetched[tp] >= target[tp] or any(m.offset >= target[tp] for m in messages):
                wanted.discard(tp)
                self.consumer.pause(tp)
        if not got:  # nothing came: a partition may end in a gap below its target (not with these topics)
            for tp in list(wanted):
                if await self.consumer.position(tp) >= target[tp]:
                    wanted.discard(tp)
        return out

    async def _run_partitions(self, target: Mapping[TP, int], pending: set[TP]) -> None:
        """Each fetch, all its partitions together, in one transaction; the next fetch decoded meanwhile.

        The order across partitions does not matter to such a service (``ordered`` is off), and the
        handler folds a whole batch at once: one transaction per fetch rather than one per partition
        divides the per-transaction statements (offsets, ledger, loads, writes) by the partition count.
        While a batch's transaction waits on the database (its server process runs on another core),
        the next batch is fetched and decoded. Transactions still run one after another, in log order:
        the next one starts once the previous has committed and moved the positions on.
        """
        fetched = dict(self.position)
        applying: asyncio.Future[None] | None = None
        try:
            while pending or applying is not None:
                got = await self._fetch(pending, fetched, target) if pending else {}
                messages = [m for batch in got.values() for m in batch]
                prepared = await self._prepare(messages) if messages else None
                if applying is not None:
                    await applying
                    applying = None
                if messages:
                    applying = asyncio.ensure_future(self._apply(got, messages, prepared))
        finally:
            if applying is not None and not applying.done():
                applying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await applying

    async def _run_merged(self, target: Mapping[TP, int], pending: set[TP]) -> None:
        """All partitions of all topics in timestamp order (ties: topic order, partition, offset)."""
        fetched = dict(self.position)
        buffers: dict[TP, deque[Any]] = {tp: deque() for tp in self.partitions}
        while True:
            # Every partition still to be read must have a message buffered before the oldest can be chosen.
            need = {tp for tp in pending if not buffers[tp]}
            if need:
                asked = set(need)
                for tp, messages in (await self._fetch(need, fetched, target)).items():
                    buffers[tp].extend(messages)
                pending -= asked - need  # read up to their targets
                continue
            chunk: list[Any] = []
            while len(chunk) < self.batch:
                if any(not buffers[tp] for tp in pending):
                    break
                ready = [tp for tp in self.partitions if buffers[tp]]
                if not ready:
                    break
                tp = min(ready, key=lambda p: (buffers[p][0].timestamp, self.rank[p.topic], p.partition))
                chunk.append(buffers[tp].popleft())
                if header_value(chunk[-1].headers, HEADER_EVENT_TYPE) in self.spec.commit_after:
                    break
            if not chunk:
                return
            parts: dict[TP, list[Any]] = {}
            for m in chunk:
                parts.setdefault(TP(m.topic, m.partition), []).append(m)
            await self._apply(parts, chunk)

    async def _apply(self, parts: dict[TP, list[Any]], messages: list[Any],
                     prepared: list[Inbound | UndecodableEvent | None] | None = None) -> None:
        """One transaction: the handler over ``messages`` (in order), then every partition's next offset."""
        delay = self.settings.handler_retry_backoff_s
        attempts = 0
        while True:
            try:
                await self._transaction(parts, messages, prepared=prepared)
                return
            except TRANSIENT as exc:
                log.warning("transient error while rebuilding, retrying in %.1fs: %r", delay, exc)
            except Exception as exc:
                if len(messages) > 1:
                    log.warning("a batch failed while rebuilding (%r); applying it message by message", exc)
                    for m in messages:
                        await self._apply({TP(m.topic, m.partition): [m]}, [m])
                    return
                attempts += 1
                if attempts >= self.settings.handler_max_attempts:
                    m = messages[0]
                    log.error("skipping %s[%d]@%d: its handler keeps failing (%r); the live consumer dead-lettered "
                              "it", m.topic, m.partition, m.offset, exc)
                    await self._transaction(parts, messages, skip=True)
                    self.stats.skipped_failed += 1
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _dead_letter_hook(self, unit: Unit, m: Any) -> None:
        """As the live consumer: the hook runs for a message it could decode (an undecodable one has none)."""
        assert self.spec.on_dead_letter is not None
        try:
            envelope = decode(m.value, m.headers)
        except UndecodableEvent:
            return
        await self.spec.on_dead_letter(unit, Inbound(m.topic, m.partition, m.offset, envelope), "handler_failed")

    def _inbound(self, m: Any) -> Inbound | UndecodableEvent | None:
        """A message as the handler gets it; None when it is not for this service; the error if undecodable."""
        event_type = header_value(m.headers, HEADER_EVENT_TYPE)
        if event_type in REGISTRY and event_type not in self.spec.event_types:
            return None  # another service's event on a shared topic
        try:
            envelope = decode(m.value, m.headers)
        except UndecodableEvent as exc:
            return exc  # the live consumer dead-lettered it: no effect on its tables
        if envelope.event_type not in self.spec.event_types:
            return None
        return Inbound(m.topic, m.partition, m.offset, envelope)

    async def _prepare(self, messages: list[Any]) -> list[Inbound | UndecodableEvent | None]:
        """Decode a batch ahead of its transaction, yielding now and then to the transaction in flight."""
        out = []
        for i, m in enumerate(messages, start=1):
            out.append(self._inbound(m))
            if i % 200 == 0:
                await asyncio.sleep(0)  # the in-flight transaction sends its next statement
        return out

    async def _transaction(self, parts: dict[TP, list[Any]], messages: list[Any], *, skip: bool = False,
                           prepared: list[Inbound | UndecodableEvent | None] | None = None) -> None:
        undecodable = applied = 0
        async with self.db.transaction() as conn:
            for tp in parts:
                stored = await offsets.claim(conn, self.group_id, tp.topic, tp.partition)
                if stored and stored != self.position[tp]:
                    raise RuntimeError(f"{tp}: stored offset {stored} is not the reader's position "
                                       f"{self.position[tp]}: is another rebuild writing this schema?")
            unit = Unit(conn, self.producer, self.group_id)  # type: ignore[arg-type]
            if skip and self.spec.on_dead_letter is not None:
                await self._dead_letter_hook(unit, messages[0])
            pending: list[Inbound] = []
            if not skip:
                for inbound in prepared if prepared is not None else map(self._inbound, messages):
                    if isinstance(inbound, UndecodableEvent):
                        undecodable += 1
                    elif inbound is not None:
                        pending.append(inbound)
            if pending:
                await self.handler(unit, pending)
                applied = len(pending)
            for tp, ms in parts.items():
                await offsets.store(conn, self.group_id, tp.topic, tp.partition, ms[-1].offset + 1)
            await unit.flush()
        for tp, ms in parts.items():
            self.position[tp] = ms[-1].offset + 1
        self.stats.messages += len(messages)
        self.stats.applied += applied
        self.stats.skipped_undecodable += undecodable
        self.stats.transactions += 1


# --------------------------------------------------------------------------------------------
# Parallel readers


def default_readers(spec: RebuildSpec) -> int:
    """One reader per core for a service whose tables do not depend on the order across partitions."""
    return 1 if spec.ordered else max(1, min(os.cpu_count() or 1, 8))


class ParallelReaders:
    """Reader processes replaying partitions side by side into the same rebuild schema.

    A replay is CPU-bound in Python (decoding, folding, encoding rows), and one process uses one
    core. A service whose tables do not depend on the order *across* partitions (``ordered`` off)
    can replay different partitions at once: each partition is replayed by one reader, which
    stores its offsets in the transactions that apply it, exactly as a single reader does, so the
    result and the resumability are the same. Partitions are handed out largest first, the next
    to whichever reader is free (they differ in size: imports are keyed to them by hash).

    The processes are spawned (not forked: the parent has an event loop, sockets and threads)
    when this object is created, so their imports overlap whatever the caller does next (the
    schema's migrations); ``start`` then waits until each has connected (the bulk's clock starts
    after that). ``run_to`` returns the readers' counts; the caller's own reader then ``adopt``s
    them and their stored positions.
    """

    def __init__(self, spec: RebuildSpec, settings: ServiceSettings, schema: str, group_id: str, batch: int,
                 count: int) -> None:
        if spec.ordered and count > 1:
            raise ValueError(f"{spec.service} replays all partitions in one order: it takes one reader, not {count}")
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Any] = []
        self.processes: list[Any] = []
        for index in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=_reader_process, name=f"rebuild-reader-{index}", daemon=True,
                                      args=(spec, settings, schema, group_id, batch, index, theirs))
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    async def _ask(self, index: int, message: Any) -> Any:
        try:
            self.pipes[index].send(message)
            kind, value = await asyncio.to_thread(self.pipes[index].recv)
        except (EOFError, OSError):  # its end of the pipe closed: the process is gone
            await asyncio.to_thread(self.processes[index].join, 5)
            code = self.processes[index].exitcode
            raise RuntimeError(f"rebuild reader {index} exited (code {code}) before it finished") from None
        if kind == "error":
            raise RuntimeError(f"rebuild reader {index} failed: {value}")
        return value

    async def start(self) -> float:
        """Each reader connected, its consumer started (the schema must exist); seconds waited for them."""
        started = time.monotonic()
        await asyncio.gather(*(self._ask(i, "start") for i in range(len(self.pipes))))
        return time.monotonic() - started

    async def run_to(self, target: Mapping[TP, int], position: Mapping[TP, int]) -> Stats:
        """Every partition replayed from ``position`` to ``target`` by one of the readers; their counts."""
        todo = sorted((tp for tp in target if target[tp] > position.get(tp, 0)),
                      key=lambda tp: position.get(tp, 0) - target[tp])  # the most messages first
        total = Stats()

        async def reader(index: int) -> None:
            while todo:
                tp = todo.pop(0)
                total.add(Stats(**await self._ask(index, {(tp.topic, tp.partition): target[tp]})))

        try:  # one reader failing stops the handing out (the others finish the partition they have)
            async with asyncio.TaskGroup() as group:
                for index in range(len(self.pipes)):
                    group.create_task(reader(index))
        except ExceptionGroup as failed:
            first = failed.exceptions[0]
            while isinstance(first, ExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return total

    async def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.terminate()
                await asyncio.to_thread(process.join, 5)
        for pipe in self.pipes:
            pipe.close()


def _reader_process(spec: RebuildSpec, settings: ServiceSettings, schema: str, group_id: str, batch: int,
                    index: int, pipe: Any) -> None:
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s rebuild-reader-{index} %(levelname)s "
                        "%(message)s", stream=sys.stderr)
    try:
        asyncio.run(_reader(spec, settings, schema, group_id, batch, pipe))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", repr(exc)))
        raise


async def _reader(spec: RebuildSpec, settings: ServiceSettings, schema: str, group_id: str, batch: int,
                  pipe: Any) -> None:
    """"start" (the schema exists by then), then targets in and counts out, until told to stop."""
    if await asyncio.to_thread(pipe.recv) is None:
        return
    db = await Database.connect(settings.asyncpg_dsn, schema, max_size=2)
    replayer = Replayer(spec, settings, db, group_id, batch)
    try:
        await replayer.start()
        pipe.send(("ready", None))
        target = await asyncio.to_thread(pipe.recv)
        while target is not None:
            replayer.stats = Stats()  # this target's counts only: the parent adds them up
            await replayer.run_to({TP(topic, partition): offset for (topic, partition), offset in target.items()})
            pipe.send(("done", asdict(replayer.stats)))
            target = await asyncio.to_thread(pipe.recv)
    finally:
        await replayer.stop()
        await db.close()


# --------------------------------------------------------------------------------------------
# Live offsets, schemas, verification, swap


async def live_offsets(conn: asyncpg.Connection, spec: RebuildSpec, schema: str | None = None) -> dict[TP, int]:
    rows = await conn.fetch(
        f"SELECT topic, partition, next_offset FROM {ident(schema or spec.schema)}.consumer_offsets"
        " WHERE group_id = $1 AND topic = ANY($2::text[])", spec.group_id, list(spec.topics))
    return {TP(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema))


async def next_schema_name(conn: asyncpg.Connection, base: str, kind: str) -> str:
    """``<base>_<kind>_<n>`` with n one more than any rebuild or old schema of ``base`` so far."""
    names = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{base}\\_%")
    pattern = re.compile(rf"^{re.escape(base)}_(?:rebuild|old)_(\d+)$")
    used = [int(m.group(1)) for r in names if (m := pattern.match(r["nspname"]))]
    return f"{base}_{kind}_{max(used, default=0) + 1}"


async def copy_carried(conn: asyncpg.Connection, spec: RebuildSpec, target_schema: str) -> dict[str, int]:
    """Replace the carried (configuration) tables of ``target_schema`` with the live ones."""
    copied = {}
    for table in spec.carried:
        cols = ", ".join(ident(r["attname"]) for r in await conn.fetch(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0"
            " AND NOT a.attisdropped ORDER BY a.attnum", spec.schema, table))
        await conn.execute(f"DELETE FROM {ident(target_schema)}.{ident(table)}")
        status = await conn.execute(f"INSERT INTO {ident(target_schema)}.{ident(table)} ({cols})"
                                    f" SELECT {cols} FROM {ident(spec.schema)}.{ident(table)}")
        copied[table] = int(status.split()[-1])
    return copied


@dataclass
class Verification:
    equal: bool
    live_offsets: dict[str, int]
    tables: list[dict[str, Any]]
    differing_groups: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, comparisons: list[TableComparison], live: Mapping[TP, int]) -> Verification:
        groups = sorted({g for c in comparisons for g in c.differing_groups})
        return cls(all(c.equal for c in comparisons), {f"{tp.topic}[{tp.partition}]": o for tp, o in
                                                       sorted(live.items())},
                   [c.as_dict() for c in comparisons], groups)


async def connect(settings: ServiceSettings, application_name: str) -> asyncpg.Connection:
    return await asyncpg.connect(settings.asyncpg_dsn,
                                 server_settings=SESSION_SETTINGS | {"application_name": application_name})


async def verify_snapshot(spec: RebuildSpec, settings: ServiceSettings, replayer: Replayer, rebuild_schema: str,
                          *, wait_live: float = 60.0) -> Verification:
    """Compare at exactly the live consumer's committed position, without stopping it.

    One REPEATABLE READ snapshot of the live schema gives its tables and the offsets they
    correspond to; the rebuild is run to exactly those offsets and then read.
    """
    live_conn = await connect(settings, "tributary-rebuild-verify")
    rebuilt_conn = await connect(settings, "tributary-rebuild-verify")
    deadline = time.monotonic() + wait_live
    try:
        while True:
            async with live_conn.transaction(isolation="repeatable_read", readonly=True):
                live = await live_offsets(live_conn, spec)  # the snapshot is taken here
                behind = replayer.behind(live)
                if not behind:
                    await replayer.run_to(replayer.targets(live))
                    comparisons = await compare(live_conn, spec.schema, rebuilt_conn, rebuild_schema, spec.tables)
                    return Verification.of(comparisons, live)
            if time.monotonic() > deadline:
                raise LiveBehind(f"the live consumer stays behind the rebuild on {behind}")
            await asyncio.sleep(0.2)
    finally:
        await live_conn.close()
        await rebuilt_conn.close()


class _Rollback(Exception):
    def __init__(self, outcome: dict[str, Any]) -> None:
        self.outcome = outcome


async def terminate_live_sessions(conn: asyncpg.Connection, spec: RebuildSpec) -> int:
    """End the live service's sessions, which may hold statements prepared against the old tables.

    Sessions opened after this (the service reconnecting while the swap commits) are left alone:
    a new session resolves names when it parses, and one parked on the fence re-resolves them once
    the lock is granted, after the commit (PostgreSQL re-checks a name whose lookup raced with DDL).
    """
    pids = [r["pid"] for r in await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1"
        " AND pid <> pg_backend_pid()", spec.application_name)]
    for pid in pids:
        await conn.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
    await conn.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is cached per transaction
    alive = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids)
    if alive:  # it could go on writing to the old tables after the commit: no swap
        raise RuntimeError(f"{alive} session(s) of {spec.application_name} did not end; the swap is rolled back")
    return len(pids)


async def swap(spec: RebuildSpec, settings: ServiceSettings, replayer: Replayer, rebuild_schema: str, *,
               allow_differences: bool, lock_timeout: float, wait_live: float = 60.0) -> dict[str, Any]:
    """Verify under a fence on the live consumer and swap the schemas, in one transaction."""
    conn = await connect(settings, "tributary-rebuild-swap")
    deadline = time.monotonic() + wait_live
    try:
        while True:
            try:
                async with conn.transaction():
                    return await _swap_in_transaction(conn, spec, replayer, rebuild_schema,
                                                      allow_differences=allow_differences, lock_timeout=lock_timeout)
            except LiveBehind:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
            except _Rollback as rollback:
                return rollback.outcome
            except asyncpg.exceptions.LockNotAvailableError:
                return {"swapped": False, "reason": f"the live consumer held its offsets for more than "
                                                    f"{lock_timeout:g}s (--lock-timeout); nothing was changed"}
    finally:
        await conn.close()


async def _swap_in_transaction(conn: asyncpg.Connection, spec: RebuildSpec, replayer: Replayer, rebuild_schema: str,
                               *, allow_differences: bool, lock_timeout: float) -> dict[str, Any]:
    live_schema, rebuilt = ident(spec.schema), ident(rebuild_schema)
    started = time.monotonic()
    await conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'")
    # The fence: waits for the live consumer's open batch to commit; its next batch blocks on its first statement.
    await conn.execute(f"LOCK TABLE {live_schema}.consumer_offsets IN ACCESS EXCLUSIVE MODE")
    for table in spec.carried:  # configuration written by the API: no write may slip between copy and swap
        await conn.execute(f"LOCK TABLE {live_schema}.{ident(table)} IN EXCLUSIVE MODE")
    live = await live_offsets(conn, spec)
    behind = replayer.behind(live)
    if behind:
        raise LiveBehind(str(behind))
    await replayer.run_to(replayer.targets(live))
    verification = Verification.of(await compare(conn, spec.schema, conn, rebuild_schema, spec.tables), live)
    if not verification.equal and not allow_differences:
        raise _Rollback({"swapped": False, "reason": "the rebuilt tables differ from the live ones",
                         "verification": asdict(verification)})
    carried = await copy_carried(conn, spec, rebuild_schema)
    # The live group's progress in the new schema is what the rebuild consumed: the live offsets, exactly.
    await conn.execute(f"DELETE FROM {rebuilt}.consumer_offsets WHERE group_id = $1", spec.group_id)
    # Moved rather than copied: a group left behind would never move again and look like a lagging consumer.
    await conn.execute(f"UPDATE {rebuilt}.consumer_offsets SET group_id = $1, updated_at = now() WHERE group_id = $2",
                       spec.group_id, replayer.group_id)
    carried_over = await live_offsets(conn, spec, rebuild_schema)

    def consumed(positions: Mapping[TP, int]) -> dict[TP, int]:
        return {tp: o for tp, o in positions.items() if o != replayer.beginning.get(tp)}

    if consumed(carried_over) != consumed(live):  # cannot happen: the reader stopped exactly at the live offsets
        raise RuntimeError(f"offsets to carry over {carried_over} are not the live ones {live}")
    # The dedupe ledger is per group: the live group must recognise every event the rebuild applied.
    moved = await conn.execute(f"UPDATE {rebuilt}.applied_events SET group_id = $1 WHERE group_id = $2",
                               spec.group_id, replayer.group_id)
    old_schema = await next_schema_name(conn, spec.schema, "old")
    await conn.execute(f"ALTER SCHEMA {live_schema} RENAME TO {ident(old_schema)}")
    await conn.execute(f"ALTER SCHEMA {rebuilt} RENAME TO {live_schema}")
    terminated = await terminate_live_sessions(conn, spec)
    return {"swapped": True, "old_schema": old_schema, "new_schema": spec.schema, "rebuilt_as": rebuild_schema,
            "live_offsets": verification.live_offsets, "carried_tables": carried,
            "applied_events_moved": int(moved.split()[-1]), "terminated_sessions": terminated,
            "fenced_seconds": round(time.monotonic() - started, 3), "verification": asdict(verification)}


# --------------------------------------------------------------------------------------------
# The whole procedure and its command line


async def rebuild(spec: RebuildSpec, *, swap_in: bool = False, allow_differences: bool = False,
                  schema: str | None = None, lock_timeout: float = 60.0, batch: int | None = None,
                  max_rounds: int = 50, readers: int | None = None,
                  discard: bool = False, settings: ServiceSettings | None = None) -> dict[str, Any]:
    settings = settings or spec.settings_factory()
    readers = readers or default_readers(spec)
    batch = batch or spec.batch
    parallel: ParallelReaders | None = None
    admin = await connect(settings, "tributary-rebuild")
    try:
        if not await schema_exists(admin, spec.schema):
            raise RuntimeError(f"live schema {spec.schema} does not exist: nothing to rebuild against")
        schema = schema or await next_schema_name(admin, spec.schema, "rebuild")
        if schema == spec.schema or re.fullmatch(rf"{re.escape(spec.schema)}_old_\d+", schema):
            raise ValueError(f"{schema} is the live schema or a previous one; rebuild into a fresh schema")
        group = f"{spec.group_id}@{schema}"
        resumed = await schema_exists(admin, schema)
        if readers > 1:  # started now: their imports overlap the migrations
            parallel = ParallelReaders(spec, settings, schema, group, batch, readers)
        # Imported here: alembic is a third of a second that parallel readers' processes do not need.
        from .migrations import upgrade

        await asyncio.to_thread(upgrade, spec.migrations, schema, settings)  # the live schema's DDL, fresh
        carried = await copy_carried(admin, spec, schema)
    except BaseException:
        if parallel is not None:
            await parallel.close()
        raise
    finally:
        await admin.close()
    log.info("rebuilding %s into schema %s as group %s%s", spec.service, schema, group,
             " (resuming)" if resumed else "")
    db = await Database.connect(settings.asyncpg_dsn, schema, max_size=2)
    replayer = Replayer(spec, settings, db, group, batch)
    report: dict[str, Any] = {"service": spec.service, "schema": schema, "group": group, "resumed": resumed,
                              "carried_tables": carried, "group_label": spec.group_label, "readers": readers}
    try:
        await replayer.start()
        if parallel is not None:
            report["readers_waited_s"] = round(await parallel.start(), 3)
        admin = await connect(settings, "tributary-rebuild")
        try:
            end_at_start = await replayer.end_offsets()
            live = await live_offsets(admin, spec)
            target = replayer.targets(live, end_at_start)
            log.info("end offsets at start: %d messages; live consumer at %d; replaying %d with %d reader(s)",
                     sum(end_at_start.values()), sum(live.values()), replayer.remaining(target), readers)
            started = time.monotonic()
            bulk = await replayer.run_bulk(target, parallel)
            bulk_seconds = time.monotonic() - started
            report["bulk"] = {"messages": bulk, "seconds": round(bulk_seconds, 3), "readers": readers,
                              "events_per_s": round(bulk / bulk_seconds, 1) if bulk_seconds > 0 else None,
                              "end_offsets_at_start": sum(end_at_start.values())}
            log.info("bulk replay: %d messages in %.2fs (%s events/s)", bulk, bulk_seconds,
                     report["bulk"]["events_per_s"])
            if parallel is not None:  # the catch-up is a few batches: this process's reader takes it
                await parallel.close()
                parallel = None
            rounds = []
            for _ in range(max_rounds):  # catch up with the live consumer while imports keep flowing
                live = await live_offsets(admin, spec)
                target = replayer.targets(live, await replayer.end_offsets())
                if replayer.remaining(target) == 0:
                    break
                n = await replayer.run_to(target)
                rounds.append(n)
                log.info("catch-up round %d: %d messages", len(rounds), n)
                if n <= batch:
                    break
            report["catch_up_rounds"] = rounds
        finally:
            await admin.close()
        verification = await verify_snapshot(spec, settings, replayer, schema)
        report["verification"] = asdict(verification)
        log.info("verification at the live position: %s", "EQUAL" if verification.equal else
                 f"DIFFERENT ({', '.join(t['table'] for t in verification.tables if not t['equal'])})")
        if swap_in and (verification.equal or allow_differences):
            report["swap"] = await swap(spec, settings, replayer, schema, allow_differences=allow_differences,
                                        lock_timeout=lock_timeout)
            if report["swap"]["swapped"]:
                log.info("swapped: %s is now %s; the previous tables are in %s", schema, spec.schema,
                         report["swap"]["old_schema"])
            else:
                log.warning("not swapped: %s", report["swap"]["reason"])
        elif swap_in:
            report["swap"] = {"swapped": False, "reason": "the rebuilt tables differ from the live ones"}
        report["stats"] = asdict(replayer.stats)
        report["suppressed_publishes"] = dict(replayer.producer.counts)
        report["positions"] = {f"{tp.topic}[{tp.partition}]": o for tp, o in sorted(replayer.position.items())}
    finally:
        if parallel is not None:
            await parallel.close()
        await replayer.stop()
        await db.close()
    if discard and not report.get("swap", {}).get("swapped"):
        admin = await connect(settings, "tributary-rebuild")
        try:
            await admin.execute(f"DROP SCHEMA {ident(schema)} CASCADE")
        finally:
            await admin.close()
        report["discarded"] = True
        log.info("dropped %s", schema)
    return report


def _print_summary(report: dict[str, Any]) -> None:
    out = sys.stderr
    v = report.get("verification", {})
    print(f"{report['service']} rebuilt into {report['schema']} (group {report['group']})", file=out)
    bulk = report.get("bulk", {})
    print(f"  bulk: {bulk.get('messages')} messages in {bulk.get('seconds')}s = {bulk.get('events_per_s')} events/s",
          file=out)
    for t in v.get("tables", []):
        mark = "equal" if t["equal"] else f"DIFFERENT ({t['differing_count']} rows)"
        print(f"  {t['table']:<22} live {t['rows_live']:>7}  rebuilt {t['rows_rebuilt']:>7}  {mark}", file=out)
    if v.get("differing_groups"):
        print(f"  differing {report['group_label']}s: {', '.join(v['differing_groups'])}", file=out)
    swapped = report.get("swap")
    if swapped:
        print("  swap: " + (f"done; previous tables kept in {swapped['old_schema']}" if swapped["swapped"]
                            else f"not done: {swapped['reason']}"), file=out)


def main(spec: RebuildSpec, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {spec.schema}.rebuild",
        description=f"Rebuild the {spec.service} tables from the event log into a fresh schema, verify them "
                    "against the live ones at the live consumer's exact position, and optionally swap them in.")
    parser.add_argument("--swap", action="store_true", help="swap the rebuilt schema in when it verifies equal")
    parser.add_argument("--allow-differences", action="store_true",
                        help="swap even when the tables differ (e.g. after a projection fix)")
    parser.add_argument("--schema", help="rebuild into (or resume) this schema instead of a new one")
    parser.add_argument("--lock-timeout", type=float, default=60.0,
                        help="seconds to wait for the live consumer's open batch when fencing it (default 60)")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"messages per fetch and transaction (default {spec.batch})")
    parser.add_argument("--readers", type=int, default=None,
                        help="processes replaying the bulk side by side, each its share of the partitions "
                             f"(default {default_readers(spec)}: "
                             + ("this service's replay keeps one order across partitions)" if spec.ordered
                                else "one per core)"))
    parser.add_argument("--discard", action="store_true",
                        help="drop the rebuilt schema afterwards unless it was swapped in (a verification only)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON on stdout")
    args = parser.parse_args(argv)
    if args.readers is not None and args.readers < 1:
        parser.error("--readers must be at least 1")
    if args.readers and args.readers > 1 and spec.ordered:
        parser.error(f"--readers {args.readers}: the {spec.service} replays all partitions in one order "
                     "(one reader)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rebuild %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    report = asyncio.run(rebuild(spec, swap_in=args.swap, allow_differences=args.allow_differences,
                                 schema=args.schema, lock_timeout=args.lock_timeout, batch=args.batch,
                                 readers=args.readers, discard=args.discard))
    _print_summary(report)
    if args.json:
        print(json.dumps(report, default=str))
    equal = report["verification"]["equal"]
    if args.swap:
        sys.exit(0 if report["swap"]["swapped"] else 1)
    sys.exit(0 if equal else 1)
