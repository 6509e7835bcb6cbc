"""``/v1/flows``: one flow with its child and timeline, or a filtered page of flows."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from contracts import Category

from .. import flows
from tributary_runtime.deps import ContextDep, DbDep

router = APIRouter(prefix="/v1/flows", tags=["flows"])


@router.get("/{flow_id}")
async def get_flow(flow_id: uuid.UUID, ctx: ContextDep, db: DbDep) -> dict[str, Any]:
    # One snapshot for the master, child, timeline and steps: read separately, a projection
    # committing in between showed a failure in the timeline and the flow still running.
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        flow = await flows.get_flow(conn, ctx.tenant.client_account_id, ctx.tenant.engagement_id, flow_id)
    if flow is None:
        raise HTTPException(404, detail="flow not found")
    return flow


@router.get("")
async def list_flows(
    ctx: ContextDep,
    db: DbDep,
    status: Literal["running", "paused", "completed", "failed"] | None = None,
    category: Category | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    async with db.connection() as conn:
        total, items = await flows.list_flows(
            conn, ctx.tenant.client_account_id, ctx.tenant.engagement_id, status=status,
            category=category.value if category else None, limit=page_size, offset=(page - 1) * page_size)
    return {"items": items, "page": page, "page_size": page_size, "total": total}
