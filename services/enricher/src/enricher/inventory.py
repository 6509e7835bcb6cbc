"""Applying an import's accepted rows to the inventory: a few set-based statements per import.

Each category puts its rows in ``incoming`` (identifiers plus the values it asserts),
identification matches them to assets, each matched or new asset gets this import's
claim, and reconciliation decides the current values again. Ids derive from the tenant
and identifiers, and times come from the triggering event, so applying the same events
always yields the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts import Category
from tributary_runtime.db import parallel_at_any_cost

from . import dependencies, identification, reconciliation, scratch, tenants
from .identification import identifier_columns
from .policy import InventoryPolicy
from .reconciliation import CLASSIFICATION, NAME_FROM, PERFORMANCE, TYPED


@dataclass(frozen=True)
class Apply:
    import_id: uuid.UUID
    client_account_id: uuid.UUID
    engagement_id: uuid.UUID
    at: datetime
    category: Category
    # The import's source system (lower case): what reconciliation ranks.
    source: str
    policy: InventoryPolicy
    # How many accepted rows it has, where known (0: applied as a small import would be).
    rows: int = 0

    @property
    def args(self) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, datetime]:
        return (self.import_id, self.client_account_id, self.engagement_id, self.at)


# The staged cells identification reads (plus ``source`` where the file names its source system).
IDENTIFIER_CELLS = ("external_id", "hostname", "fqdn", "ip_address", "mac_address", "serial_number", "name")

# The enricher stages validated rows with their cells trimmed of spaces, blank ones as NULL
# (``staging.stage_rows``' ``trim_cells``), so that its statements read each cell as the value it
# is. Cleaning them here instead, a subquery per row, was half of filling ``incoming``.
TRIM_CELLS = True


def staged_cells(columns: tuple[str, ...], claims: str, *, parallel: bool = False) -> str:
    """FROM clause ``c``: each staged row's ``row_number``, its cell of each of ``columns`` (NULL when
    absent) and ``claims`` (an expression over ``r`` and ``b``, as ``row_claims``).

    A column's place in its batch is looked up once per batch (OFFSET 0 keeps the planner from
    folding either subquery into its user, which would evaluate the expressions again wherever a
    column is used). Looking the column up in every row was about a seventh of filling ``incoming``.
    ``parallel``: the batches' subquery is folded after all, so that parallel workers can join the
    rows to it (a subquery with OFFSET stays with the leader, and the rows' work with it).
    """
    places = ", ".join(f"array_position(columns, '{col}') AS {col}" for col in columns)
    cells = ", ".join(f"r.cells[b.{col}] AS {col}" for col in columns)
    barrier = "" if parallel else " OFFSET 0"
    return (f"FROM (SELECT r.row_number, {cells}, {claims} AS claims"
            f" FROM staged_rows r JOIN (SELECT batch_seq, columns, {places} FROM staged_batches"
            f" WHERE import_id = $1{barrier}) b USING (batch_seq)"
            f" WHERE r.import_id = $1 OFFSET 0) c")


def row_claims(a: Apply, only: tuple[str, ...] | None = None) -> str:
    """The values a row asserts: its non-blank cells (blank ones too, as null, when empty values
    overwrite); ``only``: of these columns alone.

    One ``jsonb_object`` per row from the batch's column names and the row's cells (a batch's rows
    have as many cells as it has columns: the contract checks it; they are staged trimmed:
    ``TRIM_CELLS``). Aggregating the row's cells one by one (``jsonb_object_agg``) took 0.81 s per
    100,000 rows, cleaning them in a subquery per row 0.48 s, this 0.18 s.
    """
    claims = "jsonb_object(b.columns, r.cells)"
    if not a.policy.empty_overwrites:
        claims = f"jsonb_strip_nulls({claims})"
    if only is not None:
        wanted = "ARRAY[" + ", ".join(f"'{c}'" for c in only) + "]"
        claims = f"({claims} - ARRAY(SELECT c FROM unnest(b.columns) AS c WHERE c <> ALL({wanted})))"
    return claims


# From this many rows ``incoming`` is made anew by CREATE TABLE AS, whose SELECT (reading the staged
# rows and building each row's claims, most of the work) runs on parallel workers beside this
# backend; an INSERT's never does. 1M rows: 7.1-8.6 s filled by INSERT, 5.1-5.9 s so, its primary
# key built after. The planner only chooses workers for it at ``PARALLEL_AT_ANY_COST``. How it
# reads the staged rows it decides from their statistics, which count this import's rows by then
# (``staging.refresh_statistics``): forced to a sequential scan instead, it read every import's
# staged rows that the table keeps.
INCOMING_IN_PARALLEL_FROM = 200_000
_INCOMING_COLUMNS = "(row_number, source, source_key, fqdn, host, ip, mac, serial, name, claims)"


async def _fill_incoming(conn: asyncpg.Connection, a: Apply, claims: str, *, source_column: bool) -> int:
    """Put the import's rows in ``incoming``; returns how many."""
    source = "lower(coalesce(c.source, $2))" if source_column else "$2::text"
    columns = ("source", *IDENTIFIER_CELLS) if source_column else IDENTIFIER_CELLS
    parallel = a.rows >= INCOMING_IN_PARALLEL_FROM
    rows = (f"SELECT c.row_number, {source}, {identifier_columns(lambda col: f'c.{col}', source)}, c.claims"
            f" {staged_cells(columns, claims, parallel=parallel)}")
    if not parallel:
        await scratch.start(conn, "incoming")
        status = await conn.execute(f"INSERT INTO incoming {_INCOMING_COLUMNS} {rows}", a.import_id, a.source)
        return int(status.split()[-1])
    await conn.execute("DROP TABLE IF EXISTS pg_temp.incoming; " + parallel_at_any_cost(True))
    status = await conn.execute(f"CREATE TEMP TABLE incoming {_INCOMING_COLUMNS} AS {rows}", a.import_id, a.source)
    # What the table made by ``scratch.start`` has, so that later imports of this session find it so.
    await conn.execute(parallel_at_any_cost(False)
                       + "ALTER TABLE pg_temp.incoming ADD PRIMARY KEY (row_number),"
                       " ALTER COLUMN source SET NOT NULL, ALTER COLUMN claims SET NOT NULL")
    return int(status.split()[-1])


# From this many rows an import's new identifiers are inserted in the order of their primary key.
# The assets come out of the insert in asset id order, which is random for (kind, value): past
# a few million entries the key's index outgrows the server's shared buffers (128 MB by default)
# and each randomly placed entry costs a page read and write. At 1M rows the sort took the
# statement from 92-105 s to 75-82 s; at 100k, where the index fits, it only costs its own time.
IDENTIFIERS_IN_KEY_ORDER_FROM = 200_000


def _fallback_name(row: str, asset_id: str) -> str:
    """The name an asset created from ``row`` (of ``incoming``) keeps when no value of its names it."""
    named = ", ".join(f"{row}.claims->>'{n}'" for n in NAME_FROM)
    return f"coalesce({named}, {row}.host, {row}.ip, {asset_id}::text)"


async def _create_assets(conn: asyncpg.Connection, a: Apply, outcome: str, order: str = "i.row_number DESC",
                         *, placeholder: bool = False, rows: int = 0) -> int:
    """Create the identified rows' new assets; they go in ``created_assets``. Returns how many.

    A new asset has one claim, this import's (the row ``order`` puts first, as ``_claim``
    chooses it), so it is created with the values, provenance and identifiers deciding would
    give it. Its fallback name comes from its first row. ``rows``: how many the import has.
    """
    in_key_order = rows >= IDENTIFIERS_IN_KEY_ORDER_FROM
    # Source keys ('source_key') come last in key order: after every kind of IDENTIFIER_KINDS.
    new_identifiers = (reconciliation.identifiers_in_key_order("inserted") if in_key_order else
                       f"SELECT k.kind, k.value, a.asset_id FROM inserted a"
                       f" CROSS JOIN LATERAL {reconciliation.IDENTIFIER_VALUES} WHERE k.value IS NOT NULL")
    source_key = reconciliation.source_key("a.source", "$7", "a.external_id")
    if in_key_order:
        source_key = reconciliation.in_key_collation(source_key)
    return await conn.fetchval(
        f"""
        WITH cur AS (
            -- Each asset's claim is its row ``order`` puts first, its fallback name that of its first
            -- row (the same row, for an asset of one row). The window shares the pick's order, though
            -- its minimum is the whole asset's, so that one sort of the rows serves both: sorted with
            -- their values once for each, the rows spilled 750 MB at 1M.
            SELECT c.asset_id, c.vals, c.source,
                   CASE WHEN c.row_number = c.first_row THEN c.own_name
                        ELSE (SELECT {_fallback_name("f", "c.asset_id")} FROM incoming f
                              WHERE f.row_number = c.first_row) END AS name
            FROM (SELECT DISTINCT ON (d.asset_id) d.asset_id, i.row_number, i.claims AS vals,
                         i.source,
                         {_fallback_name("i", "d.asset_id")} AS own_name, min(i.row_number) OVER (
                             PARTITION BY d.asset_id ORDER BY {order}
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first_row
                  FROM identified d JOIN incoming i USING (row_number) WHERE d.outcome = $6
                  ORDER BY d.asset_id, {order}) c
        ), inserted AS (
            INSERT INTO assets (asset_id, client_account_id, engagement_id, name, {", ".join(TYPED)}, attributes,
                                performance, classification, compliance_flags, is_placeholder, provenance,
                                created_by_import, last_import_id, created_at, updated_at)
            SELECT cur.asset_id, $2::uuid, $3::uuid, {reconciliation.decided_values("cur.vals", "cur.name")}, $5,
                   {reconciliation.single_claim_provenance("cur.vals", "$1::uuid", "cur.source", "$4::timestamptz")},
                   $1::uuid, $1::uuid, $4::timestamptz, $4::timestamptz
            FROM cur
            ON CONFLICT (asset_id) DO NOTHING
            RETURNING asset_id, name, hostname, fqdn, ip_address, mac_address, serial_number, external_id, source
        ), kept AS (
            INSERT INTO created_assets SELECT asset_id FROM inserted RETURNING 1
        ), identifiers AS (
            -- What reconciliation.decide would refresh them to (its one claim is the asset's values).
            -- No ON CONFLICT (its speculative insertion cost 40 % more): an asset id inserted just now
            -- has no identifiers, as the only way an asset goes, a revert, takes its identifiers along.
            INSERT INTO asset_identifiers (tenant_no, client_account_id, engagement_id, kind, value, asset_id)
            SELECT {tenants.number("$2::uuid", "$3::uuid")}, $2::uuid, $3::uuid, n.kind, n.value, n.asset_id FROM (
                {new_identifiers}
                UNION ALL
                (SELECT 'source_key', {source_key}, a.asset_id
                 FROM inserted a WHERE a.external_id IS NOT NULL {"ORDER BY 2" if in_key_order else ""})
            ) n(kind, value, asset_id)
        )
        SELECT count(*) FROM kept
        """, *a.args, placeholder, outcome, a.source)


# From this many rows the claims of an import's new assets are inserted without their foreign key's
# per-row check: each names an asset this transaction inserted a statement before, which no other
# transaction can see, let alone delete. At 1M rows the check was half of that insert (13.9 of
# 26.1 s, EXPLAIN ANALYZE). Smaller imports keep it: switching it off discards the session's cached
# plans, which every statement of the next small import would pay for.
CREATED_CLAIMS_UNCHECKED_FROM = 200_000


async def _may_skip_triggers(conn: asyncpg.Connection) -> bool:
    """Whether this role may set ``session_replication_role`` (a superuser, or one granted
    ``SET ON PARAMETER session_replication_role`` from PostgreSQL 15 on)."""
    if conn.get_server_version().major >= 15:
        return bool(await conn.fetchval("SELECT has_parameter_privilege('session_replication_role', 'SET')"))
    return bool(await conn.fetchval("SELECT current_setting('is_superuser') = 'on'"))


@asynccontextmanager
async def _unchecked_references(conn: asyncpg.Connection, rows: int) -> AsyncIterator[None]:
    """Statements inside fire no trigger, foreign key checks included, for an import of ``rows``
    rows from ``CREATED_CLAIMS_UNCHECKED_FROM`` on, where the role may switch them off; otherwise
    nothing changes. Only for writes whose references hold by construction."""
    unchecked = rows >= CREATED_CLAIMS_UNCHECKED_FROM and await _may_skip_triggers(conn)
    if unchecked:
        await conn.execute("SET LOCAL session_replication_role = replica")
    yield
    # Not in a ``finally``: after an error the transaction is aborted and SET LOCAL ends with it.
    if unchecked:
        await conn.execute("SET LOCAL session_replication_role = origin")


async def _claim(conn: asyncpg.Connection, a: Apply, outcomes: tuple[str, ...], order: str = "i.row_number DESC",
                 *, rows: int = 0) -> None:
    """This import's claim on each asset it names (one per asset: the row ``order`` puts first).

    An asset the import created cannot hold a claim of it yet, so its claim is a plain insert
    (for a large import, without its foreign key's check: ``CREATED_CLAIMS_UNCHECKED_FROM``);
    only the assets that existed before need the speculative insertion of ``ON CONFLICT``, which
    costs every row an extra index probe and a lock. Only those go in ``touched``, to be decided
    again: a created asset has its decided values already (a 1M-row import's ids written there
    only to be subtracted again cost a second or two). ``rows``: how many the import has.
    """
    await reconciliation.start_touched(conn)
    pick = f"""
        SELECT DISTINCT ON (d.asset_id) d.asset_id, $1::uuid, $2::text, i.source, $3::timestamptz, i.row_number,
               i.claims"""
    async with _unchecked_references(conn, rows):
        await conn.execute(
            f"""
            INSERT INTO asset_claims (asset_id, import_id, category, source, asserted_at, row_number, claims)
            {pick}
            FROM created_assets n JOIN identified d USING (asset_id) JOIN incoming i USING (row_number)
            WHERE d.outcome = ANY($4::text[])
            ORDER BY d.asset_id, {order}
            """, a.import_id, a.category.value, a.at, list(outcomes))
    await conn.execute(
        f"""
        WITH claimed AS (
            INSERT INTO asset_claims AS c (asset_id, import_id, category, source, asserted_at, row_number, claims)
            {pick}
            FROM identified d JOIN incoming i USING (row_number) JOIN assets t ON t.asset_id = d.asset_id
            WHERE d.outcome = ANY($4::text[])
              AND NOT EXISTS (SELECT 1 FROM created_assets n WHERE n.asset_id = d.asset_id)
            ORDER BY d.asset_id, {order}
            ON CONFLICT (asset_id, import_id) DO UPDATE SET claims = EXCLUDED.claims,
                row_number = EXCLUDED.row_number, source = EXCLUDED.source
            RETURNING asset_id
        )
        INSERT INTO touched SELECT asset_id FROM claimed
        """, a.import_id, a.category.value, a.at, list(outcomes))


# The assets that existed and were claimed (the created ones are not in ``touched``), and how many
# rows each identification outcome had: one round trip for both, one scan of ``identified``.
_CLAIMED_AND_IDENTIFIED = """
SELECT (SELECT count(*) FROM touched) AS existing,
       coalesce(array_agg(g.outcome), '{}') AS outcomes, coalesce(array_agg(g.n), '{}') AS counts
FROM (SELECT outcome, count(*) AS n FROM identified GROUP BY outcome) g
"""


async def _decide(conn: asyncpg.Connection, a: Apply, created: int) -> tuple[dict[str, int], dict[str, int]]:
    """Decide the claimed assets again. Returns the assets' counts, and the rows' by identification outcome."""
    row = await conn.fetchrow(_CLAIMED_AND_IDENTIFIED)
    # ``touched`` holds only assets that existed before (``_claim``): with none there is nothing to
    # decide, and a small import of new hosts spares deciding's two round trips.
    updated = await reconciliation.decide(conn, a.policy, a.import_id, a.at) if row["existing"] else 0
    counts = {"assets_created": created, "assets_updated": updated, "assets_unchanged": row["existing"] - updated}
    return counts, dict(zip(row["outcomes"], row["counts"], strict=True))


# A short host name matched to an asset whose host name is the FQDN it abbreviates says nothing
# new about it: claiming it would replace the FQDN (and rename the asset) with less information.
_KEEP_FQDN = """
UPDATE incoming i SET claims = i.claims - 'hostname'
FROM identified d JOIN assets t USING (asset_id)
WHERE d.row_number = i.row_number AND d.outcome = 'matched'
  AND strpos(i.claims->>'hostname', '.') = 0 AND strpos(t.hostname, '.') > 0
  AND split_part(lower(t.hostname), '.', 1) = lower(i.claims->>'hostname')
"""


async def apply_cmdb(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    rows = await _fill_incoming(conn, a, row_claims(a), source_column=True)
    await identification.identify(conn, a.client_account_id, a.engagement_id, rows)
    await conn.execute(_KEEP_FQDN)
    created = await _create_assets(conn, a, "new", rows=rows)
    await _claim(conn, a, ("new", "matched"), rows=rows)
    counts, tally = await _decide(conn, a, created)
    candidates = await identification.record_candidates(conn, a.import_id, a.client_account_id, a.engagement_id,
                                                        a.category.value)
    resolved = await dependencies.resolve_parked(conn, a)
    return counts | {"unmatched_rows": tally.get("unidentifiable", 0), "duplicate_candidates": candidates,
                     "resolved_edges": resolved}


LATEST_MEASUREMENT = "i.claims->>'collected_at' DESC NULLS LAST, i.row_number DESC"


async def apply_performance(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    """Performance on matched servers; the latest measurement per host wins within the file."""
    identity = ("hostname", "ip_address") if a.policy.create_placeholders else ()
    rows = await _fill_incoming(conn, a, row_claims(a, only=(*PERFORMANCE, *identity)), source_column=False)
    # Only hosts and addresses identify a measurement, never a name or serial column of the file.
    await conn.execute("UPDATE incoming SET source_key = NULL, mac = NULL, serial = NULL, name = NULL")
    await identification.identify(conn, a.client_account_id, a.engagement_id, rows)
    created = placeholders = 0
    outcomes: tuple[str, ...] = ("matched",)
    if a.policy.create_placeholders:
        # Host name and address are read only to describe the placeholders: a measurement of a
        # known asset never renames or re-addresses it.
        await conn.execute("UPDATE incoming SET claims = claims - 'hostname' - 'ip_address'"
                           " WHERE row_number NOT IN (SELECT row_number FROM identified WHERE outcome = 'new')")
        await conn.execute("UPDATE incoming SET claims = claims || '{\"asset_type\": \"server\"}'::jsonb"
                           " WHERE row_number IN (SELECT row_number FROM identified WHERE outcome = 'new')")
        created = placeholders = await _create_assets(conn, a, "new", LATEST_MEASUREMENT, placeholder=True,
                                                      rows=rows)
        outcomes = ("matched", "new")
    await _claim(conn, a, outcomes, order=LATEST_MEASUREMENT, rows=rows)
    counts, tally = await _decide(conn, a, created)
    unmatched = tally.get("unidentifiable", 0) + (0 if a.policy.create_placeholders else tally.get("new", 0))
    candidates = await identification.record_candidates(conn, a.import_id, a.client_account_id, a.engagement_id,
                                                        a.category.value)
    return counts | {"unmatched_rows": unmatched, "placeholders_created": placeholders,
                     "duplicate_candidates": candidates}


# Labels of multi-valued cells come out in vocabulary order, the rest in order of appearance.
LABEL_ORDER = ("PII", "PCI", "PHI", "confidential", "internal", "public",
               "GDPR", "HIPAA", "PCI-DSS", "SOX", "CCPA", "GLBA", "FERPA", "LGPD", "PIPEDA")


async def apply_classification(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    """Classification and compliance flags on matched assets: every row about an asset adds its labels."""
    rows = await _fill_incoming(conn, a, row_claims(a, only=CLASSIFICATION), source_column=False)
    await conn.execute("UPDATE incoming SET source_key = NULL, mac = NULL, serial = NULL")
    await identification.identify(conn, a.client_account_id, a.engagement_id, rows)
    order = "ARRAY[" + ", ".join(f"'{label}'" for label in LABEL_ORDER) + "]"
    # One claim per asset: the union of its rows' labels (first row carries it).
    await conn.execute(
        f"""
        WITH rows AS (
            SELECT d.asset_id, i.row_number, i.claims FROM identified d JOIN incoming i USING (row_number)
            WHERE d.outcome = 'matched'
        ), labels AS (
            SELECT asset_id, k.key, x.label, min(row_number) AS first_row
            FROM rows CROSS JOIN LATERAL (VALUES ('classification'), ('regulation'), ('data_store'),
                                                 ('data_owner')) AS k(key)
            CROSS JOIN LATERAL unnest(string_to_array(rows.claims->>k.key, ',')) AS x(label)
            GROUP BY 1, 2, 3
        ), merged AS (
            SELECT asset_id, jsonb_object_agg(key, labels) AS claims FROM (
                SELECT asset_id, key, string_agg(label, ',' ORDER BY array_position({order}, label), first_row)
                       AS labels
                FROM labels GROUP BY asset_id, key) s
            GROUP BY asset_id
        ), totals AS (
            SELECT asset_id, min(row_number) AS first_row,
                   sum((claims->>'record_count')::bigint) AS record_count
            FROM rows GROUP BY asset_id
        )
        UPDATE incoming i SET claims = coalesce(m.claims, '{{}}'::jsonb)
            || jsonb_strip_nulls(jsonb_build_object('record_count', t.record_count::text))
        FROM totals t LEFT JOIN merged m USING (asset_id)
        WHERE i.row_number = t.first_row
        """)
    await _claim(conn, a, ("matched",), order="i.row_number")
    counts, tally = await _decide(conn, a, 0)
    candidates = await identification.record_candidates(conn, a.import_id, a.client_account_id, a.engagement_id,
                                                        a.category.value)
    return counts | {"unmatched_rows": tally.get("new", 0) + tally.get("unidentifiable", 0),
                     "duplicate_candidates": candidates}


async def apply_import(conn: asyncpg.Connection, a: Apply) -> dict[str, int]:
    await scratch.tidy(conn)
    await tenants.ensure(conn, a.client_account_id, a.engagement_id)
    await reconciliation.start_created(conn)
    if a.category is Category.CMDB_EXPORT:
        return await apply_cmdb(conn, a)
    if a.category is Category.APP_DISCOVERY:
        return await dependencies.apply_dependencies(conn, a)
    if a.category is Category.INFRASTRUCTURE:
        return await apply_performance(conn, a)
    return await apply_classification(conn, a)


async def record_run(conn: asyncpg.Connection, a: Apply, counts: dict[str, object]) -> None:
    await conn.execute(
        "INSERT INTO enrichment_runs (import_id, client_account_id, engagement_id, category, counts, applied_at,"
        " source) VALUES ($1, $2, $3, $5, $6, $4, $7) ON CONFLICT DO NOTHING",
        *a.args, a.category.value, counts, a.source,
    )
