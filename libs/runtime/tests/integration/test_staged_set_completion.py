"""When a staged set is complete (its marker and every batch it announces are in, with the batches'
checksum) and whether its flow is paused: ``staging.complete``, one statement per look. And the
import's lock that staging takes. Against the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from contracts import Category, Envelope, Tenant, ValidationCompleted
from contracts.digest import import_checksum
from tributary_cli.testing import CountingConnection
from tributary_runtime import staging
from tributary_runtime.db import Database

COLUMNS = ["hostname", "ip_address"]
TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    return await schema_db("staged_completion", staging.STAGING_DDL + staging.FLOW_CONTROL_DDL, max_size=2)


async def stage(db: Database, import_id: uuid.UUID, seq: int) -> None:
    async with db.transaction() as conn:
        assert await staging.stage_rows(conn, import_id, seq, COLUMNS, [seq], [[f"host-{seq}.example", "10.0.0.1"]])


async def mark(db: Database, import_id: uuid.UUID, batches: int, checksum: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO staged_imports (import_id, client_account_id, engagement_id, marker, expected_batches,"
            " checksum) VALUES ($1, $2, $3, '{\"announced\": true}', $4, $5)",
            import_id, uuid.uuid4(), uuid.uuid4(), batches, checksum)


async def look(db: Database, import_id: uuid.UUID) -> tuple[staging.StagedImport | None, int]:
    async with db.transaction() as conn:
        counted = CountingConnection(conn)
        staged = await staging.complete(counted, import_id)  # type: ignore[arg-type]
    return staged, counted.statements


async def test_a_set_is_complete_once_its_marker_and_every_announced_batch_are_in(db: Database) -> None:
    import_id = uuid.uuid4()
    await stage(db, import_id, 1)
    assert await look(db, import_id) == (None, 1)  # no marker yet
    await stage(db, import_id, 2)
    async with db.connection() as conn:
        digests = [tuple(r) for r in await conn.fetch(
            "SELECT batch_seq, digest FROM staged_batches WHERE import_id = $1", import_id)]
    await mark(db, import_id, 3, import_checksum(digests))  # announces a third batch
    assert await look(db, import_id) == (None, 1)  # still to come
    async with db.transaction() as conn:
        await conn.execute("UPDATE staged_imports SET expected_batches = 2 WHERE import_id = $1", import_id)
    staged, statements = await look(db, import_id)
    assert statements == 1
    assert staged == staging.StagedImport(import_id, {"announced": True}, 2, "staging", 1)

    async with db.transaction() as conn:  # the flow paused: the same look says so
        await conn.execute(
            "INSERT INTO flow_control (import_id, client_account_id, engagement_id, paused, event_id)"
            " VALUES ($1, $2, $3, true, $4)", import_id, uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    staged, statements = await look(db, import_id)
    assert staged is not None and staged.paused and statements == 1

    async with db.transaction() as conn:  # finished: never complete again
        await staging.finish(conn, import_id, "validated")
    assert await look(db, import_id) == (None, 1)


async def test_batches_that_are_not_the_announced_ones_are_a_checksum_mismatch(db: Database) -> None:
    import_id = uuid.uuid4()
    await stage(db, import_id, 1)
    await stage(db, import_id, 2)
    await mark(db, import_id, 2, "sha256:not-these")
    with pytest.raises(staging.ChecksumMismatch, match="received 2 batches .* marker announced 2"):
        await look(db, import_id)
    # More batches than announced: a mismatch too, whatever the checksum.
    other = uuid.uuid4()
    for seq in (1, 2, 3):
        await stage(db, other, seq)
    await mark(db, other, 2, "sha256:x")
    with pytest.raises(staging.ChecksumMismatch, match="received 3 batches"):
        await look(db, other)


async def test_staging_a_batch_or_a_marker_takes_the_imports_lock_first(db: Database) -> None:
    """A second transaction staging the same import waits for the first to end, so that its look
    at the set sees what the first staged; another import's staging does not wait."""
    import_id = uuid.uuid4()
    first, second = await db.pool.acquire(), await db.pool.acquire()
    try:
        for stage_in_second in (
                lambda conn: staging.stage_rows(conn, import_id, 2, COLUMNS, [2], [["host-2.example", "10.0.0.2"]]),
                lambda conn: staging.record_marker(conn, _marker(import_id), expected_batches=2, checksum="x")):
            tx = first.transaction()
            await tx.start()
            await staging.lock_import(first, import_id)
            waiting = asyncio.ensure_future(_in_transaction(second, stage_in_second))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # blocked on the first's lock
            await tx.commit()
            assert await asyncio.wait_for(waiting, 10) is True

        tx = first.transaction()
        await tx.start()
        await staging.lock_import(first, import_id)
        other = uuid.uuid4()
        assert await asyncio.wait_for(_in_transaction(second, lambda conn: staging.stage_rows(
            conn, other, 1, COLUMNS, [1], [["host-1.example", "10.0.0.1"]])), 10) is True
        await tx.rollback()
    finally:
        await db.pool.release(first)
        await db.pool.release(second)


async def _in_transaction(conn: asyncpg.Connection, work: Callable[[asyncpg.Connection], Awaitable[bool]]) -> bool:
    async with conn.transaction():
        return await work(conn)


def _marker(import_id: uuid.UUID) -> Envelope:
    completed = ValidationCompleted(category=Category.CMDB_EXPORT, verdict="completed", record_count=2,
                                    valid_count=2, invalid_count=0, batch_count=2, checksum="x")
    return Envelope.wrap(completed, tenant=TENANT, import_id=import_id, producer="test", stage_key="marker")
