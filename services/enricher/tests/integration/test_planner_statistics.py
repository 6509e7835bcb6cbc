"""Planner statistics around a large import: analyzed in the import's own transaction.

The imports after a large one skip the staleness check (they are small, and it would be their
overhead), so the large import leaves the tables analyzed with its own rows counted.
"""

from __future__ import annotations

import uuid

from contracts import Category, Tenant
from enricher import inventory, planner_statistics
from enricher.policy import InventoryPolicy
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
