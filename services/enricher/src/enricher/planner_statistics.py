"""Fresh planner statistics for the inventory tables before a large import is applied.

Autovacuum analyzes a table a minute or so after it changed. An import applied within that
minute of a large one is planned as if the tenant had no identifiers yet: the joins on
``asset_identifiers`` become nested loops, and 20,000 rows take minutes instead of a second.
So before applying a large import the enricher analyzes, in the import's own transaction (the
tables of whichever schema it works in: the live one or a rebuild's), every inventory table
that changed by more than a tenth since it was last analyzed, as autovacuum would, but now.
Small imports skip it: planned blind, they cost little, and the check would be their overhead.
"""

from __future__ import annotations

import asyncpg

# Rows below which an import is applied without looking at the statistics.
MIN_ROWS = 1000

TABLES = ("asset_claims", "asset_dependencies", "asset_identifiers", "assets", "dependency_claims",
          "parked_dependencies")

# Always in name order: two enrichers analyzing at once then lock the tables in the same order.
_STALE = """
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = ANY($1::text[])
  AND n_mod_since_analyze > 100 + 0.1 * greatest(n_live_tup - n_mod_since_analyze, 0)
ORDER BY relname
"""


async def refresh_if_stale(conn: asyncpg.Connection, rows: int) -> list[str]:
    """Analyze the stale inventory tables when ``rows`` is large; returns the tables analyzed."""
    if rows < MIN_ROWS:
        return []
    stale = [r["relname"] for r in await conn.fetch(_STALE, list(TABLES))]
    if stale:
        await conn.execute("ANALYZE " + ", ".join(stale))
    return stale
