"""Fresh planner statistics for the inventory tables before a large import is applied.

Autovacuum analyzes a table a minute or so after it changed. An import applied within that
minute of a large one is planned as if the tenant had no identifiers yet: the joins on
``asset_identifiers`` become nested loops, and 20,000 rows take minutes instead of a second.
So before applying a large import the enricher analyzes, in the import's own transaction (the
tables of whichever schema it works in: the live one or a rebuild's), every inventory table
that changed by more than a tenth since it was last analyzed, as autovacuum would, but now.
Small imports skip it: planned blind, they cost little, and the check would be their overhead.

And after a large import, before it commits, the tables it grew by more than a tenth are
analyzed too (an ANALYZE counts its own transaction's new rows as live). Otherwise the small
imports after it, which skip the check, are planned on the tables as they were before it:
measured, 100-row imports after a 100,000-row one took 181 ms in the enricher instead of 45 ms
until autovacuum came round.

An ANALYZE of some columns, as here, leaves the server's changes-since-analyze counter as it
was (only a whole-table ANALYZE resets it), and a transaction's own changes reach that counter
when it commits, after the ANALYZE in it has sampled them. Judged by the counter alone, every
large import found the tables stale until autovacuum came round, and analyzed them again (1.4 s
of a 6.5 s 10k-row import after large ones). So each ANALYZE here notes, in
``statistics_refreshes``, the counter as it will stand for the rows it sampled; the staleness
check counts only the changes beyond that, for as long as that ANALYZE is the table's latest.
"""

from __future__ import annotations

import asyncpg

# Rows below which an import is applied without looking at the statistics.
MIN_ROWS = 1000

# The columns that joins and filters use, per table. The JSON columns are left out: sampling and
# detoasting them is most of an ANALYZE's time, and no plan depends on their statistics.
COLUMNS = {
    "asset_claims": ("asset_id", "import_id", "category", "source"),
    "asset_dependencies": ("dependency_id", "client_account_id", "engagement_id", "source_asset_id",
                           "target_asset_id"),
    "asset_identifiers": ("tenant_no", "kind", "value", "asset_id"),
    "assets": ("asset_id", "client_account_id", "engagement_id", "asset_type", "created_by_import"),
    "dependency_claims": ("dependency_id", "import_id"),
    "parked_dependencies": ("import_id", "row_number", "client_account_id", "engagement_id"),
}
ASSET_TABLES = ("asset_claims", "asset_identifiers", "assets", "parked_dependencies")
DEPENDENCY_TABLES = ("asset_dependencies", "dependency_claims")

# Stale as autovacuum's default rule judges it (a tenth of the table changed), from 500 rows up;
# changed since the latest ANALYZE when that was one of ours, else since any.
# Always in name order: two enrichers analyzing at once then lock the tables in the same order.
_STALE = """
SELECT relname FROM (
  SELECT s.relname, s.n_live_tup,
         s.n_mod_since_analyze - coalesce(r.changes_counted, 0) AS changed
  FROM pg_stat_user_tables s
  LEFT JOIN statistics_refreshes r ON r.table_name = s.relname AND r.analyzed_at = s.last_analyze
       AND (s.last_autoanalyze IS NULL OR s.last_autoanalyze < s.last_analyze)
  WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
) t
WHERE changed > 500 + 0.1 * greatest(n_live_tup - changed, 0)
ORDER BY relname
"""

# Just after an ANALYZE: its time per table, and the changes-since-analyze counter as it will stand
# for the rows that ANALYZE saw: the server's, plus what this session has not reported to it yet
# (its committed transactions not yet flushed, and this one's changes so far, all visible to the
# ANALYZE). The statistics snapshot is cleared first: it may hold figures from before the ANALYZE.
_NOTE_REFRESH = """
INSERT INTO statistics_refreshes (table_name, analyzed_at, changes_counted)
SELECT s.relname, s.last_analyze, s.n_mod_since_analyze + x.n_tup_ins + x.n_tup_upd + x.n_tup_del
FROM pg_stat_user_tables s JOIN pg_stat_xact_user_tables x ON x.relid = s.relid
WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[]) AND s.last_analyze IS NOT NULL
ON CONFLICT (table_name) DO UPDATE SET analyzed_at = EXCLUDED.analyzed_at,
                                       changes_counted = EXCLUDED.changes_counted
"""


# Grown as autovacuum would judge it once the import commits: its rows against the table's size.
_GROWN = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])
  AND $2::bigint > 500 + 0.1 * greatest(c.reltuples, 0)
ORDER BY c.relname
"""


async def _analyze(conn: asyncpg.Connection, tables: list[str]) -> None:
    if tables:
        await conn.execute("ANALYZE " + ", ".join(f"{t} ({', '.join(COLUMNS[t])})" for t in tables))
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        await conn.execute(_NOTE_REFRESH, tables)


def _tables(dependencies: bool) -> list[str]:
    return list(ASSET_TABLES + (DEPENDENCY_TABLES if dependencies else ()))


async def refresh_after(conn: asyncpg.Connection, rows: int, *, dependencies: bool) -> list[str]:
    """Analyze, in the import's transaction, the tables a large import of ``rows`` rows grew by a tenth."""
    if rows < MIN_ROWS:
        return []
    grown = [r["relname"] for r in await conn.fetch(_GROWN, _tables(dependencies), rows)]
    await _analyze(conn, grown)
    return grown


async def refresh_if_stale(conn: asyncpg.Connection, rows: int, *, dependencies: bool) -> list[str]:
    """Analyze the stale tables an import of ``rows`` rows will read; returns the tables analyzed.

    ``dependencies``: the import touches dependencies (application discovery), not only assets.
    """
    if rows < MIN_ROWS:
        return []
    stale = [r["relname"] for r in await conn.fetch(_STALE, _tables(dependencies))]
    await _analyze(conn, stale)
    return stale
