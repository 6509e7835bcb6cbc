"""``POST /v1/imports/{id}/revert``: record that an import's contributions are to be undone."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import Envelope, ImportReverted, topics
from tributary_runtime.deps import ContextDep, DbDep, ProducerDep

router = APIRouter(prefix="/v1/imports", tags=["inventory"])


class RevertRequest(BaseModel):
    reason: str | None = None


@router.post("/{import_id}/revert", status_code=202)
async def revert_import(import_id: uuid.UUID, ctx: ContextDep, db: DbDep, producer: ProducerDep,
                        body: RevertRequest | None = None) -> JSONResponse:
    """202 with the recorded ImportReverted; 200 when the import was reverted already (a no-op)."""
    async with db.connection() as conn:
        staged = await conn.fetchrow(
            "SELECT flow_id FROM staged_imports WHERE import_id = $1 AND client_account_id = $2"
            " AND engagement_id = $3", import_id, ctx.tenant.client_account_id, ctx.tenant.engagement_id)
        if staged is None:
            raise HTTPException(404, detail="import not found (or not validated yet)")
        done = await conn.fetchrow("SELECT requested_at, counts FROM import_reverts WHERE import_id = $1", import_id)
    if done is not None:
        body_: dict[str, Any] = {"import_id": str(import_id), "status": "reverted",
                                 "reverted_at": done["requested_at"].isoformat(), "counts": done["counts"]}
        return JSONResponse(body_, status_code=200)
    # One revert per import: a repeated request before it is applied carries the same event id.
    event = Envelope.wrap(ImportReverted(reason=body.reason if body else None), tenant=ctx.tenant,
                          import_id=import_id, flow_id=staged["flow_id"], user_id=ctx.user_id, producer="enricher",
                          stage_key="revert")
    await producer.send_and_wait(topics.EVENTS, key=event.key, value=event.encode(), headers=event.headers())
    return JSONResponse({"import_id": str(import_id), "status": "requested", "event_id": str(event.event_id)},
                        status_code=202)
