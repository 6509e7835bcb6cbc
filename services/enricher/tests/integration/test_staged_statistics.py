"""A large enrichment is planned on statistics that count its staged rows.

Statistics of the staging tables taken before the import was staged (as autovacuum takes them) do
not know its rows; the enricher analyzes the tables before its statements read them
(``tributary_runtime.staging.FRESH_STATISTICS_FROM``). A small enrichment leaves them to autovacuum.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from aiokafka import AIOKafkaProducer

from contracts import Category, Envelope, Tenant, ValidationCompleted
from enricher import handlers
from tributary_cli.testing import last_analyzed
from tributary_runtime.consumer import Unit
from tributary_runtime.db import Database

from .conftest import T0
from .test_set_based import stage

_TABLES = ("staged_rows", "staged_batches")


def _marker(tenant: Tenant, import_id: uuid.UUID, rows: int) -> Envelope[ValidationCompleted]:
    return Envelope.wrap(
        ValidationCompleted(category=Category.CMDB_EXPORT, verdict="completed", record_count=rows, valid_count=rows,
                            invalid_count=0, batch_count=1, checksum="-"),
        tenant=tenant, import_id=import_id, flow_id=uuid.uuid4(), producer="test", occurred_at=T0)


async def enrich(db: Database, producer: AIOKafkaProducer, rows: int) -> int:
    """Stage ``rows`` CMDB rows as one validated batch and enrich them; returns the assets created."""
    import_id = uuid.uuid4()
    marker = _marker(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()), import_id, rows)
    async with db.transaction() as conn:
        await stage(conn, import_id, Category.CMDB_EXPORT, rows)
        unit = Unit(conn=conn, producer=producer, group_id="test")
        await handlers.enrich(unit, marker)
        await unit.flush()
        return await conn.fetchval("SELECT count(*) FROM assets WHERE created_by_import = $1", import_id)


async def test_a_large_enrichment_analyzes_the_staging_tables_that_do_not_know_its_rows(
        db: Database, producer: AIOKafkaProducer) -> None:
    for rows, analyzes in ((500, False), (12_000, True)):
        async with db.connection() as conn:
            await conn.execute("ANALYZE staged_rows; ANALYZE staged_batches")
            before = {t: await last_analyzed(conn, t) for t in _TABLES}
        assert await enrich(db, producer, rows) == rows
        async with db.connection() as conn:
            after = {t: await last_analyzed(conn, t) for t in _TABLES}
        assert all((after[t] > before[t]) is analyzes for t in _TABLES), (rows, before, after)



async def test_a_new_tenants_second_first_enrichment_waits_for_its_number_before_it_analyzes(
        db: Database, producer: AIOKafkaProducer, seeded_database_url: str) -> None:
    # enricher.tenants.ensure: the first apply of a new tenant keeps its number's row locked until
    # it commits. A second one waits there, holding no lock of an ANALYZE that the first may need
    # next (a deadlock, had it analyzed first).
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    first, second = uuid.uuid4(), uuid.uuid4()
    watcher = await asyncpg.connect(seeded_database_url)
    try:
        async with db.connection() as a, db.connection() as b:
            await b.execute("ANALYZE staged_rows; ANALYZE staged_batches")
            async with b.transaction():
                await stage(b, second, Category.CMDB_EXPORT, 12_000)
            applying = a.transaction()
            await applying.start()
            await stage(a, first, Category.CMDB_EXPORT, 100)
            await handlers.enrich(Unit(conn=a, producer=producer, group_id="test"), _marker(tenant, first, 100))

            async def enrich_second() -> int:
                async with b.transaction():
                    unit = Unit(conn=b, producer=producer, group_id="test")
                    await handlers.enrich(unit, _marker(tenant, second, 12_000))
                    await unit.flush()
                    return await b.fetchval("SELECT count(*) FROM assets WHERE created_by_import = $1", second)

            waiting = asyncio.create_task(enrich_second())
            blocked = None
            for _ in range(200):
                blocked = await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1"
                                                 " AND wait_event_type = 'Lock'", b.get_server_pid())
                if blocked is not None:
                    break
                await asyncio.sleep(0.05)
            held = await watcher.fetch("SELECT relation::regclass::text FROM pg_locks WHERE pid = $1"
                                       " AND mode = 'ShareUpdateExclusiveLock'", b.get_server_pid())
            await applying.commit()
            # Its first 100 rows are the first import's, whose assets it found once that had committed.
            assert await waiting == 11_900
    finally:
        await watcher.close()
    assert blocked is not None and "INSERT INTO tenants" in blocked
    assert held == []
