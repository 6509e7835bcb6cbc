"""The validator's findings store: row issues, validation runs, and the reads behind the issues API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import asyncpg

from contracts import Tenant

from .rules import Finding

ISSUE_COLUMNS = ("row_number", "column_name", "rule_id", "agent", "severity", "message", "value")
# Findings come back in the order a person fixes a file: import-level first, then by row.
ISSUE_ORDER = "row_number NULLS FIRST, column_name NULLS FIRST, rule_id"


async def write_findings(conn: asyncpg.Connection, import_id: uuid.UUID, findings: Iterable[Finding],
                         agent_of: Mapping[str, str]) -> None:
    records = [(import_id, f.row_number, f.column, f.rule_id, agent_of.get(f.rule_id, "schema"), f.severity,
                f.message, f.value) for f in findings]
    if records:
        await conn.copy_records_to_table("row_issues", columns=("import_id", *ISSUE_COLUMNS), records=records)


async def clear_findings(conn: asyncpg.Connection, import_id: uuid.UUID) -> None:
    """Forget an earlier attempt's findings (a retried validation starts clean)."""
    await conn.execute("DELETE FROM row_issues WHERE import_id = $1", import_id)


# ``by_rule`` as json (not jsonb): each entry's keys stay in this order.
_COUNTS = """
SELECT count(DISTINCT row_number) FILTER (WHERE severity = 'error') AS invalid_rows,
       count(*) FILTER (WHERE severity = 'error') AS errors,
       count(*) FILTER (WHERE severity = 'warning') AS warnings,
       (SELECT coalesce(json_agg(json_build_object('rule_id', rule_id, 'agent', agent, 'severity', severity, 'n', n)
                                 ORDER BY rule_id, severity), '[]')
        FROM (SELECT rule_id, agent, severity, count(*) AS n FROM row_issues WHERE import_id = $1
              GROUP BY rule_id, agent, severity) g) AS by_rule
FROM row_issues WHERE import_id = $1
"""


async def counts(conn: asyncpg.Connection, import_id: uuid.UUID) -> dict[str, Any]:
    """Invalid rows and findings per rule and severity, straight from the store (one round trip)."""
    row = await conn.fetchrow(_COUNTS, import_id)
    return {"invalid_rows": row["invalid_rows"], "errors": row["errors"], "warnings": row["warnings"],
            "by_rule": row["by_rule"]}


async def record_run(conn: asyncpg.Connection, run: dict[str, Any]) -> None:
    cols = list(run)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "import_id")
    await conn.execute(
        f"INSERT INTO validation_runs ({', '.join(cols)}) VALUES"
        f" ({', '.join(f'${i}' for i in range(1, len(cols) + 1))})"
        f" ON CONFLICT (import_id) DO UPDATE SET {updates}, finished_at = now()",
        *run.values(),
    )


async def get_run(conn: asyncpg.Connection, tenant: Tenant, import_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM validation_runs WHERE import_id = $1 AND client_account_id = $2 AND engagement_id = $3",
        import_id, tenant.client_account_id, tenant.engagement_id)
    return dict(row) if row else None


async def staged_header(conn: asyncpg.Connection, tenant: Tenant, import_id: uuid.UUID) -> list[str] | None:
    """The uploaded header of one of the tenant's imports; None when the import is not theirs (or unknown)."""
    marker = await conn.fetchval(
        "SELECT marker FROM staged_imports WHERE import_id = $1 AND client_account_id = $2 AND engagement_id = $3",
        import_id, tenant.client_account_id, tenant.engagement_id)
    return None if marker is None else list(marker["payload"].get("columns") or [])


def _issue_filter(severity: str | None, rule_id: str | None, column: str | None) -> tuple[str, list[Any]]:
    where, args = "import_id = $1", []
    for name, value in (("severity", severity), ("rule_id", rule_id), ("column_name", column)):
        if value is not None:
            args.append(value)
            where += f" AND {name} = ${len(args) + 1}"
    return where, args


async def page_issues(conn: asyncpg.Connection, import_id: uuid.UUID, *, severity: str | None, rule_id: str | None,
                      column: str | None, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    where, args = _issue_filter(severity, rule_id, column)
    total = await conn.fetchval(f"SELECT count(*) FROM row_issues WHERE {where}", import_id, *args)
    rows = await conn.fetch(
        f"SELECT {', '.join(ISSUE_COLUMNS)} FROM row_issues WHERE {where} ORDER BY {ISSUE_ORDER}"
        f" LIMIT {int(limit)} OFFSET {int(offset)}", import_id, *args)
    return total, [dict(r) for r in rows]


async def iter_issues(conn: asyncpg.Connection, import_id: uuid.UUID, *, severity: str | None = None,
                      rule_id: str | None = None, column: str | None = None) -> AsyncIterator[asyncpg.Record]:
    where, args = _issue_filter(severity, rule_id, column)
    async with conn.transaction():
        async for row in conn.cursor(
                f"SELECT {', '.join(ISSUE_COLUMNS)} FROM row_issues WHERE {where} ORDER BY {ISSUE_ORDER}",
                import_id, *args, prefetch=2000):
            yield row


# The staged rows ``iter_failed_rows`` returns: they outlive the retention of the other staged rows
# (tributary_runtime.retention), so the download works for as long as the findings exist.
FAILED_ROW = ("EXISTS (SELECT 1 FROM row_issues e WHERE e.import_id = r.import_id AND e.row_number = r.row_number"
              " AND e.severity = 'error')")


async def iter_failed_rows(conn: asyncpg.Connection, import_id: uuid.UUID) -> AsyncIterator[asyncpg.Record]:
    """Every row with at least one error, as uploaded, with its error messages in column order."""
    async with conn.transaction():
        async for row in conn.cursor(
            """
            SELECT r.row_number, r.cells, b.columns, e.errors
            FROM (SELECT row_number, string_agg(coalesce(column_name || ': ', '') || message, '; '
                                                ORDER BY column_name NULLS FIRST, rule_id) AS errors
                  FROM row_issues WHERE import_id = $1 AND severity = 'error' AND row_number IS NOT NULL
                  GROUP BY row_number) e
            JOIN staged_rows r ON r.import_id = $1 AND r.row_number = e.row_number
            JOIN staged_batches b ON b.import_id = $1 AND b.batch_seq = r.batch_seq
            ORDER BY r.row_number
            """, import_id, prefetch=2000):
            yield row
