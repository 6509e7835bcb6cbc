"""Identification: which existing asset (if any) each incoming row is about, set-based.

Identifiers are tried in priority order, as an identification engine does: a
source-native key (source + external id), then the FQDN, the short host name, the IP
address, the MAC address, the serial number, and last the name. The first kind that
matches anything decides:
- nothing matches: the row is a new asset, its id derived from its strongest identifier;
- one asset matches: the row is about it, unless a *stronger* identifier of the row
  contradicts that asset (the row says host b, the IP-matched asset is host a) — then it
  is a conflict;
- several assets match: it is ambiguous.
Conflicts and ambiguities are not merged: they become reviewable duplicate candidates.

Rows to identify are put in the scratch table ``incoming``; results land in the scratch table
``identified`` (``scratch``: each use empties them first).
"""

from __future__ import annotations

import uuid

import asyncpg

from . import planner_statistics, scratch, tenants
from .reconciliation import NAME_ALSO_UNDER, derived_identifiers

# (priority, kind): the order in which identifiers decide.
KINDS = ((1, "source_key"), (2, "fqdn"), (3, "host"), (4, "ip"), (5, "mac"), (6, "serial"), (7, "name"))

# A row's strongest identifier (the first it has in priority order), from its own columns in
# ``incoming i``: a new asset's id derives from it. Picking it from the (row, kind) pairs instead
# sorted five pairs per row, 5M at 1M rows.
STRONGEST_VALUE = f"coalesce({', '.join(f'i.{kind}' for _, kind in KINDS)})"
STRONGEST_KIND = ("CASE " + " ".join(f"WHEN i.{kind} IS NOT NULL THEN '{kind}'" for _, kind in KINDS) + " END")
def lookups(prio: int, kind: str, value: str) -> str:
    """VALUES rows (prio, kind, lookup, value): the identifier lookups for ``value`` of ``kind``."""
    under = (kind, *NAME_ALSO_UNDER) if kind == "name" else (kind,)
    return ", ".join(f"({prio}, '{kind}', '{lookup}', {value})" for lookup in under)


# Every (priority, kind, lookup, value) of a row of ``incoming i``; a kind is also its column's name.
PAIRS = ", ".join(lookups(prio, kind, f"i.{kind}") for prio, kind in KINDS)


def identifier_columns(cell: callable, source: str) -> str:  # type: ignore[valid-type]
    """SELECT list of the identifier columns for rows whose cells ``cell(name)`` yields."""
    hostname, fqdn = cell("hostname"), cell("fqdn")
    return f"""
        CASE WHEN {cell('external_id')} IS NOT NULL
             THEN lower({source}) || '|' || lower({cell('external_id')}) END AS source_key,
        lower(coalesce({fqdn}, CASE WHEN {hostname} LIKE '%.%' THEN {hostname} END)) AS fqdn,
        NULLIF(split_part(lower(coalesce({hostname}, {fqdn})), '.', 1), '') AS host,
        lower({cell('ip_address')}) AS ip,
        lower({cell('mac_address')}) AS mac,
        upper({cell('serial_number')}) AS serial,
        lower({cell('name')}) AS name"""


# Temp tables are never analyzed by autovacuum: without statistics a 20,000-row ``incoming``
# is planned as a few rows, and the joins below become nested loops.
_IDENTIFY = """
ANALYZE pg_temp.incoming;
INSERT INTO identified (row_number, asset_id, outcome, matched_on, assets)
WITH ids AS NOT MATERIALIZED (
    SELECT i.row_number, k.prio, k.kind, k.lookup, k.value
    FROM incoming i CROSS JOIN LATERAL (VALUES {pairs}) AS k(prio, kind, lookup, value)
    WHERE k.value IS NOT NULL
), m AS (
    SELECT ids.row_number, ids.prio, ids.kind, ai.asset_id FROM {matches}
), chosen AS (
    SELECT DISTINCT ON (row_number) row_number, prio, kind FROM m ORDER BY row_number, prio
), matched AS (
    SELECT c.row_number, c.prio, c.kind, array_agg(DISTINCT m.asset_id ORDER BY m.asset_id) AS assets
    FROM chosen c JOIN m USING (row_number, prio) GROUP BY c.row_number, c.prio, c.kind
), conflicting AS (
    -- A stronger identifier of the row that the matched asset holds with another value.
    SELECT DISTINCT mt.row_number
    FROM matched mt
    JOIN ids h ON h.row_number = mt.row_number AND h.prio < mt.prio
    {held}
    WHERE cardinality(mt.assets) = 1
      AND (h.kind <> 'source_key' OR split_part(ai.value, '|', 1) = split_part(h.value, '|', 1))
)
SELECT i.row_number,
       CASE WHEN mt.row_number IS NULL AND {strongest_value} IS NOT NULL
                THEN md5('{tenant}/{engagement}/' || {strongest_kind} || ':' || {strongest_value})::uuid
            WHEN cardinality(mt.assets) = 1 THEN mt.assets[1] END AS asset_id,
       CASE WHEN {strongest_value} IS NULL THEN 'unidentifiable'
            WHEN mt.row_number IS NULL THEN 'new'
            WHEN cardinality(mt.assets) > 1 THEN 'ambiguous'
            WHEN c.row_number IS NOT NULL THEN 'conflict'
            ELSE 'matched' END AS outcome,
       mt.kind AS matched_on,
       coalesce(mt.assets, '{{}}'::uuid[]) AS assets
FROM incoming i LEFT JOIN matched mt USING (row_number) LEFT JOIN conflicting c USING (row_number);
ANALYZE pg_temp.identified;
"""


def probes(rows: int) -> bool:
    """Whether an import of ``rows`` rows looks its identifiers up one by one.

    A small import is planned on statistics that may trail the inventory (``planner_statistics``
    refreshes them for large imports only): after many small imports a tenant of 100,000
    identifiers can still look like one row, and the join the planner then picks reads every
    identifier of the tenant, for each import. Looking each identifier up costs what the import
    is, whatever the tenant holds. A large import is planned on fresh statistics and joins.
    """
    return rows < planner_statistics.MIN_ROWS


def identifier_matches(ids: str, tenant: str, engagement: str, *, probe: bool) -> str:
    """FROM clause pairing ``ids`` (columns ``kind``, ``lookup``, ``value``: as ``lookups`` gives
    them) with the tenant's identifiers as ``ai``.

    An asset's name is not stored as a name identifier where it equals one of its FQDN, host or
    address identifiers (``reconciliation.IDENTIFIER_VALUES``), so a name is looked up under
    those kinds too, and there it finds only the asset that bears it: together, exactly the
    assets with that name.

    ``probe``: one index lookup per identifier. A LATERAL subquery with OFFSET 0 is never
    flattened into a join, so the planner cannot choose to hash the tenant instead.
    """
    match = (f"ai.tenant_no = {tenants.number(tenant, engagement)}"
             f" AND ai.kind = {ids}.lookup AND ai.value = {ids}.value"
             f" AND ({ids}.lookup = {ids}.kind OR EXISTS (SELECT 1 FROM assets named"
             f" WHERE named.asset_id = ai.asset_id AND lower(named.name) = {ids}.value))")
    if probe:
        return f"{ids} CROSS JOIN LATERAL (SELECT ai.asset_id FROM asset_identifiers ai WHERE {match} OFFSET 0) ai"
    return f"{ids} JOIN asset_identifiers ai ON {match}"


# The values of kind ``h.kind`` the matched asset ``mt.assets[1]`` is found by, as ``ai``: from its
# values and claims (``asset_identifiers`` has no index by asset id). OFFSET 0 keeps the subquery
# whole, so it runs only for a row with a stronger identifier: flattened, it derived every matched
# asset's identifiers before the pairs were joined (2.5 s of a 100k-row re-import that has none).
_HELD = (f"CROSS JOIN LATERAL (SELECT d.value FROM ({derived_identifiers('a.asset_id = mt.assets[1]')}) d"
         f" WHERE d.kind = h.kind OFFSET 0) ai")


# From this many rows ``identified``'s index by asset id is dropped before it is filled and built
# afterwards: kept up row by row, its entries land at random (1M rows: 2.5 s of a 4.6 s statement),
# where building it sorts them once.
INDEX_AFTER_FROM = 50_000


async def identify(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID,
                   rows: int) -> None:
    """Fill ``identified`` from the ``rows`` rows of ``incoming`` (ids inlined: they are UUIDs,
    and a multi-statement script cannot take parameters)."""
    tenant, engagement = uuid.UUID(str(client_account_id)), uuid.UUID(str(engagement_id))
    probe, quoted = probes(rows), (f"'{tenant}'", f"'{engagement}'")
    script = _IDENTIFY.format(tenant=tenant, engagement=engagement, held=_HELD,
                              matches=identifier_matches("ids", *quoted, probe=probe),
                              strongest_kind=STRONGEST_KIND, strongest_value=STRONGEST_VALUE, pairs=PAIRS)
    if rows >= INDEX_AFTER_FROM:
        script = f"DROP INDEX pg_temp.{scratch.IDENTIFIED_INDEX};\n{script}{scratch.INDEXES['identified']}"
    await conn.execute(scratch.starting("identified") + script)


async def record_candidates(conn: asyncpg.Connection, import_id: uuid.UUID, client_account_id: uuid.UUID,
                            engagement_id: uuid.UUID, category: str) -> int:
    """Conflicting and ambiguous rows become duplicate candidates; returns how many."""
    status = await conn.execute(
        """
        INSERT INTO duplicate_candidates (import_id, row_number, client_account_id, engagement_id, category,
                                          matched_on, reason, asset_ids, identifiers, claims)
        SELECT $1, d.row_number, $2, $3, $4, d.matched_on, d.outcome, d.assets,
               jsonb_strip_nulls(jsonb_build_object('source_key', i.source_key, 'fqdn', i.fqdn, 'host', i.host,
                   'ip', i.ip, 'mac', i.mac, 'serial', i.serial, 'name', i.name)),
               i.claims
        FROM identified d JOIN incoming i USING (row_number)
        WHERE d.outcome IN ('conflict', 'ambiguous')
        ON CONFLICT DO NOTHING
        """, import_id, client_account_id, engagement_id, category)
    return int(status.split()[-1])
