"""The enricher's scratch tables: temp tables made once per database session, emptied where they are used.

An import is applied through a few set-based statements over temp tables (``incoming``,
``identified``, ``touched``…). Creating and dropping them for every import cost catalog writes
and a fresh plan for every statement that names them: about a fifth of a 100-row import's
database time. So they are made once per session, and a rolled-back transaction that made them
takes them along (the next one makes them again).

Every use starts its tables (``starting``/``start``: made if missing, then emptied by DELETE);
nothing may assume a table is empty because a transaction began. One exception: a large import
makes ``incoming`` anew, by CREATE TABLE AS, with the same columns and keys
(``inventory._fill_incoming``), and later uses find it as if ``start`` had made it. ``ON COMMIT DELETE ROWS``
would give that for free, but it truncates every such table, with its indexes and TOAST table,
at every commit of a transaction that touched any temp table: each truncation scans the
session's local buffers (``temp_buffers``, 256 MB here: 32,768 of them) per relation. That was
8.6–9.9 ms per transaction against 1.1–1.4 ms with DELETE (a transaction writing 100 rows to one
of them, the nine tables made). DELETE leaves dead rows that only a truncation gives back, so
``tidy`` truncates once the tables have grown past ``TIDY_BYTES``.
"""

from __future__ import annotations

import asyncpg

# Rows of ``asset_identifiers``.
_IDENTIFIER_ROWS = ("(client_account_id uuid NOT NULL, engagement_id uuid NOT NULL, kind text NOT NULL,"
                    " value text NOT NULL, asset_id uuid NOT NULL)")
# Column lists in the order positional INSERTs rely on.
TABLES = {
    "incoming": """(
        row_number integer PRIMARY KEY,
        source     text NOT NULL,
        source_key text, fqdn text, host text, ip text, mac text, serial text, name text,
        claims     jsonb NOT NULL)""",
    "identified": "(row_number integer NOT NULL, asset_id uuid, outcome text NOT NULL, matched_on text,"
                  " assets uuid[] NOT NULL)",
    "touched": "(asset_id uuid PRIMARY KEY)",
    "created_assets": "(asset_id uuid PRIMARY KEY)",
    "deciding": "(asset_id uuid NOT NULL)",
    "wanted_identifiers": _IDENTIFIER_ROWS,
    "held_identifiers": _IDENTIFIER_ROWS,
    "edges": """(
        import_id   uuid    NOT NULL,
        row_number  integer NOT NULL,
        asserted_at timestamptz NOT NULL,
        source_ref  text NOT NULL,
        target_ref  text NOT NULL,
        source_type text,
        target_type text,
        port        integer,
        protocol    text,
        claims      jsonb NOT NULL,
        PRIMARY KEY (import_id, row_number))""",
    "endpoints": "(ref_key text PRIMARY KEY, ref text NOT NULL, is_app boolean NOT NULL, asset_id uuid, missing text)",
    "touched_edges": "(dependency_id uuid PRIMARY KEY)",
}
IDENTIFIED_INDEX = "identified_asset"
INDEXES = {"identified": f"CREATE INDEX IF NOT EXISTS {IDENTIFIED_INDEX} ON pg_temp.identified (asset_id);\n"}


# Above this size in all, the session's scratch tables are truncated before the next import:
# the dead rows of ~40 imports of 100 rows, or what one large import left. Statements that scan
# a scratch table (a whole-table UPDATE of ``incoming``) read its dead pages too, so the bound is
# low: one truncation per ~40 small imports instead of one per commit.
TIDY_BYTES = 4 * 1024 * 1024

_SIZE = """
SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c
WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'r' AND c.relname = ANY($1::text[])
"""


def starting(*names: str) -> str:
    """SQL giving the named tables, made for this session unless they exist, empty: rows of an
    earlier transaction of this session, or of an earlier step of this one (a revert, then the
    parked edges it resolves), are gone."""
    return "".join(f"CREATE TEMP TABLE IF NOT EXISTS {n} {TABLES[n]};\n" + INDEXES.get(n, "")
                   + f"DELETE FROM pg_temp.{n};\n" for n in names)


async def start(conn: asyncpg.Connection, *names: str) -> None:
    await conn.execute(starting(*names))


async def tidy(conn: asyncpg.Connection) -> bool:
    """Truncate the session's scratch tables if they have grown past ``TIDY_BYTES``; True if it did."""
    sizes = await conn.fetch(_SIZE, list(TABLES))
    if sum(r["bytes"] for r in sizes) <= TIDY_BYTES:
        return False
    await conn.execute("TRUNCATE " + ", ".join(f"pg_temp.{r['relname']}" for r in sizes))
    return True
