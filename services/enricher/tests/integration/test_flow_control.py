"""Pause, resume and retry at the enricher's boundary, through its real handler and database.

The handler runs in a unit of work as the consumer would give it; what it publishes is
captured. Deterministic ids are checked: a retried enrichment never reuses the failed
attempt's ids, and one request applied twice is one operation.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from contracts import (
    Envelope,
    FlowPaused,
    FlowResumed,
    PhaseRetryRequested,
    Tenant,
    ValidatedBatch,
    ValidationCompleted,
    deterministic_event_id,
    topics,
)
from contracts.producer import RecordBatcher
from enricher.handlers import ON_DEAD_LETTER, EnricherHandler
from tributary_runtime.consumer import Inbound, Unit
from tributary_runtime.db import Database

GROUP = "enricher-flow-control-test"


class Captured:
    """A producer that keeps what is sent (already acknowledged)."""

    def __init__(self) -> None:
        self.sent: list[Envelope[Any]] = []

    async def send(self, topic: str, key: bytes | None = None, value: bytes | None = None,
                   headers: Any = None) -> asyncio.Future[None]:
        from contracts import decode

        self.sent.append(decode(value, headers))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Import:
    def __init__(self, rows: int = 6) -> None:
        self.tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
        self.import_id, self.flow_id = uuid.uuid4(), uuid.uuid4()
        batcher = RecordBatcher("cmdb_export", max_rows=4, payload_type=ValidatedBatch)
        found = [batcher.add(i, {"hostname": f"fc-{i}", "asset_type": "server"}) for i in range(1, rows + 1)]
        self.batches = [self.wrap(b, str(b.batch_seq)) for b in [*found, batcher.flush()] if b is not None]
        self.marker = self.wrap(ValidationCompleted(
            category="cmdb_export", verdict="completed", record_count=rows, valid_count=rows, invalid_count=0,
            batch_count=batcher.batch_count, checksum=batcher.checksum), "")
        self.offset = 0

    def wrap(self, payload: Any, stage_key: str | None = None) -> Envelope[Any]:
        return Envelope.wrap(payload, tenant=self.tenant, import_id=self.import_id, flow_id=self.flow_id,
                             producer="test", stage_key=stage_key)

    def inbound(self, env: Envelope[Any]) -> Inbound:
        self.offset += 1
        topic = topics.VALIDATED_RECORDS if env.event_type == "ValidatedBatch" else topics.EVENTS
        return Inbound(topic, 0, self.offset, env)


async def deliver(db: Database, imp: Import, *envelopes: Envelope[Any]) -> list[Envelope[Any]]:
    """Hand events to the enricher's handler in one transaction; return what it published."""
    producer = Captured()
    async with db.transaction() as conn:
        unit = Unit(conn, producer, GROUP)  # type: ignore[arg-type]
        await EnricherHandler()(unit, [imp.inbound(e) for e in envelopes])
        await unit.flush()
    return producer.sent


async def dead_letter(db: Database, imp: Import, env: Envelope[Any]) -> None:
    """What the consumer does when ``env`` keeps failing: its effects rolled back, then the hook."""
    async with db.transaction() as conn:
        unit = Unit(conn, Captured(), GROUP)  # type: ignore[arg-type]
        await ON_DEAD_LETTER(unit, imp.inbound(env), "handler_failed: boom")


async def state(db: Database, imp: Import) -> tuple[str | None, int | None, int]:
    async with db.connection() as conn:
        row = await conn.fetchrow("SELECT status, attempt FROM staged_imports WHERE import_id = $1", imp.import_id)
        assets = await conn.fetchval("SELECT count(*) FROM assets WHERE client_account_id = $1",
                                     imp.tenant.client_account_id)
    return (row["status"], row["attempt"], assets) if row else (None, None, assets)


def types(sent: list[Envelope[Any]]) -> list[str]:
    return [e.event_type for e in sent]


async def test_a_set_completed_while_paused_is_held_until_the_resume(db: Database) -> None:
    imp = Import()
    assert await deliver(db, imp, imp.wrap(FlowPaused(reason="window"))) == []
    assert await deliver(db, imp, imp.marker, *imp.batches) == []
    assert await state(db, imp) == ("held", 1, 0)

    resume = imp.wrap(FlowResumed(), "resume:1")
    sent = await deliver(db, imp, resume)
    assert types(sent) == ["EnrichmentCompleted"]
    assert sent[0].event_id == deterministic_event_id(imp.import_id, "EnrichmentCompleted", "")
    assert sent[0].payload.assets_created == 6
    assert await state(db, imp) == ("applied", 1, 6)

    # The same resume again (a duplicate message), then another pause and resume: nothing more to do.
    assert await deliver(db, imp, resume) == []
    assert await deliver(db, imp, imp.wrap(FlowPaused()), imp.wrap(FlowResumed())) == []
    assert await state(db, imp) == ("applied", 1, 6)


async def test_a_dead_lettered_completion_is_kept_for_a_retry(db: Database) -> None:
    imp = Import()
    assert await deliver(db, imp, imp.marker, *imp.batches[:-1]) == []
    # The last batch completes the set and enrichment fails on it: dead-lettered, the set kept as failed.
    await dead_letter(db, imp, imp.batches[-1])
    assert await state(db, imp) == ("failed", 1, 0)
    # Further batches (redelivered) do not start it behind the flow's back.
    assert await deliver(db, imp, imp.batches[-1]) == []

    assert await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="validation"))) == []  # not ours
    sent = await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment"), "retry:enrichment:3"))
    assert types(sent) == ["EnrichmentCompleted"]
    assert sent[0].event_id == deterministic_event_id(imp.import_id, "EnrichmentCompleted", "#2")
    assert await state(db, imp) == ("applied", 2, 6)

    again = await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment")))
    assert types(again) == ["ImportFailed"]
    assert (again[0].payload.error.code, again[0].payload.error.reason) == (
        "retry_not_possible", "nothing to retry: the enrichment phase is applied, not failed")
    assert await state(db, imp) == ("applied", 2, 6)


async def test_a_retry_with_batches_missing_fails_again_saying_so(db: Database) -> None:
    imp = Import()
    await dead_letter(db, imp, imp.marker)  # the marker kept, no batch staged
    assert await state(db, imp) == ("failed", 1, 0)
    sent = await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment")))
    assert types(sent) == ["ImportFailed"]
    assert sent[0].payload.error.reason == (
        "nothing to retry yet: the enrichment phase is waiting for 2 more of 2 batches")
    assert await state(db, imp) == ("failed", 2, 0)
    # Once the batches are in, a retry runs it.
    assert await deliver(db, imp, *imp.batches) == []
    sent = await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment")))
    assert types(sent) == ["EnrichmentCompleted"]
    assert sent[0].event_id == deterministic_event_id(imp.import_id, "EnrichmentCompleted", "#3")
    assert await state(db, imp) == ("applied", 3, 6)


async def test_a_retry_that_is_dead_lettered_still_counts_as_an_attempt(db: Database) -> None:
    imp = Import()
    assert await deliver(db, imp, *imp.batches) == []
    await dead_letter(db, imp, imp.marker)
    # The retry itself keeps failing (its effects roll back, but what it sent may be out): attempt 2 is spent.
    await dead_letter(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment")))
    assert await state(db, imp) == ("failed", 2, 0)
    await dead_letter(db, imp, imp.wrap(PhaseRetryRequested(phase="validation")))  # not ours: no attempt
    assert await state(db, imp) == ("failed", 2, 0)
    sent = await deliver(db, imp, imp.wrap(PhaseRetryRequested(phase="enrichment")))
    assert sent[0].event_id == deterministic_event_id(imp.import_id, "EnrichmentCompleted", "#3")
    assert await state(db, imp) == ("applied", 3, 6)
