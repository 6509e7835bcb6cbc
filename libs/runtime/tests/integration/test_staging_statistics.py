"""A phase's statements over its staged rows are planned knowing how many there are.

Autovacuum takes the staging tables' statistics now and then. Taken before an import's rows were
staged, they hold its id as all but absent, and a statement joining its rows to their batches
looks the batches up again for every row. ``staging.refresh_statistics`` analyzes the tables
where the planner's estimate is under a tenth of what the phase knows it staged.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from tributary_cli.testing import last_analyzed
from tributary_runtime import staging
from tributary_runtime.db import Database

COLUMNS = ["hostname", "ip_address"]
# As the services read staged cells: each row's cell found through its batch's column list.
_CELLS = """
SELECT count(*), count(r.cells[array_position(b.columns, 'hostname')])
FROM staged_rows r JOIN staged_batches b USING (import_id, batch_seq) WHERE r.import_id = $1
"""
# Rows of staged_batches read in this transaction so far (counted as they are read).
_BATCHES_READ = ("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
                 " WHERE relid = 'staged_batches'::regclass")


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    return await schema_db("staged_statistics", staging.STAGING_DDL, max_size=2)


async def stage(conn: asyncpg.Connection, rows: int, per_batch: int = 1000) -> uuid.UUID:
    import_id = uuid.uuid4()
    for seq, first in enumerate(range(1, rows + 1, per_batch), start=1):
        numbers = list(range(first, min(rows, first + per_batch - 1) + 1))
        await staging.stage_rows(conn, import_id, seq, COLUMNS, numbers,
                                 [[f"host-{n}.example", f"10.0.{n // 256 % 256}.{n % 256}"] for n in numbers])
    return import_id


async def batches_read(conn: asyncpg.Connection, import_id: uuid.UUID) -> int:
    """Rows of staged_batches read while the import's cells are read as the services read them."""
    before = await conn.fetchval(_BATCHES_READ) or 0
    rows, cells = await conn.fetchrow(_CELLS, import_id)
    assert rows == cells
    return (await conn.fetchval(_BATCHES_READ) or 0) - before


async def test_an_import_the_statistics_do_not_know_is_analyzed_before_its_rows_are_read(db: Database) -> None:
    async with db.transaction() as conn:
        await stage(conn, 30_000)
    async with db.connection() as conn:
        await conn.execute("ANALYZE staged_rows; ANALYZE staged_batches")  # as autovacuum would, before the next
    async with db.transaction() as conn:
        import_id = await stage(conn, 12_000)
    async with db.transaction() as conn:
        # Planned on statistics without it, its rows look up their batch one by one.
        assert await batches_read(conn, import_id) >= 12_000
        analyzed = await last_analyzed(conn, "staged_rows")
        assert await staging.refresh_statistics(conn, import_id, 12_000, 12)
        assert await last_analyzed(conn, "staged_rows") != analyzed
        assert await batches_read(conn, import_id) <= 100
        # Known now: the next phase of it analyzes nothing.
        assert not await staging.refresh_statistics(conn, import_id, 12_000, 12)


async def test_known_and_small_imports_are_left_to_autovacuum(db: Database) -> None:
    async with db.transaction() as conn:
        known = await stage(conn, 20_000)
    async with db.connection() as conn:
        await conn.execute("ANALYZE staged_rows; ANALYZE staged_batches")
    async with db.transaction() as conn:
        small = await stage(conn, 500, per_batch=100)
    async with db.transaction() as conn:
        analyzed = await last_analyzed(conn, "staged_rows")
        assert not await staging.refresh_statistics(conn, known, 20_000, 20)
        assert not await staging.refresh_statistics(conn, small, 500, 5)
        assert await last_analyzed(conn, "staged_rows") == analyzed
