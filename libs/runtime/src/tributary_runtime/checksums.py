"""Checksums of tables: what proves that a rebuild or a replay left state equal.

A table's checksum is ``md5`` over the md5 of every row's text (``ROW(c1, c2, …)::text``
over explicit columns), concatenated in key order. Two tables with the same checksum
hold the same rows. Columns that are not a function of the events (wall-clock
``now()`` defaults) are left out or replaced by an expression, per table.

Checksums of two schemas are only comparable from connections with the same
``TimeZone`` and float settings (timestamps and floats print per session); every
connection opened here sets ``TimeZone`` to UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

SESSION_SETTINGS = {"TimeZone": "UTC", "extra_float_digits": "1"}


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableCheck:
    """How one table is compared: its key, and the columns that are not part of its state."""

    name: str
    key: tuple[str, ...] = ()  # empty: the primary key from the catalog (all columns when there is none)
    exclude: tuple[str, ...] = ()
    # column -> SQL expression over the row used instead of the column (e.g. a jsonb minus a wall-clock key)
    expressions: Mapping[str, str] = field(default_factory=dict)
    # a column under which differing rows are reported (e.g. flow_id)
    group: str | None = None
    # compared only where the live schema has it (a table a later migration adds)
    optional: bool = False


@dataclass(frozen=True)
class TableDigest:
    table: str
    rows: int
    digest: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


async def columns_of(conn: asyncpg.Connection, schema: str, table: str) -> tuple[str, ...]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        schema, table)
    return tuple(r["attname"] for r in rows)


async def primary_key_of(conn: asyncpg.Connection, schema: str, table: str) -> tuple[str, ...]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
        schema, table)
    return tuple(r["attname"] for r in rows)


async def tables_of(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname", schema)
    return [r["relname"] for r in rows]


async def resolve(conn: asyncpg.Connection, schema: str, check: TableCheck) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, key) of a check against the table as it exists in ``schema``."""
    columns = await columns_of(conn, schema, check.name)
    if not columns:
        raise LookupError(f"table {schema}.{check.name} does not exist")
    key = check.key or await primary_key_of(conn, schema, check.name) or columns
    return tuple(c for c in columns if c not in check.exclude), key


def _row_sql(check: TableCheck, columns: tuple[str, ...]) -> str:
    parts = [check.expressions.get(c, ident(c)) for c in columns]
    return f"md5(ROW({', '.join(parts)})::text)"


async def table_digest(conn: asyncpg.Connection, schema: str, check: TableCheck,
                       columns: tuple[str, ...] | None = None, key: tuple[str, ...] | None = None) -> TableDigest:
    if columns is None or key is None:
        columns, key = await resolve(conn, schema, check)
    keys = ", ".join(f"_k{i}" for i in range(len(key)))
    inner_keys = ", ".join(f"{ident(k)}::text AS _k{i}" for i, k in enumerate(key))
    row = await conn.fetchrow(
        f"SELECT count(*) AS n, md5(coalesce(string_agg(t._h, '' ORDER BY {keys}), '')) AS d"
        f" FROM (SELECT {inner_keys}, {_row_sql(check, columns)} AS _h FROM {ident(schema)}.{ident(check.name)}) t")
    return TableDigest(check.name, row["n"], row["d"], columns, key)


async def row_hashes(conn: asyncpg.Connection, schema: str, check: TableCheck, columns: tuple[str, ...],
                     key: tuple[str, ...]) -> dict[tuple[str, ...], tuple[str | None, str]]:
    """{key (as text): (group value, row hash)} of every row: to name what differs."""
    group = f"{ident(check.group)}::text" if check.group else "NULL::text"
    key_sql = ", ".join(f"{ident(k)}::text" for k in key)
    rows = await conn.fetch(
        f"SELECT ARRAY[{key_sql}] AS k, {group} AS g, {_row_sql(check, columns)} AS h"
        f" FROM {ident(schema)}.{ident(check.name)}")
    return {tuple(r["k"]): (r["g"], r["h"]) for r in rows}


@dataclass
class TableComparison:
    table: str
    live: TableDigest
    rebuilt: TableDigest
    differing_keys: list[tuple[str, ...]] = field(default_factory=list)
    differing_groups: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.live.digest == self.rebuilt.digest and self.live.rows == self.rebuilt.rows

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "equal": self.equal, "rows_live": self.live.rows,
                "rows_rebuilt": self.rebuilt.rows, "digest_live": self.live.digest,
                "digest_rebuilt": self.rebuilt.digest, "columns": list(self.live.columns),
                "key": list(self.live.key), "differing_keys": [list(k) for k in self.differing_keys[:50]],
                "differing_count": len(self.differing_keys), "differing_groups": self.differing_groups}


async def compare(live_conn: asyncpg.Connection, live_schema: str, rebuilt_conn: asyncpg.Connection,
                  rebuilt_schema: str, checks: tuple[TableCheck, ...]) -> list[TableComparison]:
    """Compare the same tables in two schemas (each read through its own connection and snapshot)."""
    out: list[TableComparison] = []
    for check in checks:
        if check.optional and not await columns_of(live_conn, live_schema, check.name):
            continue
        columns, key = await resolve(live_conn, live_schema, check)
        rebuilt_columns = set(await columns_of(rebuilt_conn, rebuilt_schema, check.name))
        missing = [c for c in columns if c not in rebuilt_columns]
        if missing:
            raise LookupError(f"{rebuilt_schema}.{check.name} lacks columns {missing}: run its migrations")
        live = await table_digest(live_conn, live_schema, check, columns, key)
        rebuilt = await table_digest(rebuilt_conn, rebuilt_schema, check, columns, key)
        comparison = TableComparison(check.name, live, rebuilt)
        if not comparison.equal:
            a = await row_hashes(live_conn, live_schema, check, columns, key)
            b = await row_hashes(rebuilt_conn, rebuilt_schema, check, columns, key)
            differing = sorted(k for k in a.keys() | b.keys() if a.get(k, (None, None))[1] != b.get(k, (None, None))[1])
            comparison.differing_keys = differing
            if check.group:
                comparison.differing_groups = sorted({g for k in differing
                                                      for g in (a.get(k, (None,))[0], b.get(k, (None,))[0]) if g})
        out.append(comparison)
    return out


async def schema_digests(conn: asyncpg.Connection, schema: str, *, skip: tuple[str, ...] = ("consumer_offsets",),
                         exclude: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, TableDigest]:
    """Checksum of every table of a schema (all columns, primary-key order), except ``skip``.

    ``consumer_offsets`` is skipped by default: consuming (even only duplicates) moves it on.
    """
    exclude = exclude or {}
    out = {}
    for table in await tables_of(conn, schema):
        if table in skip:
            continue
        out[table] = await table_digest(conn, schema, TableCheck(table, exclude=exclude.get(table, ())))
    return out
