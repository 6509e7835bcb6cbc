"""``/v1/imports/{id}/…``: an import's validation result, its findings, and the downloads to fix it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from contracts import Tenant
from tributary_runtime.db import Database
from tributary_runtime.deps import ContextDep, DbDep

from .. import findings as store
from ..csv_export import csv_stream

router = APIRouter(prefix="/v1/imports", tags=["validation"])

Severity = Literal["error", "warning"]
ERRORS_COLUMN = "tributary_errors"
ISSUE_CSV_HEADER = ["row_number", "column", "rule_id", "agent", "severity", "message", "value"]


class Issue(BaseModel):
    row_number: int | None
    column: str | None
    rule_id: str
    agent: str
    severity: Severity
    message: str
    value: str | None


class IssuePage(BaseModel):
    import_id: uuid.UUID
    items: list[Issue]
    page: int
    page_size: int
    total: int


async def _require_import(db: Database, tenant: Tenant, import_id: uuid.UUID) -> list[str]:
    """The uploaded header; 404 when the import is unknown or another tenant's."""
    async with db.connection() as conn:
        header = await store.staged_header(conn, tenant, import_id)
    if header is None:
        raise HTTPException(404, detail="import not found")
    return header


@router.get("/{import_id}/validation")
async def get_validation(import_id: uuid.UUID, ctx: ContextDep, db: DbDep) -> dict[str, Any]:
    """Verdict, counts, the field mapping used and each agent's result."""
    await _require_import(db, ctx.tenant, import_id)
    async with db.connection() as conn:
        run = await store.get_run(conn, ctx.tenant, import_id)
    if run is None:
        return {"import_id": str(import_id), "verdict": None, "status": "validating"}
    return run | {"status": "validated" if run["verdict"] != "failed" else "failed"}


@router.get("/{import_id}/issues", response_model=IssuePage)
async def list_issues(
    import_id: uuid.UUID, ctx: ContextDep, db: DbDep,
    severity: Severity | None = None,
    rule: Annotated[str | None, Query(description="a rule id, e.g. invalid_ip_address")] = None,
    column: Annotated[str | None, Query(description="a column as named in the uploaded file")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> IssuePage:
    await _require_import(db, ctx.tenant, import_id)
    async with db.connection() as conn:
        total, rows = await store.page_issues(conn, import_id, severity=severity, rule_id=rule, column=column,
                                              limit=page_size, offset=(page - 1) * page_size)
    items = [Issue(column=r.pop("column_name"), **r) for r in rows]
    return IssuePage(import_id=import_id, items=items, page=page, page_size=page_size, total=total)


def _download(name: str, body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{import_id}/issues.csv")
async def download_issues(
    import_id: uuid.UUID, ctx: ContextDep, db: DbDep, severity: Severity | None = None,
    rule: str | None = None, column: str | None = None,
) -> StreamingResponse:
    await _require_import(db, ctx.tenant, import_id)

    async def rows() -> AsyncIterator[list[Any]]:
        async with db.connection() as conn:
            async for r in store.iter_issues(conn, import_id, severity=severity, rule_id=rule, column=column):
                yield [r["row_number"], r["column_name"], r["rule_id"], r["agent"], r["severity"], r["message"],
                       r["value"]]

    return _download(f"{import_id}-issues.csv", csv_stream(ISSUE_CSV_HEADER, rows()))


@router.get("/{import_id}/failed-rows.csv")
async def download_failed_rows(import_id: uuid.UUID, ctx: ContextDep, db: DbDep) -> StreamingResponse:
    """The rows with errors exactly as uploaded, plus a column saying what to fix; ready to re-upload."""
    header = await _require_import(db, ctx.tenant, import_id)

    async def rows() -> AsyncIterator[list[Any]]:
        async with db.connection() as conn:
            async for r in store.iter_failed_rows(conn, import_id):
                cells = dict(zip(r["columns"], r["cells"], strict=True))
                yield [cells.get(c) for c in header] + [f"row {r['row_number']}: {r['errors']}"]

    return _download(f"{import_id}-failed-rows.csv", csv_stream([*header, ERRORS_COLUMN], rows()))
