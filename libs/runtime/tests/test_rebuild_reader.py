"""The rebuild reader: exact stops at target offsets, timestamp order across partitions, skipped failures.

Kafka and PostgreSQL are stood in for by fakes here; tests/e2e/test_rebuild_replay.py runs the
real thing.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition as TP

from tributary_runtime import rebuild
from tributary_runtime.rebuild import RebuildSpec, Replayer
from tributary_runtime.settings import ServiceSettings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes
    headers: tuple = ()
    key: bytes | None = None


class FakeConsumer:
    """Partitions as lists; serves at most ``max_records`` from each requested, resumed partition."""

    def __init__(self, log: dict[TP, list[Record]]) -> None:
        self.log = log
        self.pos = {tp: 0 for tp in log}
        self.paused: set[TP] = set()

    def seek(self, tp: TP, offset: int) -> None:
        self.pos[tp] = offset

    def pause(self, *tps: TP) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TP) -> None:
        self.paused -= set(tps)

    async def position(self, tp: TP) -> int:
        return self.pos[tp]

    async def getmany(self, *tps: TP, timeout_ms: int = 0, max_records: int | None = None) -> dict[TP, list[Record]]:
        out = {}
        for tp in tps or self.log:
            if tp in self.paused:
                continue
            records = self.log[tp][self.pos[tp]:self.pos[tp] + (max_records or 10**9)]
            if records:
                out[tp] = records
                self.pos[tp] = records[-1].offset + 1
        await asyncio.sleep(0)
        return out


class FakeConn:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def execute(self, sql: str, *args: Any) -> str:
        if sql.startswith("UPDATE consumer_offsets"):
            group, topic, partition, offset = args
            self.db.pending[(topic, partition)] = offset
        return "OK"

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return self.db.stored.get((args[1], args[2]))


class FakeDb:
    def __init__(self) -> None:
        self.stored: dict[tuple[str, int], int] = {}
        self.pending: dict[tuple[str, int], int] = {}
        self.transactions = 0
        self.open = 0  # transactions in progress: never more than one

    @asynccontextmanager
    async def transaction(self):  # type: ignore[no-untyped-def]
        assert self.open == 0, "a transaction began before the previous one committed"
        self.open += 1
        self.pending = {}
        try:
            yield FakeConn(self)
            await asyncio.sleep(0)  # the commit's round trip: the reader may decode the next batch meanwhile
            self.stored |= self.pending  # commit
            self.transactions += 1
        finally:
            self.open -= 1


def records(topic: str, partition: int, timestamps: list[int], failing: set[int] = frozenset()) -> list[Record]:
    return [Record(topic, partition, i, ts, b"boom" if i in failing else f"{topic}/{partition}/{i}".encode())
            for i, ts in enumerate(timestamps)]


def replayer(log: dict[TP, list[Record]], *, ordered: bool, commit_after: tuple[str, ...] = (),
             on_dead_letter: Any = None, batch: int = 100) -> tuple[Replayer, list[list[bytes]], FakeDb]:
    calls: list[list[bytes]] = []

    async def handler(unit: Any, events: list[Any]) -> None:
        if any(e.envelope.value == b"boom" for e in events):
            raise ValueError("cannot project this")
        calls.append([e.envelope.value for e in events])

    topics = tuple(dict.fromkeys(tp.topic for tp in log))
    spec = RebuildSpec(service="test", schema="test", migrations=Path("."), group_id="test", topics=topics,
                       event_types=("E", "M"), handler=lambda: handler, tables=(), ordered=ordered,
                       commit_after=commit_after, on_dead_letter=on_dead_letter)
    db = FakeDb()
    r = Replayer(spec, ServiceSettings(handler_retry_backoff_s=0.0, handler_max_attempts=2), db, "test@rebuild",
                 batch)  # type: ignore[arg-type]
    r.consumer = FakeConsumer(log)  # type: ignore[assignment]
    r.partitions = list(log)
    r.beginning = {tp: 0 for tp in log}
    r.position = {tp: 0 for tp in log}
    return r, calls, db


@pytest.fixture(autouse=True)
def plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages are their own envelopes here; an event type "M" marks a commit point."""
    def decode(value: bytes, headers: Any) -> Any:
        return SimpleNamespace(value=value, event_type="M" if value.endswith(b"/m") else "E")

    monkeypatch.setattr(rebuild, "decode", decode)


A, B = TP("a", 0), TP("b", 0)


async def test_stops_exactly_at_the_targets_and_resumes_from_there() -> None:
    r, calls, db = replayer({A: records("a", 0, [1, 2, 3, 4, 5]), B: records("b", 0, [1, 2])}, ordered=False)
    assert await r.run_to({A: 3, B: 1}) == 4
    assert r.position == {A: 3, B: 1}
    assert db.stored == {("a", 0): 3, ("b", 0): 1}
    assert sorted(v for c in calls for v in c) == [b"a/0/0", b"a/0/1", b"a/0/2", b"b/0/0"]
    assert await r.run_to({A: 5, B: 2}) == 3
    assert r.position == {A: 5, B: 2} and db.stored == {("a", 0): 5, ("b", 0): 2}
    assert await r.run_to({A: 5, B: 2}) == 0  # nothing below the targets is left


async def test_ordered_replay_merges_partitions_by_timestamp() -> None:
    log = {A: records("a", 0, [10, 30, 50, 70]), B: records("b", 0, [20, 40, 60])}
    r, calls, _ = replayer(log, ordered=True, batch=2)
    await r.run_to({A: 4, B: 2})  # b's third message (ts 60) is beyond its target
    flat = [v for c in calls for v in c]
    assert flat == [b"a/0/0", b"b/0/0", b"a/0/1", b"b/0/1", b"a/0/2", b"a/0/3"]
    assert r.position == {A: 4, B: 2}


async def test_ordered_replay_commits_after_each_marker() -> None:
    marker = (("event_type", b"M"),)  # the reader routes on the header, without decoding
    log = {A: [Record("a", 0, i, i, v, marker if v.endswith(b"/m") else ())
               for i, v in enumerate([b"x", b"1/m", b"y", b"z", b"2/m", b"w"])]}
    r, calls, db = replayer(log, ordered=True, commit_after=("M",))
    await r.run_to({A: 6})
    assert calls == [[b"x", b"1/m"], [b"y", b"z", b"2/m"], [b"w"]]
    assert db.transactions == 3


def test_targets_never_pass_the_live_consumer_nor_go_back() -> None:
    r, _, _ = replayer({A: records("a", 0, [1] * 9), B: records("b", 0, [1] * 9)}, ordered=False)
    r.position = {A: 4, B: 0}
    assert r.targets({A: 7, B: 6}, {A: 9, B: 5}) == {A: 7, B: 5}
    assert r.targets({A: 2}) == {A: 4, B: 0}  # B unknown to the live group: not consumed there either
    assert r.behind({A: 2}) == [A] and r.behind({A: 4}) == []


async def test_a_message_that_keeps_failing_is_skipped_with_the_services_dead_letter_hook() -> None:
    hooked: list[int] = []

    async def hook(unit: Any, inbound: Any, reason: str) -> None:
        hooked.append(inbound.offset)

    r, calls, db = replayer({A: records("a", 0, [1, 2, 3, 4], failing={2})}, ordered=False, on_dead_letter=hook)
    await r.run_to({A: 4})
    assert [v for c in calls for v in c] == [b"a/0/0", b"a/0/1", b"a/0/3"]
    assert hooked == [2]
    assert r.stats.skipped_failed == 1 and db.stored == {("a", 0): 4}
    assert r.producer.counts == {}


async def test_each_fetch_is_one_transaction_over_its_partitions_one_after_another() -> None:
    log = {A: records("a", 0, list(range(7))), B: records("b", 0, list(range(5)))}
    r, calls, db = replayer(log, ordered=False, batch=4)
    assert await r.run_to({A: 7, B: 5}) == 12
    # The fake serves up to 4 per partition per fetch: fetches of 4+4, then 3+1; each one transaction,
    # each partition in offset order within it (the order between partitions does not matter here).
    per_partition = [{p: [v for v in call if v.startswith(p)] for p in (b"a/", b"b/")} for call in calls]
    assert per_partition == [{b"a/": [b"a/0/0", b"a/0/1", b"a/0/2", b"a/0/3"], b"b/": [b"b/0/0", b"b/0/1", b"b/0/2",
                                                                                     b"b/0/3"]},
                             {b"a/": [b"a/0/4", b"a/0/5", b"a/0/6"], b"b/": [b"b/0/4"]}]
    assert db.transactions == 2 and db.stored == {("a", 0): 7, ("b", 0): 5}


@pytest.mark.parametrize("ordered", [False, True])
async def test_a_replay_collects_young_objects_only_every_replay_young_allocations(ordered: bool) -> None:
    # A batch's objects live until its transaction commits: collections inside it scan them for nothing.
    r, _, _ = replayer({A: records("a", 0, [1, 2, 3]), B: records("b", 0, [1, 2])}, ordered=ordered)
    seen: list[int] = []
    handler = r.handler

    async def observing(unit: Any, events: list[Any]) -> None:
        seen.append(gc.get_threshold()[0])
        await handler(unit, events)

    r.handler = observing
    before = gc.get_threshold()
    await r.run_to({A: 3, B: 2})
    assert seen and set(seen) == {rebuild.REPLAY_YOUNG}
    assert gc.get_threshold() == before


@pytest.mark.parametrize(("ordered", "readers", "message"), [
    (True, "2", "--readers 2: the test replays all partitions in one order (one reader)"),
    (False, "0", "--readers must be at least 1"),
])
def test_the_command_refuses_a_reader_count_it_cannot_use(capsys: pytest.CaptureFixture[str], ordered: bool,
                                                          readers: str, message: str) -> None:
    spec = RebuildSpec(service="test", schema="test", migrations=Path("."), group_id="test", topics=("t",),
                       event_types=("E",), handler=lambda: None, tables=(), ordered=ordered)
    with pytest.raises(SystemExit) as exited:
        rebuild.main(spec, ["--readers", readers])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
