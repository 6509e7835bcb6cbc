"""The harness checks itself: schedules are reproducible and complete, a kill waits for its victim
to be seen ready once, canonical forms name run-specific values, files are reproducible, and end
offsets are real ends on tansu."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import datagen
import harness
from tributary_cli import devstack

pytestmark = pytest.mark.fault


def test_kill_schedule_is_seeded_and_hits_every_service_in_every_import() -> None:
    a = harness.kill_schedule(7, 24, gap_s=(0.3, 1.8), restart_s=(0.1, 1.5), files=3)
    assert a == harness.kill_schedule(7, 24, gap_s=(0.3, 1.8), restart_s=(0.1, 1.5), files=3)
    assert a != harness.kill_schedule(8, 24, gap_s=(0.3, 1.8), restart_s=(0.1, 1.5), files=3)
    assert len(a) == 24 and {k.service for k in a} == set(harness.SERVICES)
    plain = [k for k in a if not k.aimed]
    assert [k.file_index for k in plain] == sorted(k.file_index for k in plain)
    assert {k.file_index for k in plain} == {0, 1, 2}
    assert all(k.service == "ingest" for k in a if k.aimed) and sum(k.aimed for k in a) <= 3
    assert all(0.3 <= k.gap_s <= 1.8 and (k.restart_after_s == 0 or 0.1 <= k.restart_after_s <= 1.5) for k in a)
    with pytest.raises(ValueError):
        harness.kill_schedule(7, 3, gap_s=(0.3, 1.8), restart_s=(0.1, 1.5))


class _Victim:
    """A stack process that is never really started or killed."""

    def start(self) -> None:
        pass


class _Driver:
    def __init__(self) -> None:
        self.finished = threading.Event()
        self.file_index = 0
        self.attempt = None
        self.timeout_s = 5.0

    def moment(self) -> str:
        return "busy"


class _Scheduler(harness.KillScheduler):
    """Readiness answers from a script; kills are only recorded."""

    def __init__(self, answers: list[bool]) -> None:
        victim = _Victim()
        super().__init__(SimpleNamespace(procs={"validator": victim}), [harness.Kill(1, 0.0, "validator", 0.0, 0.0)],
                         _Driver(), log=lambda line: None)
        self.answers = answers
        self.probes = 0
        self.killed: list[str] = []

    def _ready(self, service: str) -> bool:
        self.probes += 1
        return self.answers.pop(0) if self.answers else False

    def _kill(self, k: harness.Kill, during: str) -> None:
        self.killed.append(k.service)


def test_a_victim_seen_ready_once_is_killed_though_the_next_probe_times_out() -> None:
    # A busy validator answers one probe and lets the next one time out: it was ready, so it is killed.
    scheduler = _Scheduler([False, True, False])
    scheduler.run()
    assert scheduler.error is None and scheduler.killed == ["validator"] and scheduler.probes == 2


def test_files_are_reproducible(tmp_path: Path) -> None:
    one = datagen.generate(tmp_path / "one", seed=3, rows=500)
    two = datagen.generate(tmp_path / "two", seed=3, rows=500)
    assert [f.path.read_bytes() for f in one] == [f.path.read_bytes() for f in two]
    assert all(len(f.path.read_text().splitlines()) == 501 for f in one)


def test_canonical_form_names_ids_and_event_times() -> None:
    import_id, other = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    names = harness.Names(ids={str(import_id): "cmdb:import"}, times={harness._utc(at): "cmdb:ValidationCompleted@"})
    row = {"import_id": import_id, "asset_id": other, "updated_at": at,
           "provenance": {"hostname": {"import_id": str(import_id), "at": at.isoformat()}},
           "message": f"see import {import_id}", "unknown_time": datetime(2026, 1, 1, tzinfo=UTC)}
    assert names.canon(row) == {
        "import_id": "cmdb:import", "asset_id": str(other), "updated_at": "cmdb:ValidationCompleted@",
        "provenance": {"hostname": {"import_id": "cmdb:import", "at": "cmdb:ValidationCompleted@"}},
        "message": "see import cmdb:import", "unknown_time": "2026-01-01T00:00:00.000000+00:00"}
    assert harness.drop_keys({"v": {"rows_done": 5, "x": [{"rows_total": 1, "y": 2}]}},
                             frozenset({"rows_done", "rows_total"})) == {"v": {"x": [{"y": 2}]}}


def test_end_offsets_count_every_message_of_the_last_batch() -> None:
    """tansu answers ListOffsets(latest) with the last batch's base offset + 1; the harness must not."""

    async def scenario(bootstrap: str) -> tuple[int, int, list[int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("t", num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
        await producer.start()
        try:
            for size in (4, 3):  # two record batches: offsets 0-3 and 4-6
                for fut in [await producer.send("t", b"x", partition=0) for _ in range(size)]:
                    await fut
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition("t", 0)
            listed = (await consumer.end_offsets([tp]))[tp]
        finally:
            await consumer.stop()
        true_end = (await harness._end_offsets(bootstrap, ["t"]))[("t", 0)]
        read = [m.offset for m in await harness._read_topic(bootstrap, "t")]
        return listed, true_end, read

    broker, bootstrap = devstack.start_broker()
    try:
        listed, true_end, read = asyncio.run(scenario(bootstrap))
    finally:
        broker.terminate()
        broker.wait(timeout=10)
    assert (true_end, read) == (7, list(range(7)))
    print(f"\nListOffsets(latest) said {listed} for 7 messages")
