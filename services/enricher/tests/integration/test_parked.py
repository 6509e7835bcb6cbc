"""Parked edges: one edge parked by two imports is one edge when its endpoint arrives."""

from __future__ import annotations

import uuid
from datetime import timedelta

from contracts import Category, Tenant
from enricher import inventory
from enricher.policy import InventoryPolicy
from tributary_runtime import staging
from tributary_runtime.db import Database

from .conftest import T0

APP = (["source", "target", "target_type", "port", "protocol"], [["orders", "db-9", "database", "5432", "TCP"]])
CMDB = (["hostname", "asset_type"], [["db-9", "database"]])


async def apply(db: Database, tenant: Tenant, category: Category, table: tuple[list[str], list[list[str]]],
                minute: int) -> dict[str, int]:
    import_id = uuid.uuid4()
    columns, rows = table
    async with db.transaction() as conn:
        await staging.stage_rows(conn, import_id, 1, columns, list(range(1, len(rows) + 1)), rows,
                                 trim_cells=inventory.TRIM_CELLS)
        return await inventory.apply_import(conn, inventory.Apply(
            import_id, tenant.client_account_id, tenant.engagement_id, T0 + timedelta(minutes=minute), category,
            "upload", InventoryPolicy()))


async def test_an_edge_parked_twice_resolves_once(db: Database) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    first = await apply(db, tenant, Category.APP_DISCOVERY, APP, 1)
    again = await apply(db, tenant, Category.APP_DISCOVERY, APP, 2)
    assert (first["parked_edges"], again["parked_edges"]) == (1, 1)
    arrived = await apply(db, tenant, Category.CMDB_EXPORT, CMDB, 3)
    assert (arrived["assets_created"], arrived["resolved_edges"]) == (1, 1)
    async with db.connection() as conn:
        edges = await conn.fetch(
            "SELECT d.port, d.protocol, count(c.*) AS claims FROM asset_dependencies d"
            " JOIN dependency_claims c USING (dependency_id) WHERE d.client_account_id = $1 GROUP BY 1, 2",
            tenant.client_account_id)
        parked = await conn.fetchval("SELECT count(*) FROM parked_dependencies WHERE client_account_id = $1",
                                     tenant.client_account_id)
    # One edge, claimed by both discovery imports; nothing left parked.
    assert [tuple(e) for e in edges] == [(5432, "TCP", 2)]
    assert parked == 0
