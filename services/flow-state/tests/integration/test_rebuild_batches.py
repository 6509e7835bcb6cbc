"""A rebuild that folds thousands of events per transaction projects exactly what one event at a time does.

Real broker and database (the ``stack_env`` fixture). The lifecycles of many imports (progress,
verdicts with errors, validate-only, pauses held and resumed, failed phases retried, reverts,
duplicate deliveries) are published to a topic of their own, then replayed twice with the
rebuild's reader and the live projector into fresh schemas: once a message per transaction
(each flow loaded from and saved to the database around every event, as a live consumer fed one
message at a time), once in batches of thousands, and once by two reader processes side by side
(the rebuild's default on two cores). The four flow tables must be identical, and every flow must
equal the pure in-memory fold of its events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import TopicPartition as TP

from flow_state import MIGRATIONS, flows, speed
from flow_state.projection import Flow, apply, flow_id_of
from flow_state.rebuild import SPEC
from flow_state.settings import FlowStateSettings
from tributary_runtime.checksums import compare
from tributary_runtime.db import Database
from tributary_runtime.migrations import upgrade
from tributary_runtime.rebuild import ParallelReaders, connect, default_readers
from tributary_runtime.watermarks import high_watermarks

IMPORTS = 150  # ~1,000 events: every kind of lifecycle several times, split across batch boundaries


@pytest.fixture
def settings(stack_env: dict[str, str]) -> Iterator[FlowStateSettings]:
    yield FlowStateSettings(database_url=stack_env["DATABASE_URL"],
                            kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])


def fold(envelopes: list[Any]) -> dict[uuid.UUID, Flow]:
    """The projection on its own: each event once (by id), in log order per flow."""
    seen: set[uuid.UUID] = set()
    out: dict[uuid.UUID, Flow] = {}
    for e in envelopes:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out[flow_id_of(e)] = apply(out.get(flow_id_of(e)), e)
    return out


async def scenario(settings: FlowStateSettings) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"flow-state.batches.{run}"
    one_by_one, batched, parallel = f"flow_state_one_{run}", f"flow_state_batched_{run}", f"flow_state_par_{run}"
    envelopes = speed.lifecycles(IMPORTS, seed=7)
    unique = len({e.event_id for e in envelopes})
    assert unique < len(envelopes)  # duplicates are part of the log, and must be applied once
    await speed.create_topic(settings, topic, 3)
    try:
        assert await speed.publish(settings, topic, envelopes) == len(envelopes)
        single = await speed.replay_into(settings, topic, one_by_one, batch=1)
        bulk = await speed.replay_into(settings, topic, batched, batch=5000)
        side_by_side = await speed.replay_into(settings, topic, parallel, batch=5000, readers=2)
        # Every message was read (the rebuild's end is the high watermark, not tansu's ListOffsets).
        assert (single.events, bulk.events, side_by_side.events) == (len(envelopes),) * 3
        assert single.transactions == len(envelopes)
        assert bulk.transactions < 10
        assert side_by_side.readers == 2 and side_by_side.transactions >= 3  # one partition per transaction

        a, b = await connect(settings, "test"), await connect(settings, "test")
        try:
            for other in (batched, parallel):
                comparisons = await compare(a, one_by_one, b, other, SPEC.tables)
                assert {c.table: c.equal for c in comparisons} == {t.name: True for t in SPEC.tables}, \
                    [c.as_dict() for c in comparisons if not c.equal]
            stored = await b.fetch(f"SELECT partition, next_offset FROM {parallel}.consumer_offsets ORDER BY 1")
            assert sum(r["next_offset"] for r in stored) == len(envelopes) and len(stored) == 3
            rows = {c.table: c.live.rows for c in comparisons}
            expected = fold(envelopes)
            assert rows["master_flows"] == rows["child_flows"] == len(expected) == IMPORTS
            assert rows["flow_timeline"] == unique
            assert rows["processing_steps"] == sum(len(f.steps) for f in expected.values())
        finally:
            await a.close()
            await b.close()

        db = await Database.connect(settings.asyncpg_dsn, batched, max_size=1)
        try:
            async with db.connection() as conn:
                stored = await flows.load(conn, list(expected))
        finally:
            await db.close()
        assert stored == expected  # every column of every flow, and its steps, as the pure fold says
    finally:
        for schema in (one_by_one, batched, parallel):
            await speed.drop_schema(settings, schema)
        await speed.delete_topic(settings, topic)


def test_a_batched_rebuild_equals_the_projection_one_event_at_a_time(settings: FlowStateSettings) -> None:
    asyncio.run(scenario(settings))


def test_a_reader_process_that_fails_stops_the_replay_with_its_error(settings: FlowStateSettings) -> None:
    broken = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/none"})

    async def run() -> None:
        readers = ParallelReaders(SPEC, broken, "flow_state_nowhere", "g@nowhere", 100, 2)
        try:
            with pytest.raises(RuntimeError, match=r"rebuild reader \d failed: .*(Connect|refused)"):
                await readers.start()
        finally:
            await readers.close()
        assert all(not p.is_alive() for p in readers.processes)

    asyncio.run(run())


def test_a_reader_process_that_dies_stops_the_replay_and_its_partitions_resume(settings: FlowStateSettings) -> None:
    async def run() -> None:
        run_id = uuid.uuid4().hex[:8]
        topic, schema = f"flow-state.readers.{run_id}", f"flow_state_readers_{run_id}"
        envelopes = speed.lifecycles(60, seed=3)
        await speed.create_topic(settings, topic, 3)
        try:
            await speed.publish(settings, topic, envelopes)
            await asyncio.to_thread(upgrade, MIGRATIONS, schema, settings)
            spec = speed.spec_for(topic)
            group = f"{spec.group_id}@{schema}"
            readers = ParallelReaders(spec, settings, schema, group, 5000, 2)
            try:
                await readers.start()
                readers.processes[1].kill()
                end = await high_watermarks(settings, [TP(topic, p) for p in range(3)])
                with pytest.raises(RuntimeError, match=r"rebuild reader 1 exited \(code -9\) before it finished"):
                    await readers.run_to(end, {})
            finally:
                await readers.close()
            # What the surviving reader committed stays; one reader resumes from the stored offsets.
            replayed = await speed.replay_into(settings, topic, schema, batch=5000)
            conn = await connect(settings, "test")
            try:
                assert await conn.fetchval(f"SELECT count(*) FROM {schema}.master_flows") == 60
                assert await conn.fetchval(f"SELECT sum(next_offset) FROM {schema}.consumer_offsets") \
                    == len(envelopes)
            finally:
                await conn.close()
            assert 0 < replayed.events < len(envelopes)  # the first reader's partition was not read again
        finally:
            await speed.drop_schema(settings, schema)
            await speed.delete_topic(settings, topic)

    asyncio.run(run())


def test_a_service_replayed_in_one_order_takes_one_reader(settings: FlowStateSettings) -> None:
    ordered = replace(SPEC, ordered=True)
    assert default_readers(ordered) == 1
    with pytest.raises(ValueError, match="one order: it takes one reader, not 2"):
        ParallelReaders(ordered, settings, "s", "g", 100, 2)
