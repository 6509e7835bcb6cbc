"""The enricher's scratch tables: temp tables made once per database session, emptied at each commit.

An import is applied through a few set-based statements over temp tables (``incoming``,
``identified``, ``touched``…). Creating and dropping them for every import cost catalog writes
and a fresh plan for every statement that names them: about a fifth of a 100-row import's
database time. Made once with ``ON COMMIT DELETE ROWS``, they start every transaction empty,
and a rolled-back transaction that made them takes them along (the next one makes them again).
"""

from __future__ import annotations

import asyncpg

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
    "wanted_identifiers": "(client_account_id uuid NOT NULL, engagement_id uuid NOT NULL, kind text NOT NULL,"
                          " value text NOT NULL, asset_id uuid NOT NULL)",
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
INDEXES = {"identified": "CREATE INDEX IF NOT EXISTS identified_asset ON pg_temp.identified (asset_id);\n"}


def ensuring(*names: str) -> str:
    """SQL making the named tables for this session unless they exist; rows already there stay."""
    return "".join(f"CREATE TEMP TABLE IF NOT EXISTS {n} {TABLES[n]} ON COMMIT DELETE ROWS;\n" + INDEXES.get(n, "")
                   for n in names)


def starting(*names: str) -> str:
    """SQL giving the named tables empty: a transaction may apply more than one thing (a revert,
    then the parked edges it resolves), and each starts from nothing."""
    return ensuring(*names) + "".join(f"DELETE FROM pg_temp.{n};\n" for n in names)


async def start(conn: asyncpg.Connection, *names: str) -> None:
    await conn.execute(starting(*names))
