"""Migration 0009: provenance keyed by attribute becomes one element per winning claim, and back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
from alembic import command
from alembic.config import Config
from psycopg.types.json import Jsonb

from enricher import SCHEMA, reconciliation
from enricher.policy import InventoryPolicy
from tributary_runtime.db import Database

T0, T1 = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC)


async def test_provenance_is_grouped_by_claim_as_deciding_writes_it_and_ungrouped_on_downgrade(
        empty_database_url: str, migrations: Config) -> None:
    command.upgrade(migrations, "0008")
    tenant, engagement, asset, bare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # The older claim has the larger import id: the order is by time first.
    older, newer = uuid.UUID(int=2), uuid.UUID(int=1)
    entry = {str(i): {"import_id": str(i), "source": s, "set_at": t.isoformat()}
             for i, s, t in ((older, "servicenow", T0), (newer, "rvtools", T1))}
    keyed = {"ip_address": entry[str(older)], "hostname": entry[str(older)], "environment": entry[str(newer)]}
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        for asset_id, provenance in ((asset, keyed), (bare, {})):
            conn.execute("INSERT INTO assets (asset_id, client_account_id, engagement_id, name, hostname, ip_address,"
                         " environment, provenance, created_by_import, last_import_id, created_at, updated_at)"
                         " VALUES (%s, %s, %s, 'web-01', 'web-01', '10.0.0.1', 'production', %s, %s, %s, %s, %s)",
                         (asset_id, tenant, engagement, Jsonb(provenance), older, newer, T0, T1))
        for import_id, source, at, claims in ((older, "servicenow", T0, {"hostname": "web-01", "ip_address": "10.0.0.1",
                                                                          "environment": "staging"}),
                                              (newer, "rvtools", T1, {"environment": "production"})):
            conn.execute("INSERT INTO asset_claims (asset_id, import_id, category, source, asserted_at, claims)"
                         " VALUES (%s, %s, 'cmdb_export', %s, %s, %s)", (asset, import_id, source, at, Jsonb(claims)))

    def stored() -> dict[uuid.UUID, object]:
        with psycopg.connect(empty_database_url) as conn:
            return dict(conn.execute("SELECT asset_id, provenance FROM enricher.assets").fetchall())

    command.upgrade(migrations, "0009")
    grouped = [entry[str(older)] | {"attributes": ["hostname", "ip_address"]},
               entry[str(newer)] | {"attributes": ["environment"]}]
    assert stored() == {asset: grouped, bare: []}

    # Deciding the asset from its claims writes what the migration wrote (on the schema it now runs on).
    command.upgrade(migrations, "head")
    db = await Database.connect(empty_database_url, SCHEMA, min_size=1, max_size=1)
    try:
        async with db.transaction() as conn:
            await reconciliation.start_created(conn)
            await reconciliation.start_touched(conn)
            await conn.execute("INSERT INTO touched VALUES ($1)", asset)
            changed = await reconciliation.decide(conn, InventoryPolicy(), None, T1)
            provenance = await conn.fetchval("SELECT provenance FROM assets WHERE asset_id = $1", asset)
    finally:
        await db.close()
    assert (changed, provenance) == (0, grouped)

    command.downgrade(migrations, "0008")
    assert stored() == {asset: keyed, bare: {}}
