"""A small import costs what it is, not what its tenant holds.

Imports below ``planner_statistics.MIN_ROWS`` rows are planned on whatever statistics the
inventory tables have. After many small imports those trail far behind: the tenant's
identifiers look like a row or two, and a join planned on that reads all of them, for every
import. Identification looks a small import's identifiers up one by one instead.
"""

from __future__ import annotations

import uuid

import asyncpg

from contracts import Category, Tenant
from enricher import inventory, planner_statistics
from enricher.policy import InventoryPolicy
from tributary_runtime.db import Database

from .conftest import T0
from .test_set_based import COLUMNS, row, stage_rows

TENANT_HOSTS = 3000
SMALL = 40


async def _identifier_reads(conn: asyncpg.Connection) -> int:
    """Rows of ``asset_identifiers`` and entries of its indexes this transaction has read so far."""
    return await conn.fetchval(
        "SELECT pg_stat_get_xact_tuples_returned('asset_identifiers'::regclass)"
        " + coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0)"
        " FROM pg_index WHERE indrelid = 'asset_identifiers'::regclass")


async def _apply(conn: asyncpg.Connection, tenant: Tenant, values: list[list[str]],
                 category: Category = Category.CMDB_EXPORT) -> dict[str, int]:
    import_id = uuid.uuid4()
    await stage_rows(conn, import_id, COLUMNS[category], values)
    a = inventory.Apply(import_id, tenant.client_account_id, tenant.engagement_id, T0, category, "upload",
                        InventoryPolicy())
    return await inventory.apply_import(conn, a)


async def _tenant_planned_as_empty(conn: asyncpg.Connection) -> tuple[Tenant, int]:
    """A tenant of ``TENANT_HOSTS`` hosts, added after the statistics were taken; and its identifier count."""
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    await conn.execute("ANALYZE asset_identifiers")
    created = await _apply(conn, tenant, [row(Category.CMDB_EXPORT, i) for i in range(1, TENANT_HOSTS + 1)])
    assert created["assets_created"] == TENANT_HOSTS
    held = await conn.fetchval("SELECT count(*) FROM asset_identifiers WHERE client_account_id = $1",
                               tenant.client_account_id)
    assert held >= 3 * TENANT_HOSTS
    return tenant, held


async def test_a_small_import_reads_its_own_identifiers_not_the_tenants(db: Database) -> None:
    cmdb = Category.CMDB_EXPORT
    async with db.transaction() as conn:
        tenant, held = await _tenant_planned_as_empty(conn)

        # Half new hosts, half new names on addresses the tenant already has (conflicts).
        new_hosts = [row(cmdb, TENANT_HOSTS + i) for i in range(1, SMALL // 2 + 1)]
        renamed = [[f"renamed-{i:05d}.corp.example", *row(cmdb, i)[1:]] for i in range(1, SMALL // 2 + 1)]
        assert SMALL < planner_statistics.MIN_ROWS
        before = await _identifier_reads(conn)
        counts = await _apply(conn, tenant, new_hosts + renamed)
        reads = await _identifier_reads(conn) - before

    assert counts["assets_created"] == SMALL // 2
    assert counts["duplicate_candidates"] == SMALL // 2
    # A few lookups per row; reading the tenant's identifiers would be thousands.
    assert reads <= 20 * SMALL < held, (reads, held)


async def test_a_small_dependency_import_resolves_its_endpoints_one_by_one(db: Database) -> None:
    async with db.transaction() as conn:
        tenant, held = await _tenant_planned_as_empty(conn)
        edges = [[f"app-{i % 5}", row(Category.CMDB_EXPORT, i)[0], "server", "443", "TCP"] for i in range(1, SMALL + 1)]
        before = await _identifier_reads(conn)
        counts = await _apply(conn, tenant, edges, Category.APP_DISCOVERY)
        reads = await _identifier_reads(conn) - before

    assert counts["dependencies_created"] == SMALL
    assert counts["assets_created"] == 5  # the applications
    assert reads <= 20 * SMALL < held, (reads, held)
