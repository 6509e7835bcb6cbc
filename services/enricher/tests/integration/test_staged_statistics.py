"""A large enrichment is planned on statistics that count its staged rows.

Statistics of the staging tables taken before the import was staged (as autovacuum takes them) do
not know its rows; the enricher analyzes the tables before its statements read them
(``tributary_runtime.staging.FRESH_STATISTICS_FROM``). A small enrichment leaves them to autovacuum.
"""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from contracts import Category, Envelope, Tenant, ValidationCompleted
from enricher import handlers
from tributary_cli.testing import last_analyzed
from tributary_runtime.consumer import Unit
from tributary_runtime.db import Database

from .conftest import T0
from .test_set_based import stage

_TABLES = ("staged_rows", "staged_batches")


async def enrich(db: Database, producer: AIOKafkaProducer, rows: int) -> int:
    """Stage ``rows`` CMDB rows as one validated batch and enrich them; returns the assets created."""
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    import_id = uuid.uuid4()
    marker = Envelope.wrap(
        ValidationCompleted(category=Category.CMDB_EXPORT, verdict="completed", record_count=rows, valid_count=rows,
                            invalid_count=0, batch_count=1, checksum="-"),
        tenant=tenant, import_id=import_id, flow_id=uuid.uuid4(), producer="test", occurred_at=T0)
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
