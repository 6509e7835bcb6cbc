"""Set-based writes of validated rows into the inventory: a few statements per import.

Ids are derived from the tenant and identity (md5 → uuid), and timestamps come from
the triggering event, so applying the same events always yields the same rows.
Empty values never overwrite what is known.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts import Category


@dataclass(frozen=True)
class Apply:
    import_id: uuid.UUID
    client_account_id: uuid.UUID
    engagement_id: uuid.UUID
    at: datetime

    @property
    def args(self) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, datetime]:
        return (self.import_id, self.client_account_id, self.engagement_id, self.at)


def cell(column: str) -> str:
    """A staged cell by column name, NULL when absent or blank."""
    return f"NULLIF(btrim(r.cells[array_position(b.columns, '{column}')]), '')"


def number(column: str) -> str:
    return f"CASE WHEN {cell(column)} ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN {cell(column)}::numeric END"


# Every non-blank cell of a row outside ``$5`` (the columns stored as such): the canonical
# columns without a column of their own and the file's extra columns, kept as attributes.
EXTRA_ATTRIBUTES = ("(SELECT coalesce(jsonb_object_agg(u.c, btrim(u.v)), '{}'::jsonb)"
                    " FROM unnest(b.columns, r.cells) AS u(c, v)"
                    " WHERE NULLIF(btrim(u.v), '') IS NOT NULL AND u.c <> ALL($5::text[]))")
STAGED = "FROM staged_rows r JOIN staged_batches b USING (import_id, batch_seq) WHERE r.import_id = $1"
ASSET_ID = "md5($2::uuid::text || '/' || $3::uuid::text || '/' || {key})::uuid"

CMDB_FIELDS = ("hostname", "fqdn", "ip_address", "mac_address", "serial_number", "external_id", "asset_type",
               "environment", "criticality", "operating_system")


async def apply_cmdb(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    fields = ", ".join(f"{cell(f)} AS {f}" for f in CMDB_FIELDS)
    merged = ", ".join(f"{f} = COALESCE(EXCLUDED.{f}, t.{f})" for f in CMDB_FIELDS)
    compare_old = ", ".join(f"t.{f}" for f in CMDB_FIELDS)
    compare_new = ", ".join(f"COALESCE(EXCLUDED.{f}, t.{f})" for f in CMDB_FIELDS)
    row = await conn.fetchrow(
        f"""
        WITH src AS (
            SELECT DISTINCT ON (identity_key) * FROM (
                SELECT lower(COALESCE({cell('hostname')}, {cell('name')}, {cell('ip_address')},
                                      {cell('serial_number')}, {cell('external_id')})) AS identity_key,
                       COALESCE({cell('name')}, {cell('hostname')}, {cell('ip_address')}) AS name,
                       {fields}, {EXTRA_ATTRIBUTES} AS attributes, r.row_number
                {STAGED}
            ) s WHERE identity_key IS NOT NULL
            ORDER BY identity_key, row_number DESC
        ), up AS (
            INSERT INTO assets AS t (asset_id, client_account_id, engagement_id, identity_key, name,
                                     {', '.join(CMDB_FIELDS)}, attributes, first_import_id, last_import_id,
                                     created_at, updated_at)
            SELECT {ASSET_ID.format(key='identity_key')}, $2::uuid, $3::uuid, identity_key, name, {', '.join(CMDB_FIELDS)},
                   attributes,
                   $1::uuid, $1::uuid, $4::timestamptz, $4::timestamptz
            FROM src
            ON CONFLICT (client_account_id, engagement_id, identity_key) DO UPDATE SET
                name = COALESCE(EXCLUDED.name, t.name), {merged}, attributes = t.attributes || EXCLUDED.attributes,
                last_import_id = EXCLUDED.last_import_id, updated_at = EXCLUDED.updated_at
            WHERE (t.name, {compare_old}, t.attributes) IS DISTINCT FROM
                  (COALESCE(EXCLUDED.name, t.name), {compare_new}, t.attributes || EXCLUDED.attributes)
            RETURNING (xmax = 0) AS created
        )
        SELECT (SELECT count(*) FROM src) AS distinct_assets,
               count(*) FILTER (WHERE created) AS created,
               count(*) FILTER (WHERE NOT created) AS updated
        FROM up
        """,
        *a.args, ["name", *CMDB_FIELDS],
    )
    return {"assets_created": row["created"], "assets_updated": row["updated"],
            "assets_unchanged": row["distinct_assets"] - row["created"] - row["updated"]}


async def apply_dependencies(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    created_apps = await conn.fetchval(
        f"""
        WITH names AS (
            SELECT DISTINCT ON (lower(n)) lower(n) AS identity_key, n AS name FROM (
                SELECT {cell('source')} AS n, r.row_number {STAGED}
                UNION ALL SELECT {cell('target')}, r.row_number {STAGED}
            ) s WHERE n IS NOT NULL ORDER BY lower(n), row_number
        ), ins AS (
            INSERT INTO assets (asset_id, client_account_id, engagement_id, identity_key, name, asset_type,
                                first_import_id, last_import_id, created_at, updated_at)
            SELECT {ASSET_ID.format(key='identity_key')}, $2::uuid, $3::uuid, identity_key, name, 'application', $1::uuid, $1::uuid, $4::timestamptz, $4::timestamptz
            FROM names
            ON CONFLICT (client_account_id, engagement_id, identity_key) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM ins
        """,
        *a.args,
    )
    port = f"CASE WHEN {cell('port')} ~ '^[0-9]{{1,5}}$' THEN {cell('port')}::integer END"
    row = await conn.fetchrow(
        f"""
        WITH src AS (
            SELECT DISTINCT ON (source_key, target_key, coalesce(port, 0), coalesce(protocol, '')) * FROM (
                SELECT lower({cell('source')}) AS source_key, lower({cell('target')}) AS target_key,
                       {port} AS port, upper({cell('protocol')}) AS protocol,
                       {cell('dependency_type')} AS dependency_type, {cell('criticality')} AS criticality,
                       {number('confidence')} AS confidence, r.row_number
                {STAGED}
            ) s WHERE source_key IS NOT NULL AND target_key IS NOT NULL
            ORDER BY source_key, target_key, coalesce(port, 0), coalesce(protocol, ''), row_number DESC
        ), up AS (
            INSERT INTO asset_dependencies AS t (dependency_id, client_account_id, engagement_id, source_asset_id,
                target_asset_id, port, protocol, dependency_type, criticality, confidence, first_import_id,
                last_import_id, created_at, updated_at)
            SELECT md5($2::uuid::text || '/' || $3::uuid::text || '/' || src.source_key || '>' || src.target_key || ':'
                       || coalesce(src.port, 0) || '/' || coalesce(src.protocol, ''))::uuid,
                   $2::uuid, $3::uuid, s.asset_id, d.asset_id, src.port, src.protocol, src.dependency_type, src.criticality,
                   src.confidence, $1::uuid, $1::uuid, $4::timestamptz, $4::timestamptz
            FROM src
            JOIN assets s ON s.client_account_id = $2 AND s.engagement_id = $3 AND s.identity_key = src.source_key
            JOIN assets d ON d.client_account_id = $2 AND d.engagement_id = $3 AND d.identity_key = src.target_key
            ON CONFLICT (client_account_id, engagement_id, source_asset_id, target_asset_id, (coalesce(port, 0)),
                         (coalesce(protocol, ''))) DO UPDATE SET
                dependency_type = COALESCE(EXCLUDED.dependency_type, t.dependency_type),
                criticality = COALESCE(EXCLUDED.criticality, t.criticality),
                confidence = COALESCE(EXCLUDED.confidence, t.confidence),
                last_import_id = EXCLUDED.last_import_id, updated_at = EXCLUDED.updated_at
            WHERE (t.dependency_type, t.criticality, t.confidence) IS DISTINCT FROM
                  (COALESCE(EXCLUDED.dependency_type, t.dependency_type),
                   COALESCE(EXCLUDED.criticality, t.criticality), COALESCE(EXCLUDED.confidence, t.confidence))
            RETURNING (xmax = 0) AS created
        )
        SELECT (SELECT count(*) FROM src) AS edges,
               count(*) FILTER (WHERE created) AS created, count(*) FILTER (WHERE NOT created) AS updated
        FROM up
        """,
        *a.args,
    )
    return {"assets_created": created_apps, "dependencies_created": row["created"],
            "dependencies_updated": row["updated"],
            "dependencies_unchanged": row["edges"] - row["created"] - row["updated"]}


PERFORMANCE = ("cpu_avg_pct", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct", "memory_total", "disk_avg_pct",
               "disk_peak_pct", "disk_total", "network_avg_mbps", "network_peak_mbps")
CLASSIFICATION = ("data_store", "classification", "regulation", "data_owner", "record_count")


async def apply_attributes(conn: asyncpg.Connection, a: Apply, column: str, fields: tuple[str, ...],
                           numeric: bool) -> dict[str, int]:
    """Merge per-host attributes (performance or classification) into matched assets."""
    value = number if numeric else cell
    pairs = ", ".join(f"'{f}', {value(f)}" for f in fields)
    row = await conn.fetchrow(
        f"""
        WITH src AS (
            SELECT DISTINCT ON (identity_key) * FROM (
                SELECT lower({cell('hostname')}) AS identity_key,
                       jsonb_strip_nulls(jsonb_build_object({pairs})) AS attrs, r.row_number
                {STAGED}
            ) s WHERE identity_key IS NOT NULL ORDER BY identity_key, row_number DESC
        ), matched AS (
            SELECT t.asset_id, t.{column} || src.attrs AS merged, t.{column} AS old
            FROM src JOIN assets t ON t.client_account_id = $2 AND t.engagement_id = $3
                                  AND t.identity_key = src.identity_key
        ), up AS (
            UPDATE assets t SET {column} = m.merged, last_import_id = $1::uuid, updated_at = $4::timestamptz
            FROM matched m WHERE t.asset_id = m.asset_id AND m.merged IS DISTINCT FROM m.old
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM src) AS hosts, (SELECT count(*) FROM matched) AS matched,
               (SELECT count(*) FROM up) AS updated
        """,
        *a.args,
    )
    return {"assets_updated": row["updated"], "assets_unchanged": row["matched"] - row["updated"],
            "unmatched_rows": row["hosts"] - row["matched"]}


async def apply_import(conn: asyncpg.Connection, category: Category, a: Apply) -> dict[str, int]:
    if category is Category.CMDB_EXPORT:
        return await apply_cmdb(conn, a)
    if category is Category.APP_DISCOVERY:
        return await apply_dependencies(conn, a)
    if category is Category.INFRASTRUCTURE:
        return await apply_attributes(conn, a, "performance", PERFORMANCE, numeric=True)
    return await apply_attributes(conn, a, "classification", CLASSIFICATION, numeric=False)


async def record_run(conn: asyncpg.Connection, a: Apply, category: Category, counts: dict[str, int]) -> None:
    await conn.execute(
        "INSERT INTO enrichment_runs (import_id, client_account_id, engagement_id, category, counts, applied_at)"
        " VALUES ($1, $2, $3, $5, $6, $4) ON CONFLICT DO NOTHING",
        *a.args, category.value, counts,
    )
