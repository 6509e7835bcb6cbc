"""Dependencies from application discovery: endpoints resolved, applications created, edges parked.

An endpoint named in a row is resolved to an asset by name, FQDN, short host name or IP
(the first kind that finds exactly one asset). An endpoint that is an application (its
type says so, or is blank) and is unknown becomes a new application asset. An edge whose
other endpoint is an unknown server, database or device is *parked*: it waits in
``parked_dependencies`` and is linked automatically when a later import brings that asset.

Each import's say about an edge is a claim (type, criticality, confidence); the newest
claim decides, and an edge with no claims left (after reverts) disappears.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg

from . import identification, reconciliation, scratch

if TYPE_CHECKING:
    from .inventory import Apply

# Endpoint types that are applications: created when missing. Anything else is parked.
APPLICATION_TYPES = ("application", "app", "service", "api", "microservice", "web_application", "webapp")

# An apply or a revert starts from empty edge tables (``scratch``).
START_EDGES = scratch.starting("edges", "endpoints", "touched_edges")

_APP = "ARRAY[" + ", ".join(f"'{t}'" for t in APPLICATION_TYPES) + "]"


def _cell(column: str) -> str:
    # Staged trimmed, blank as NULL (inventory.TRIM_CELLS).
    return f"r.cells[array_position(b.columns, '{column}')]"


_FILL_EDGES = f"""
INSERT INTO edges (import_id, row_number, asserted_at, source_ref, target_ref, source_type, target_type, port,
                   protocol, claims)
SELECT $1, r.row_number, $2::timestamptz, {_cell('source')}, {_cell('target')},
       lower({_cell('source_type')}), lower({_cell('target_type')}),
       CASE WHEN {_cell('port')} ~ '^[0-9]{{1,5}}$' THEN {_cell('port')}::integer END,
       upper({_cell('protocol')}),
       jsonb_strip_nulls(jsonb_build_object('dependency_type', {_cell('dependency_type')},
                                            'criticality', {_cell('criticality')},
                                            'confidence', {_cell('confidence')}))
FROM staged_rows r JOIN staged_batches b USING (import_id, batch_seq)
WHERE r.import_id = $1 AND {_cell('source')} IS NOT NULL AND {_cell('target')} IS NOT NULL
"""

_FILL_ENDPOINTS = f"""
INSERT INTO endpoints (ref_key, ref, is_app)
SELECT lower(ref), (array_agg(ref ORDER BY import_id, row_number, side))[1],
       bool_or(type IS NULL OR type = ANY({_APP}))
FROM (SELECT import_id, row_number, 0 AS side, source_ref AS ref, source_type AS type FROM edges
      UNION ALL SELECT import_id, row_number, 1, target_ref, target_type FROM edges) s
GROUP BY lower(ref)
"""

# Temp tables get no statistics from autovacuum; planned blind, thousands of endpoints look like one.
_ANALYZE_EDGES = "ANALYZE pg_temp.edges; ANALYZE pg_temp.endpoints"

_SHORT_NAME = "CASE WHEN e.ref_key !~ '^[0-9.:]+$' THEN split_part(e.ref_key, '.', 1) END"

# The first identifier kind that names exactly one asset resolves an endpoint; several: ambiguous.
_RESOLVE = f"""
WITH kinds AS (
    SELECT e.ref_key, k.prio, k.kind, k.lookup, k.value FROM endpoints e
    CROSS JOIN LATERAL (VALUES
        {identification.lookups(1, "name", "e.ref_key")},
        {identification.lookups(2, "fqdn", "CASE WHEN e.ref_key LIKE '%.%' THEN e.ref_key END")},
        {identification.lookups(3, "host", _SHORT_NAME)},
        {identification.lookups(4, "ip", "e.ref_key")}) AS k(prio, kind, lookup, value)
    WHERE k.value IS NOT NULL AND e.asset_id IS NULL
), m AS (
    SELECT kinds.ref_key, kinds.prio, array_agg(DISTINCT ai.asset_id) AS assets
    FROM {{matches}}
    GROUP BY kinds.ref_key, kinds.prio
), first AS (
    SELECT DISTINCT ON (ref_key) ref_key, assets FROM m ORDER BY ref_key, prio
)
UPDATE endpoints e SET asset_id = CASE WHEN cardinality(f.assets) = 1 THEN f.assets[1] END,
                       missing = CASE WHEN cardinality(f.assets) > 1 THEN 'ambiguous' END
FROM first f WHERE e.ref_key = f.ref_key
"""
# Keyed by whether the endpoints are looked up one by one (``identification.probes``).
_RESOLVE_BY_PROBE = {probe: _RESOLVE.format(matches=identification.identifier_matches("kinds", "$1", "$2", probe=probe))
                     for probe in (False, True)}

_CREATE_APPS = """
WITH created AS (
    INSERT INTO assets (asset_id, client_account_id, engagement_id, name, asset_type, created_by_import,
                        last_import_id, created_at, updated_at)
    SELECT md5($2::uuid::text || '/' || $3::uuid::text || '/name:' || e.ref_key)::uuid, $2, $3, e.ref,
           'application', $1, $1, $4, $4
    FROM endpoints e WHERE e.asset_id IS NULL AND e.missing IS NULL AND e.is_app
    ON CONFLICT (asset_id) DO NOTHING
    RETURNING asset_id
)
SELECT count(*) FROM created
"""

_CLAIM_APPS = """
WITH claimed AS (
    INSERT INTO asset_claims AS c (asset_id, import_id, category, source, asserted_at, claims)
    SELECT e.asset_id, $1, 'app_discovery', $3, $2, jsonb_build_object('name', e.ref, 'asset_type', 'application')
    FROM endpoints e JOIN assets a USING (asset_id)
    WHERE e.is_app AND (a.asset_type = 'application' OR a.created_by_import = $1)
    ON CONFLICT (asset_id, import_id) DO UPDATE SET claims = EXCLUDED.claims
    RETURNING asset_id
)
INSERT INTO touched SELECT asset_id FROM claimed ON CONFLICT DO NOTHING
"""

_DEPENDENCY_ID = ("md5($1::uuid::text || '/' || $2::uuid::text || '/' || s.asset_id::text || '>' || t.asset_id::text"
                  " || ':' || coalesce(x.port, 0) || '/' || coalesce(x.protocol, ''))::uuid")

# Link every edge whose endpoints are both resolved: the dependency row, then the claim.
_LINK = f"""
WITH linked AS (
    SELECT {_DEPENDENCY_ID} AS dependency_id, s.asset_id AS source_asset_id, t.asset_id AS target_asset_id, x.*
    FROM edges x
    JOIN endpoints s ON s.ref_key = lower(x.source_ref) AND s.asset_id IS NOT NULL
    JOIN endpoints t ON t.ref_key = lower(x.target_ref) AND t.asset_id IS NOT NULL
), created AS (
    INSERT INTO asset_dependencies (dependency_id, client_account_id, engagement_id, source_asset_id,
        target_asset_id, port, protocol, created_by_import, last_import_id, created_at, updated_at)
    SELECT DISTINCT ON (dependency_id) dependency_id, $1, $2, source_asset_id, target_asset_id, port, protocol,
           import_id, import_id, asserted_at, asserted_at
    FROM linked ORDER BY dependency_id, asserted_at, import_id, row_number
    ON CONFLICT (dependency_id) DO NOTHING
    RETURNING dependency_id
), claimed AS (
    INSERT INTO dependency_claims (dependency_id, import_id, asserted_at, row_number, source_ref, target_ref,
                                   source_type, target_type, claims)
    SELECT DISTINCT ON (dependency_id, import_id) dependency_id, import_id, asserted_at, row_number, source_ref,
           target_ref, source_type, target_type, claims
    FROM linked ORDER BY dependency_id, import_id, row_number DESC
    ON CONFLICT (dependency_id, import_id) DO UPDATE SET claims = EXCLUDED.claims, row_number = EXCLUDED.row_number
    RETURNING dependency_id
), noted AS (
    INSERT INTO touched_edges SELECT DISTINCT dependency_id FROM claimed ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM created) AS created,
       (SELECT count(*) FROM linked) AS linked_rows,
       (SELECT array_agg(dependency_id) FROM created) AS created_ids
"""

_PARK = """
INSERT INTO parked_dependencies (import_id, row_number, client_account_id, engagement_id, asserted_at, source_ref,
    target_ref, source_type, target_type, port, protocol, claims, missing)
SELECT x.import_id, x.row_number, $1, $2, x.asserted_at, x.source_ref, x.target_ref, x.source_type, x.target_type,
       x.port, x.protocol, x.claims,
       CASE WHEN s.asset_id IS NULL AND t.asset_id IS NULL THEN 'both'
            WHEN s.asset_id IS NULL THEN 'source' ELSE 'target' END
FROM edges x
JOIN endpoints s ON s.ref_key = lower(x.source_ref)
JOIN endpoints t ON t.ref_key = lower(x.target_ref)
WHERE s.asset_id IS NULL OR t.asset_id IS NULL
ON CONFLICT DO NOTHING
"""

_DECIDE_EDGES = """
WITH win AS (
    SELECT DISTINCT ON (dc.dependency_id) dc.dependency_id, dc.import_id, dc.asserted_at, dc.claims
    FROM dependency_claims dc JOIN touched_edges USING (dependency_id)
    ORDER BY dc.dependency_id, dc.asserted_at DESC, dc.import_id DESC
), next AS (
    SELECT w.dependency_id, w.claims->>'dependency_type' AS dependency_type, w.claims->>'criticality' AS criticality,
           CASE WHEN w.claims->>'confidence' ~ '^[0-9]+(\\.[0-9]+)?$' THEN (w.claims->>'confidence')::numeric END
               AS confidence,
           jsonb_build_object('import_id', w.import_id, 'set_at', w.asserted_at) AS provenance
    FROM win w
), diff AS (
    SELECT n.*, (d.dependency_type, d.criticality, d.confidence) IS DISTINCT FROM
                (n.dependency_type, n.criticality, n.confidence) AS changed
    FROM next n JOIN asset_dependencies d USING (dependency_id)
)
UPDATE asset_dependencies d SET dependency_type = x.dependency_type, criticality = x.criticality,
       confidence = x.confidence, provenance = x.provenance,
       last_import_id = CASE WHEN x.changed THEN coalesce($1::uuid, d.last_import_id) ELSE d.last_import_id END,
       updated_at = CASE WHEN x.changed THEN $2::timestamptz ELSE d.updated_at END
FROM diff x WHERE d.dependency_id = x.dependency_id AND (x.changed OR d.provenance IS DISTINCT FROM x.provenance)
RETURNING d.dependency_id, x.changed
"""


async def decide_edges(conn: asyncpg.Connection, a: Apply, *, changed_by: uuid.UUID | None) -> set[uuid.UUID]:
    """Decide every touched edge again (newest claim wins); returns the edges whose values changed.

    ``changed_by`` becomes the changed edges' last import (None keeps theirs: a revert).
    """
    rows = await conn.fetch(_DECIDE_EDGES, changed_by, a.at)
    return {r["dependency_id"] for r in rows if r["changed"]}


async def _resolve_endpoints(conn: asyncpg.Connection, tenant: tuple[uuid.UUID, uuid.UUID]) -> None:
    """``endpoints`` from ``edges``, each resolved to the one asset its name identifies, if any."""
    endpoints = int((await conn.execute(_FILL_ENDPOINTS)).split()[-1])
    await conn.execute(_ANALYZE_EDGES)
    await conn.execute(_RESOLVE_BY_PROBE[identification.probes(endpoints)], *tenant)


async def apply_dependencies(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    tenant = (a.client_account_id, a.engagement_id)
    await conn.execute(START_EDGES)
    await reconciliation.start_touched(conn)
    await conn.execute(_FILL_EDGES, a.import_id, a.at)
    await _resolve_endpoints(conn, tenant)
    created_apps = await conn.fetchval(_CREATE_APPS, *a.args)
    await conn.execute(
        "UPDATE endpoints e SET asset_id = md5($1::uuid::text || '/' || $2::uuid::text || '/name:' || e.ref_key)::uuid"
        " WHERE e.asset_id IS NULL AND e.missing IS NULL AND e.is_app", *tenant)
    await conn.execute(_CLAIM_APPS, a.import_id, a.at, a.source)
    await reconciliation.decide(conn, a.policy, a.import_id, a.at)

    link = await conn.fetchrow(_LINK, *tenant)
    created_edges = set(link["created_ids"] or ())
    changed = await decide_edges(conn, a, changed_by=a.import_id)
    touched = await conn.fetchval("SELECT count(*) FROM touched_edges")
    parked = int((await conn.execute(_PARK, *tenant)).split()[-1])
    resolved = await resolve_parked(conn, a)
    updated = len(changed - created_edges)
    return {"assets_created": created_apps, "dependencies_created": len(created_edges),
            "dependencies_updated": updated, "dependencies_unchanged": touched - len(created_edges) - updated,
            "parked_edges": parked, "resolved_edges": resolved}


async def resolve_parked(conn: asyncpg.Connection, a: Apply) -> int:
    """Link the tenant's parked edges (of other imports) whose endpoints now exist; returns how many."""
    tenant = (a.client_account_id, a.engagement_id)
    if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM parked_dependencies WHERE client_account_id = $1 AND engagement_id = $2"
            " AND import_id <> $3)", *tenant, a.import_id):
        return 0
    await conn.execute(START_EDGES)
    await conn.execute(
        "INSERT INTO edges SELECT import_id, row_number, asserted_at, source_ref, target_ref, source_type,"
        " target_type, port, protocol, claims FROM parked_dependencies"
        " WHERE client_account_id = $1 AND engagement_id = $2 AND import_id <> $3", *tenant, a.import_id)
    await _resolve_endpoints(conn, tenant)
    link = await conn.fetchrow(_LINK, *tenant)
    if not link["linked_rows"]:
        return 0
    await decide_edges(conn, a, changed_by=a.import_id)
    # Several imports may have parked the same edge: it is one edge resolved.
    return await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM parked_dependencies p USING edges x
            JOIN endpoints s ON s.ref_key = lower(x.source_ref) AND s.asset_id IS NOT NULL
            JOIN endpoints t ON t.ref_key = lower(x.target_ref) AND t.asset_id IS NOT NULL
            WHERE p.import_id = x.import_id AND p.row_number = x.row_number
            RETURNING s.asset_id AS source_id, t.asset_id AS target_id, p.port, p.protocol
        )
        SELECT count(DISTINCT (source_id, target_id, coalesce(port, 0), coalesce(protocol, ''))) FROM gone
        """)
