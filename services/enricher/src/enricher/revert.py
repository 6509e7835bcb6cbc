"""Reverting an import: its claims go, and every asset and edge it touched is decided again.

What only that import contributed disappears (assets and edges left without claims);
what it overwrote comes back from the remaining claims. An edge of another import whose
endpoint disappears is parked again, so it re-links if that asset returns. Reverting
twice changes nothing (the revert is recorded), and a revert that arrives before the
import was applied stops it from ever being applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from . import dependencies, reconciliation, scratch
from .inventory import Apply


@dataclass(frozen=True)
class RevertOutcome:
    applied: bool
    counts: dict[str, int]


async def is_reverted(conn: asyncpg.Connection, import_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM import_reverts WHERE import_id = $1)", import_id))


async def revert_import(conn: asyncpg.Connection, a: Apply) -> RevertOutcome | None:
    """Undo ``a.import_id``; None when it was reverted before."""
    if await is_reverted(conn, a.import_id):
        return None
    applied = bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM enrichment_runs WHERE import_id = $1)",
                                       a.import_id))
    counts: dict[str, int] = {}
    if applied:
        counts = await _undo(conn, a)
    await conn.execute(
        "INSERT INTO import_reverts (import_id, client_account_id, engagement_id, requested_at, counts)"
        " VALUES ($1, $2, $3, $4, $5)", a.import_id, a.client_account_id, a.engagement_id, a.at, counts)
    return RevertOutcome(applied, counts)


def _count(status: str) -> int:
    return int(status.split()[-1])


async def _undo(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    await scratch.tidy(conn)
    await reconciliation.start_created(conn)  # a revert creates no asset: every touched one is decided
    await reconciliation.start_touched(conn)
    await conn.execute(dependencies.START_EDGES)
    await conn.execute("INSERT INTO touched SELECT asset_id FROM asset_claims WHERE import_id = $1", a.import_id)
    await conn.execute("INSERT INTO touched_edges SELECT dependency_id FROM dependency_claims WHERE import_id = $1",
                       a.import_id)
    await reconciliation.note_held(conn)  # the claims about to go are what some of them come from
    await conn.execute("DELETE FROM asset_claims WHERE import_id = $1", a.import_id)
    await conn.execute("DELETE FROM dependency_claims WHERE import_id = $1", a.import_id)
    parked_removed = _count(await conn.execute("DELETE FROM parked_dependencies WHERE import_id = $1", a.import_id))
    candidates_removed = _count(await conn.execute("DELETE FROM duplicate_candidates WHERE import_id = $1",
                                                   a.import_id))
    orphans = [r["asset_id"] for r in await conn.fetch(
        "SELECT t.asset_id FROM touched t WHERE NOT EXISTS (SELECT 1 FROM asset_claims c WHERE c.asset_id = t.asset_id)")]
    # Other imports' edges to an asset about to disappear wait for it again.
    reparked = _count(await conn.execute(
        """
        INSERT INTO parked_dependencies (import_id, row_number, client_account_id, engagement_id, asserted_at,
            source_ref, target_ref, source_type, target_type, port, protocol, claims, missing)
        SELECT dc.import_id, dc.row_number, d.client_account_id, d.engagement_id, dc.asserted_at, dc.source_ref,
               dc.target_ref, dc.source_type, dc.target_type, d.port, d.protocol, dc.claims,
               CASE WHEN d.source_asset_id = ANY($1) AND d.target_asset_id = ANY($1) THEN 'both'
                    WHEN d.source_asset_id = ANY($1) THEN 'source' ELSE 'target' END
        FROM asset_dependencies d JOIN dependency_claims dc USING (dependency_id)
        WHERE d.source_asset_id = ANY($1) OR d.target_asset_id = ANY($1)
        ON CONFLICT DO NOTHING
        """, orphans))
    edges_with_orphans = _count(await conn.execute(
        "DELETE FROM asset_dependencies WHERE source_asset_id = ANY($1) OR target_asset_id = ANY($1)", orphans))
    # Identifiers are a derived index without a foreign key (migration 0006): removed with their assets,
    # by key, from what they held before their claims went.
    await conn.execute(reconciliation.forget_held("h.asset_id = ANY($1)"), orphans)
    removed = _count(await conn.execute("DELETE FROM assets WHERE asset_id = ANY($1)", orphans))
    edges_removed = _count(await conn.execute(
        "DELETE FROM asset_dependencies d USING touched_edges t WHERE d.dependency_id = t.dependency_id"
        " AND NOT EXISTS (SELECT 1 FROM dependency_claims c WHERE c.dependency_id = d.dependency_id)"))
    await conn.execute("DELETE FROM touched_edges t WHERE NOT EXISTS"
                       " (SELECT 1 FROM asset_dependencies d WHERE d.dependency_id = t.dependency_id)")
    await conn.execute("DELETE FROM touched t WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.asset_id = t.asset_id)")
    # What comes back was set by the imports that remain, not by the reverted one.
    restored_edges = await dependencies.decide_edges(conn, a, changed_by=None)
    restored = await reconciliation.decide(conn, a.policy, None, a.at)
    return {"assets_removed": removed, "assets_restored": restored,
            "dependencies_removed": edges_removed + edges_with_orphans,
            "dependencies_restored": len(restored_edges), "edges_reparked": reparked,
            "parked_edges_removed": parked_removed, "duplicate_candidates_removed": candidates_removed}
