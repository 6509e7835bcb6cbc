"""Reads and writes of the flow tables (the flow_state schema)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import asyncpg

from contracts import Phase
from tributary_runtime.db import dumps  # the JSON the pool sends for jsonb, as text: the same jsonb either way

from .projection import Flow

MASTER = ("flow_id", "client_account_id", "engagement_id", "user_id", "flow_name", "status", "current_phase",
          "progress_percentage", "configuration", "import_category", "created_at", "updated_at", "completed_at",
          "version")
CHILD = ("id", "flow_id", "master_flow_id", "client_account_id", "engagement_id", "user_id", "flow_name", "status",
         "current_phase", "progress_percentage", "phase_state", "agent_state", "data_import_id", "import_category",
         "data_import_completed", "data_validation_completed", "field_mapping_completed",
         "asset_enrichment_completed", "error_message", "created_at", "updated_at", "completed_at")
TIMELINE = ("flow_id", "seq", "event_id", "event_type", "phase", "producer", "occurred_at", "detail")
STEP = ("flow_id", "step_name", "step_order", "status", "description", "records_processed", "output",
        "error_message", "started_at", "completed_at")


# Column types, for the set-based writes below (one array parameter per column, unnest()ed).
TYPES = {"flow_id": "uuid", "client_account_id": "uuid", "engagement_id": "uuid", "user_id": "text",
         "flow_name": "text", "status": "text", "current_phase": "text", "progress_percentage": "float8",
         "configuration": "jsonb", "import_category": "text", "created_at": "timestamptz",
         "updated_at": "timestamptz", "completed_at": "timestamptz", "version": "int4", "id": "uuid",
         "master_flow_id": "uuid", "phase_state": "jsonb", "agent_state": "jsonb", "data_import_id": "uuid",
         "data_import_completed": "bool", "data_validation_completed": "bool", "field_mapping_completed": "bool",
         "asset_enrichment_completed": "bool", "error_message": "text", "seq": "int4", "event_id": "uuid",
         "event_type": "text", "phase": "text", "producer": "text", "occurred_at": "timestamptz",
         "detail": "jsonb", "step_name": "text", "step_order": "int4", "description": "text",
         "records_processed": "int4", "output": "jsonb", "started_at": "timestamptz"}


def _insert(table: str, columns: tuple[str, ...], key: str | None = None, first: int = 1) -> str:
    """One statement for any number of rows: each column is an array parameter (numbered from
    ``first``), unnest()ed into rows.

    jsonb columns travel as text[] (JSON the connection's encoder wrote) and are cast per row: an
    array of jsonb would bypass the connection's jsonb codec.
    """
    params = ", ".join(f"${i}::{'text' if TYPES[c] == 'jsonb' else TYPES[c]}[]"
                       for i, c in enumerate(columns, start=first))
    select = ", ".join(f"{c}::jsonb" if TYPES[c] == "jsonb" else c for c in columns)
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}"
           f" FROM unnest({params}) AS r({', '.join(columns)})")
    if key is None:
        return sql
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
    return f"{sql} ON CONFLICT ({key}) DO UPDATE SET {updates}"


# Each flow table's key: what its upsert conflicts on.
KEYS = {"master_flows": "flow_id", "child_flows": "id", "processing_steps": "flow_id, step_name"}
UPSERT_MASTER = _insert("master_flows", MASTER, KEYS["master_flows"])
UPSERT_CHILD = _insert("child_flows", CHILD, KEYS["child_flows"])
UPSERT_STEP = _insert("processing_steps", STEP, KEYS["processing_steps"])
_JSON = {name: [i for i, c in enumerate(cols) if TYPES[c] == "jsonb"]
         for name, cols in (("master", MASTER), ("child", CHILD), ("step", STEP))}

# Each flow table: its name, columns, upsert and jsonb columns; masters first (the others refer to them).
FLOW_TABLES = (("master_flows", MASTER, UPSERT_MASTER, _JSON["master"]),
               ("child_flows", CHILD, UPSERT_CHILD, _JSON["child"]),
               ("processing_steps", STEP, UPSERT_STEP, _JSON["step"]))


def _one_statement() -> tuple[str, list[int]]:
    """The writes of ``save`` as one statement: each flow table's new rows inserted and its loaded
    rows upserted, then the timeline appended; and which parameters are jsonb columns.

    Data-modifying CTEs all run, to completion, in the statement; the foreign keys are checked at
    its end, when the masters are in."""
    parts, json_params, first = [], [], 1
    for table, columns, _, json_columns in FLOW_TABLES:
        for name, upsert_key in (("new", None), ("loaded", KEYS[table])):
            parts.append(f"{table}_{name} AS ({_insert(table, columns, upsert_key, first)})")
            json_params += [first - 1 + i for i in json_columns]
            first += len(columns)
    json_params += [first - 1 + TIMELINE.index("detail")]
    return "WITH " + ",\n".join(parts) + "\n" + _insert("flow_timeline", TIMELINE, first=first), json_params


SAVE_IN_ONE, _SAVE_JSON = _one_statement()
# Up to this many flows a batch is written by ``SAVE_IN_ONE``: one round trip instead of one per
# table and COPY (a COPY is two; a 100-row import's first event wrote its new flow in eight, each
# later event in five). Past it (a rebuild folds thousands of flows per transaction) COPY's
# cheaper rows win.
SAVE_IN_ONE_UP_TO = 50


async def _write(conn: asyncpg.Connection, sql: str, rows: list[tuple[Any, ...]], json_columns: list[int]) -> None:
    """Rows (tuples) as one statement: transposed into columns, jsonb columns serialised as the pool does."""
    if not rows:
        return
    await _write_columns(conn, sql, [(len(rows[0]), rows)], json_columns)


async def _write_columns(conn: asyncpg.Connection, sql: str, tables: list[tuple[int, list[tuple[Any, ...]]]],
                         json_params: list[int]) -> None:
    """Run ``sql``, whose parameters are the columns of each (width, rows) of ``tables``: its rows
    transposed, or as many empty arrays as it has columns; jsonb columns serialised."""
    params: list[list[Any]] = []
    for width, rows in tables:
        params += [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    for i in json_params:
        params[i] = [dumps(v) for v in params[i]]
    await conn.execute(sql, *params)


async def _copy(conn: asyncpg.Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Rows that are new for certain, by COPY: cheaper than a statement for client and server alike
    (jsonb columns go in the pool's binary form)."""
    if rows:
        await conn.copy_records_to_table(table, columns=columns, records=rows)


# Each flow with its steps, in one round trip: the steps' columns as arrays (aggregated in one pass,
# so their elements line up), typed as the table has them. A statement of their own cost every
# live transaction a round trip.
_STEP_FIELDS = STEP[1:]
_LOAD = (
    "SELECT m.flow_id, c.id AS child_flow_id, c.data_import_id AS import_id, m.client_account_id,"
    " m.engagement_id, m.user_id, m.flow_name, m.import_category AS category, m.status,"
    " c.status AS child_status, m.current_phase, m.progress_percentage, c.phase_state, c.agent_state,"
    " m.configuration, c.data_import_completed, c.data_validation_completed, c.field_mapping_completed,"
    " c.asset_enrichment_completed, c.error_message, m.created_at, m.updated_at, m.completed_at, m.version, "
    + ", ".join(f"s.{f}s" for f in _STEP_FIELDS)
    + " FROM master_flows m JOIN child_flows c ON c.master_flow_id = m.flow_id"
    " LEFT JOIN LATERAL (SELECT " + ", ".join(f"array_agg(p.{f}) AS {f}s" for f in _STEP_FIELDS)
    + " FROM processing_steps p WHERE p.flow_id = m.flow_id) s ON true"
    " WHERE m.flow_id = ANY($1)"
)


def _steps(row: asyncpg.Record) -> dict[str, dict[str, Any]]:
    columns = [row[f"{f}s"] for f in _STEP_FIELDS]
    if columns[0] is None:  # no steps
        return {}
    steps: dict[str, dict[str, Any]] = {}
    for values in zip(*columns, strict=True):
        step = dict(zip(_STEP_FIELDS, values, strict=True))
        for key in ("started_at", "completed_at"):
            step[key] = step[key].isoformat() if step[key] else None
        steps[step["step_name"]] = step
    return steps


async def load(conn: asyncpg.Connection, flow_ids: list[uuid.UUID]) -> dict[uuid.UUID, Flow]:
    flows: dict[uuid.UUID, Flow] = {}
    for r in await conn.fetch(_LOAD, flow_ids):
        fields = {k: r[k] for k in list(r.keys())[:-len(_STEP_FIELDS)]}
        flows[r["flow_id"]] = Flow(**(fields | {"current_phase": Phase(r["current_phase"]), "steps": _steps(r)}))
    return flows


async def save(conn: asyncpg.Connection, flows: list[Flow], existing: Collection[uuid.UUID]) -> None:
    """Write flows and append their timeline entries.

    A flow in ``existing`` (loaded in this transaction) is upserted; any other has no row yet and
    is inserted: up to ``SAVE_IN_ONE_UP_TO`` flows (a live consumer's batch) all in one statement,
    more (a rebuild's, which creates nearly every flow it writes) by COPY, the cheapest way in
    for client and server alike per row. A flow's ``timeline`` holds only the entries folded since
    it was loaded (``load`` does not read the timeline back), so every entry is new; one written
    twice would break the table's primary key, not pass silently.
    At most one statement per table however many flows and events the batch holds: a rebuild
    folds thousands of events per transaction, and a statement per row was most of its time.
    Each flow appears once in ``flows`` (ON CONFLICT cannot update a row twice in one statement).
    """
    created = [f for f in flows if f.flow_id not in existing]
    updated = [f for f in flows if f.flow_id in existing]
    if len(flows) <= SAVE_IN_ONE_UP_TO:
        tables: list[tuple[int, list[tuple[Any, ...]]]] = []
        for (_, columns, _, _), new, loaded in zip(FLOW_TABLES, _rows(created), _rows(updated), strict=True):
            tables += [(len(columns), new), (len(columns), loaded)]
        tables.append((len(TIMELINE), _timeline_rows(flows)))
        await _write_columns(conn, SAVE_IN_ONE, tables, _SAVE_JSON)
        return
    for (table, columns, _, _), rows in zip(FLOW_TABLES, _rows(created), strict=True):
        await _copy(conn, table, columns, rows)
    for (_, _, upsert, json_columns), rows in zip(FLOW_TABLES, _rows(updated), strict=True):
        await _write(conn, upsert, rows, json_columns)
    await _copy(conn, "flow_timeline", TIMELINE, _timeline_rows(flows))


def _timeline_rows(flows: list[Flow]) -> list[tuple[Any, ...]]:
    """The timeline rows of ``flows``: appended only, a row per event."""
    return [(f.flow_id, e["seq"], e["event_id"], e["event_type"], e["phase"], e["producer"], e["occurred_at"],
             e["detail"]) for f in flows for e in f.timeline]


def _rows(flows: list[Flow]) -> tuple[list[tuple[Any, ...]], ...]:
    """The rows of ``flows`` in each of FLOW_TABLES, in its order."""
    return ([_master_row(f) for f in flows], [_child_row(f) for f in flows],
            [_step_row(f.flow_id, step) for f in flows for step in f.steps.values()])


def _step_row(flow_id: uuid.UUID, step: dict[str, Any]) -> tuple[Any, ...]:
    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return (flow_id, step["step_name"], step["step_order"], step["status"], step["description"],
            step["records_processed"], step["output"], step["error_message"], when(step["started_at"]),
            when(step["completed_at"]))


def _master_row(f: Flow) -> tuple[Any, ...]:
    return (f.flow_id, f.client_account_id, f.engagement_id, f.user_id, f.flow_name, f.status,
            f.current_phase.value, f.progress_percentage, f.configuration, f.category, f.created_at, f.updated_at,
            f.completed_at, f.version)


def _child_row(f: Flow) -> tuple[Any, ...]:
    return (f.child_flow_id, f.flow_id, f.flow_id, f.client_account_id, f.engagement_id, f.user_id, f.flow_name,
            f.child_status, f.current_phase.value, f.progress_percentage, f.phase_state, f.agent_state, f.import_id,
            f.category, f.data_import_completed, f.data_validation_completed, f.field_mapping_completed,
            f.asset_enrichment_completed, f.error_message, f.created_at, f.updated_at, f.completed_at)


def _tenant_filter(client_account_id: uuid.UUID, engagement_id: uuid.UUID) -> tuple[str, list[Any]]:
    return "m.client_account_id = $1 AND m.engagement_id = $2", [client_account_id, engagement_id]


async def get_flow(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID,
                   flow_id: uuid.UUID) -> dict[str, Any] | None:
    where, args = _tenant_filter(client_account_id, engagement_id)
    master = await conn.fetchrow(
        f"SELECT m.* FROM master_flows m WHERE {where} AND m.flow_id = $3", *args, flow_id)
    if master is None:
        return None
    child = await conn.fetchrow("SELECT * FROM child_flows WHERE master_flow_id = $1", flow_id)
    timeline = await conn.fetch(
        f"SELECT {', '.join(TIMELINE[1:])} FROM flow_timeline WHERE flow_id = $1 ORDER BY seq", flow_id)
    steps = await conn.fetch(
        f"SELECT {', '.join(STEP[1:])} FROM processing_steps WHERE flow_id = $1 ORDER BY step_order", flow_id)
    return {"master": dict(master), "child": dict(child) if child else None,
            "steps": [dict(s) for s in steps], "timeline": [dict(t) for t in timeline]}


async def list_flows(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID, *,
                     status: str | None, category: str | None, limit: int, offset: int
                     ) -> tuple[int, list[dict[str, Any]]]:
    where, args = _tenant_filter(client_account_id, engagement_id)
    if status:
        args.append(status)
        where += f" AND m.status = ${len(args)}"
    if category:
        args.append(category)
        where += f" AND m.import_category = ${len(args)}"
    total = await conn.fetchval(f"SELECT count(*) FROM master_flows m WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT m.flow_id, c.data_import_id AS import_id, m.flow_type, m.flow_name, m.import_category AS category,"
        f" m.status, c.status AS child_status, m.current_phase, m.progress_percentage, c.error_message,"
        f" m.created_at, m.updated_at, m.completed_at"
        f" FROM master_flows m JOIN child_flows c ON c.master_flow_id = m.flow_id WHERE {where}"
        f" ORDER BY m.created_at DESC, m.flow_id LIMIT {int(limit)} OFFSET {int(offset)}",
        *args,
    )
    return total, [dict(r) for r in rows]
