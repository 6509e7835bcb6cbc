"""A rebuild that folds thousands of events per transaction projects exactly what one event at a time does.

Real broker and database (the ``stack_env`` fixture). The lifecycles of many imports (progress,
verdicts with errors, validate-only, pauses held and resumed, failed phases retried, reverts,
duplicate deliveries) are published to a topic of their own, then replayed twice with the
rebuild's reader and the live projector into two fresh schemas: once a message per transaction
(each flow loaded from and saved to the database around every event, as a live consumer fed one
message at a time), once in batches of thousands. The four flow tables must be identical, and
every flow must equal the pure in-memory fold of its events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from flow_state import flows, speed
from flow_state.projection import Flow, apply, flow_id_of
from flow_state.rebuild import SPEC
from flow_state.settings import FlowStateSettings
from tributary_runtime.checksums import compare
from tributary_runtime.db import Database
from tributary_runtime.rebuild import connect

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
    one_by_one, batched = f"flow_state_one_{run}", f"flow_state_batched_{run}"
    envelopes = speed.lifecycles(IMPORTS, seed=7)
    unique = len({e.event_id for e in envelopes})
    assert unique < len(envelopes)  # duplicates are part of the log, and must be applied once
    await speed.create_topic(settings, topic, 3)
    try:
        assert await speed.publish(settings, topic, envelopes) == len(envelopes)
        single = await speed.replay_into(settings, topic, one_by_one, batch=1)
        bulk = await speed.replay_into(settings, topic, batched, batch=5000)
        # Every message was read (the rebuild's end is the high watermark, not tansu's ListOffsets).
        assert (single.events, bulk.events) == (len(envelopes), len(envelopes))
        assert single.transactions == len(envelopes)
        assert bulk.transactions < 10

        a, b = await connect(settings, "test"), await connect(settings, "test")
        try:
            comparisons = await compare(a, one_by_one, b, batched, SPEC.tables)
            assert {c.table: c.equal for c in comparisons} == {t.name: True for t in SPEC.tables}, \
                [c.as_dict() for c in comparisons if not c.equal]
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
        for schema in (one_by_one, batched):
            await speed.drop_schema(settings, schema)
        await speed.delete_topic(settings, topic)


def test_a_batched_rebuild_equals_the_projection_one_event_at_a_time(settings: FlowStateSettings) -> None:
    asyncio.run(scenario(settings))
