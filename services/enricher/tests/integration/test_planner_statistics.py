"""Planner statistics around a large import: analyzed in the import's own transaction.

The imports after a large one skip the staleness check (they are small, and it would be their
overhead), so the large import leaves the tables analyzed with its own rows counted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from contracts import Category, Tenant
from enricher import SCHEMA, inventory, planner_statistics
from enricher.policy import InventoryPolicy
from tributary_cli import processes, testing
from tributary_runtime.db import Database

from .conftest import T0
from .test_set_based import stage


async def test_a_large_import_leaves_the_tables_it_grew_analyzed_with_its_own_rows(db: Database) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    import_id = uuid.uuid4()
    async with db.transaction() as conn:
        await stage(conn, import_id, Category.CMDB_EXPORT, 1500)
        a = inventory.Apply(import_id, tenant.client_account_id, tenant.engagement_id, T0, Category.CMDB_EXPORT,
                            "upload", InventoryPolicy())
        assert (await inventory.apply_import(conn, a))["assets_created"] == 1500
        # Below the size that is worth an ANALYZE, nothing is analyzed.
        assert await planner_statistics.refresh_after(conn, planner_statistics.MIN_ROWS - 1,
                                                      dependencies=False) == []
        # As if the import were far larger than every table: all the tables it writes are analyzed.
        analyzed = await planner_statistics.refresh_after(conn, 10**9, dependencies=False)
        assert analyzed == sorted(planner_statistics.ASSET_TABLES)
        live = await conn.fetchval("SELECT count(*) FROM assets")
        estimated = await conn.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = 'assets'::regclass")
        # The uncommitted rows of this very transaction are in the statistics.
        assert estimated >= 0.9 * live and live >= 1500
        with_this_tenant = await conn.fetchval(
            "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'assets'"
            " AND attname = 'client_account_id' AND $1 = ANY(most_common_vals::text::uuid[])",
            tenant.client_account_id)
        assert with_this_tenant == 1  # the new tenant's 1,500 rows are a most common value


@pytest.fixture
async def own_db(stack_env: dict[str, str]) -> AsyncIterator[Database]:
    """A migrated database of its own, one connection, autovacuum off on the enricher's tables: the
    statistics counters then move only by what the test does (the session's seeded database holds
    other tests' rows, and autovacuum would analyze at a time of its choosing)."""
    name = f"tributary_stats_{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(testing._create_database, stack_env["DATABASE_URL"], name)
    url = testing._with_database(stack_env["DATABASE_URL"], name)
    try:
        await asyncio.to_thread(processes.migrate, stack_env | {"DATABASE_URL": url})
        database = await Database.connect(url, SCHEMA, min_size=1, max_size=1)
        try:
            async with database.connection() as conn:
                for table in planner_statistics.COLUMNS:
                    await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            yield database
        finally:
            await database.close()
    finally:
        await asyncio.to_thread(testing._drop_database, stack_env["DATABASE_URL"], name)


async def _import(db: Database, rows: int, *, analyze_after: bool) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    import_id = uuid.uuid4()
    async with db.transaction() as conn:
        await stage(conn, import_id, Category.CMDB_EXPORT, rows)
        a = inventory.Apply(import_id, tenant.client_account_id, tenant.engagement_id, T0, Category.CMDB_EXPORT,
                            "upload", InventoryPolicy())
        assert (await inventory.apply_import(conn, a))["assets_created"] == rows
        if analyze_after:
            assert await planner_statistics.refresh_after(conn, 10**9, dependencies=False) == sorted(
                planner_statistics.ASSET_TABLES)
    async with db.connection() as conn:
        # The committed changes reach the server's counters when this session goes idle next.
        await conn.execute("SELECT pg_stat_force_next_flush()")


async def _changes_since_analyze(db: Database, table: str) -> int:
    async with db.connection() as conn:
        return await conn.fetchval("SELECT n_mod_since_analyze FROM pg_stat_user_tables"
                                   " WHERE schemaname = current_schema() AND relname = $1", table)


async def test_the_next_import_does_not_analyze_again_what_a_large_import_analyzed_with_its_own_rows(
        own_db: Database) -> None:
    await _import(own_db, 1500, analyze_after=True)
    # The server counts the import's rows as changes since that ANALYZE: by its counter alone, stale.
    assert await _changes_since_analyze(own_db, "assets") >= 1500
    async with own_db.transaction() as conn:
        assert await planner_statistics.refresh_if_stale(conn, 10**9, dependencies=False) == []

    # An import that leaves its rows unanalyzed does make the tables it wrote stale for the next one.
    await _import(own_db, 1500, analyze_after=False)
    async with own_db.transaction() as conn:
        assert await planner_statistics.refresh_if_stale(conn, 10**9, dependencies=False) == [
            "asset_claims", "asset_identifiers", "assets"]
    # That ANALYZE (of some columns) leaves the server's counter where it was; the check, not.
    assert await _changes_since_analyze(own_db, "assets") >= 3000
    async with own_db.transaction() as conn:
        assert await planner_statistics.refresh_if_stale(conn, 10**9, dependencies=False) == []

    # A whole-table ANALYZE by anyone else (autovacuum, an operator) resets the counter: what the
    # enricher noted before it no longer applies, and later changes count in full.
    async with own_db.connection() as conn:
        await conn.execute("ANALYZE assets")
    await _import(own_db, 1500, analyze_after=False)
    async with own_db.transaction() as conn:
        assert "assets" in await planner_statistics.refresh_if_stale(conn, 10**9, dependencies=False)
