"""Writes of the validator schema: findings and validation runs."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from .rules import Finding


async def write_findings(conn: asyncpg.Connection, import_id: uuid.UUID, findings: list[Finding]) -> None:
    if not findings:
        return
    await conn.copy_records_to_table(
        "row_issues",
        columns=("import_id", "row_number", "column_name", "rule_id", "severity", "message", "value"),
        records=[(import_id, f.row_number, f.column, f.rule_id, f.severity, f.message, f.value) for f in findings],
    )


async def record_run(conn: asyncpg.Connection, run: dict[str, Any]) -> None:
    cols = list(run)
    await conn.execute(
        f"INSERT INTO validation_runs ({', '.join(cols)}) VALUES"
        f" ({', '.join(f'${i}' for i in range(1, len(cols) + 1))}) ON CONFLICT (import_id) DO NOTHING",
        *run.values(),
    )
