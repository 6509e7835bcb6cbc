"""Saving flows: a live consumer's few flows in one statement, a rebuild's many by COPY; both write
what the projection folded, and loading reads it back in one statement (real database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from flow_state import MIGRATIONS, flows, speed
from flow_state.projection import Flow, apply, flow_id_of
from flow_state.settings import FlowStateSettings
from tributary_cli.testing import CountingConnection
from tributary_runtime.db import Database
from tributary_runtime.migrations import upgrade


@pytest.fixture
def settings(stack_env: dict[str, str]) -> Iterator[FlowStateSettings]:
    yield FlowStateSettings(database_url=stack_env["DATABASE_URL"],
                            kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])


def test_a_few_flows_are_saved_in_one_statement_and_many_by_copy(settings: FlowStateSettings) -> None:
    async def run() -> None:
        schema = f"flow_state_writes_{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(upgrade, MIGRATIONS, schema, settings)
        db = await Database.connect(settings.asyncpg_dsn, schema, max_size=1)
        try:
            few = speed.lifecycles(3, seed=11)
            expected: dict[uuid.UUID, Flow] = {}
            statements = []
            for envelope in few:  # as a live consumer fed one event at a time: each flow new, then loaded
                fid = flow_id_of(envelope)
                async with db.transaction() as conn:
                    loaded = await flows.load(conn, [fid])
                    counted = CountingConnection(conn)
                    flow = apply(loaded.get(fid), envelope)
                    await flows.save(counted, [flow], loaded.keys())  # type: ignore[arg-type]
                    statements.append(counted.statements)
                expected[fid] = apply(expected.get(fid), envelope)
            assert statements == [1] * len(few)

            many = speed.lifecycles(flows.SAVE_IN_ONE_UP_TO + 10, seed=12)
            folded: dict[uuid.UUID, Flow] = {}
            for envelope in many:
                folded[flow_id_of(envelope)] = apply(folded.get(flow_id_of(envelope)), envelope)
            async with db.transaction() as conn:
                counted = CountingConnection(conn)
                await flows.save(counted, list(folded.values()), ())  # type: ignore[arg-type]
            assert counted.statements == 4  # a COPY per flow table and the timeline
            expected |= folded

            async with db.connection() as conn:
                # Every column of every flow, and its steps (a flow's timeline is not compared: load
                # leaves it), in one statement.
                counted = CountingConnection(conn)
                assert await flows.load(counted, list(expected)) == expected  # type: ignore[arg-type]
                assert counted.statements == 1
                assert all(flow.steps for flow in expected.values())
                timeline = await conn.fetch("SELECT flow_id, seq, event_id FROM flow_timeline")
            assert sorted((r["flow_id"], r["seq"], r["event_id"]) for r in timeline) == sorted(
                (fid, e["seq"], e["event_id"]) for fid, flow in expected.items() for e in flow.timeline)
        finally:
            await db.close()
            await speed.drop_schema(settings, schema)

    asyncio.run(run())
