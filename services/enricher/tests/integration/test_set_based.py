"""No query per row: applying an import runs the same statements whatever its size."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from contracts import Category, Tenant
from enricher import inventory
from enricher.policy import InventoryPolicy
from tributary_cli.testing import CountingConnection
from tributary_runtime import staging
from tributary_runtime.db import Database

from .conftest import T0

COLUMNS = {
    Category.CMDB_EXPORT: ["hostname", "ip_address", "asset_type", "environment", "rack"],
    Category.APP_DISCOVERY: ["source", "target", "target_type", "port", "protocol"],
    Category.INFRASTRUCTURE: ["hostname", "cpu_avg_pct", "cpu_peak_pct", "collected_at"],
    Category.SENSITIVE_DATA: ["hostname", "classification", "regulation"],
}


def row(category: Category, i: int) -> list[str]:
    host = f"host-{i:05d}.corp.example"
    return {
        Category.CMDB_EXPORT: [host, f"10.1.{i // 256}.{i % 256}", "server", "production", f"R{i % 40}"],
        Category.APP_DISCOVERY: [f"app-{i % 97}", f"db-{i}" if i % 10 == 0 else f"app-{(i + 1) % 97}",
                                 "database" if i % 10 == 0 else "", str(1000 + i % 50), "TCP"],
        Category.INFRASTRUCTURE: [host, str(i % 90), str(i % 90 + 5), "2026-11-01T00:00:00+00:00"],
        Category.SENSITIVE_DATA: [host, "PII" if i % 2 else "PCI", "GDPR"],
    }[category]




async def stage(conn: asyncpg.Connection, import_id: uuid.UUID, category: Category, rows: int) -> None:
    await stage_rows(conn, import_id, COLUMNS[category], [row(category, i) for i in range(1, rows + 1)])


async def stage_rows(conn: asyncpg.Connection, import_id: uuid.UUID, cols: list[str], values: list[list[str]]
                     ) -> None:
    """``values`` staged as the import's one validated batch, rows numbered from 1."""
    await staging.stage_rows(conn, import_id, 1, cols, list(range(1, len(values) + 1)), values,
                             trim_cells=inventory.TRIM_CELLS)


async def statements_for(db: Database, tenant: Tenant, category: Category, rows: int) -> tuple[int, dict]:
    import_id = uuid.uuid4()
    async with db.transaction() as conn:
        await stage(conn, import_id, category, rows)
        counting = CountingConnection(conn)
        apply = inventory.Apply(import_id, tenant.client_account_id, tenant.engagement_id, T0, category, "upload",
                                InventoryPolicy(create_placeholders=category is Category.INFRASTRUCTURE))
        counts = await inventory.apply_import(counting, apply)  # type: ignore[arg-type]
        return counting.statements, counts


# Each is a round trip inside the apply's transaction, which a small import pays for like a large one.
STATEMENTS_AT_MOST = {Category.CMDB_EXPORT: 14, Category.APP_DISCOVERY: 22, Category.INFRASTRUCTURE: 20,
                      Category.SENSITIVE_DATA: 18}


@pytest.mark.parametrize("category", list(Category))
async def test_statements_do_not_grow_with_rows(db: Database, category: Category) -> None:
    small_tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    large_tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    if category in (Category.INFRASTRUCTURE, Category.SENSITIVE_DATA):
        # Hosts to match, as a CMDB import would have left them.
        await statements_for(db, small_tenant, Category.CMDB_EXPORT, 10)
        await statements_for(db, large_tenant, Category.CMDB_EXPORT, 2000)
    small, small_counts = await statements_for(db, small_tenant, category, 10)
    large, large_counts = await statements_for(db, large_tenant, category, 2000)
    assert small == large, (small, large)
    assert small <= STATEMENTS_AT_MOST[category], small
    # And the work was real: the large import touched two hundred times the rows.
    touched = ("assets_created", "assets_updated", "dependencies_created", "parked_edges")
    assert sum(large_counts.get(k, 0) for k in touched) > 100 * sum(small_counts.get(k, 0) for k in touched) / 2
