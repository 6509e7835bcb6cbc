"""``/v1/flows/{flow_id}/pause|resume|retry``: flow operations, recorded as lifecycle events.

The API checks the transition against the projected flow and publishes the event on
``imports.events.v1`` (keyed by import, so every service sees it in order with the
import's other events); the services act on it at their phase boundary. The answer is
202: the flow changes when the event is projected.

Event ids are deterministic in the flow's version: the same request repeated before the
flow changed is the same event (recognised as a duplicate); a second pause after a resume
is a new one.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts import Envelope, FlowPaused, FlowResumed, Payload, Phase, PhaseRetryRequested, topics
from tributary_runtime.deps import ContextDep, DbDep, ProducerDep
from tributary_runtime.http import RequestContext

from ..projection import RETRYABLE

router = APIRouter(prefix="/v1/flows", tags=["flow operations"])

PRODUCER = "flow-state"


class PauseRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class RetryRequest(BaseModel):
    phase: Phase | None = Field(default=None, description="the phase to run again; default the one that failed")


async def _flow(db: Any, ctx: RequestContext, flow_id: uuid.UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT m.flow_id, m.status, m.current_phase, m.version, c.data_import_id AS import_id, c.phase_state"
            " FROM master_flows m JOIN child_flows c ON c.master_flow_id = m.flow_id"
            " WHERE m.flow_id = $1 AND m.client_account_id = $2 AND m.engagement_id = $3",
            flow_id, ctx.tenant.client_account_id, ctx.tenant.engagement_id)
    if row is None:
        raise HTTPException(404, detail="flow not found")
    return dict(row)


def _conflict(message: str) -> HTTPException:
    return HTTPException(409, detail=message)


async def _publish(producer: Any, ctx: RequestContext, flow: dict[str, Any], payload: Payload, stage_key: str,
                   operation: str) -> JSONResponse:
    event = Envelope.wrap(payload, tenant=ctx.tenant, import_id=flow["import_id"], flow_id=flow["flow_id"],
                          user_id=ctx.user_id, producer=PRODUCER, stage_key=stage_key)
    await producer.send_and_wait(topics.EVENTS, key=event.key, value=event.encode(), headers=event.headers())
    body = {"flow_id": str(flow["flow_id"]), "import_id": str(flow["import_id"]), "operation": operation,
            "status": "requested", "event_id": str(event.event_id)}
    if isinstance(payload, PhaseRetryRequested):
        body["phase"] = payload.phase.value
    return JSONResponse(body, status_code=202)


@router.post("/{flow_id}/pause", status_code=202)
async def pause_flow(flow_id: uuid.UUID, ctx: ContextDep, db: DbDep, producer: ProducerDep,
                     body: PauseRequest | None = None) -> JSONResponse:
    """Pause at the next phase boundary: a phase already running finishes, the next one waits."""
    flow = await _flow(db, ctx, flow_id)
    status = flow["status"]
    if status == "paused":
        raise _conflict("the flow is already paused")
    if status in ("completed", "failed"):
        raise _conflict(f"the flow has {status}: there is nothing left to pause")
    return await _publish(producer, ctx, flow, FlowPaused(reason=body.reason if body else None),
                          f"pause:{flow['version']}", "pause")


@router.post("/{flow_id}/resume", status_code=202)
async def resume_flow(flow_id: uuid.UUID, ctx: ContextDep, db: DbDep, producer: ProducerDep) -> JSONResponse:
    """Continue a paused flow from the boundary where it waits."""
    flow = await _flow(db, ctx, flow_id)
    if flow["status"] != "paused":
        raise _conflict(f"the flow is {flow['status']}, not paused: only a paused flow can be resumed")
    return await _publish(producer, ctx, flow, FlowResumed(), f"resume:{flow['version']}", "resume")


@router.post("/{flow_id}/retry", status_code=202)
async def retry_flow(flow_id: uuid.UUID, ctx: ContextDep, db: DbDep, producer: ProducerDep,
                     body: RetryRequest | None = None) -> JSONResponse:
    """Run the failed phase again from its staged rows (after fixing the cause, e.g. the policy)."""
    flow = await _flow(db, ctx, flow_id)
    if flow["status"] != "failed":
        raise _conflict(f"the flow is {flow['status']}, not failed: only a failed phase can be retried")
    failed = _failed_phase(flow)
    phase = body.phase if body and body.phase else failed
    if phase != failed:
        raise _conflict(f"the flow failed in {failed.value}: only that phase can be retried, not {phase.value}")
    if phase not in RETRYABLE:
        raise _conflict(f"the {phase.value} phase cannot be retried: "
                        + ("upload the file again" if phase is Phase.UPLOAD else "it keeps no staged rows"))
    return await _publish(producer, ctx, flow, PhaseRetryRequested(phase=phase),
                          f"retry:{phase.value}:{flow['version']}", "retry")


def _failed_phase(flow: dict[str, Any]) -> Phase:
    """The phase whose state says failed (the flow's current phase when none does)."""
    for phase in Phase:
        if (flow["phase_state"] or {}).get(phase.value, {}).get("status") == "failed":
            return phase
    return Phase(flow["current_phase"])
