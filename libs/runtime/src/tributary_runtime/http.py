"""HTTP basics every API shares: the tenant of a request, health and readiness."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException

from contracts import Tenant


@dataclass(frozen=True)
class RequestContext:
    tenant: Tenant
    user_id: str


def request_context(
    x_client_account_id: Annotated[str | None, Header()] = None,
    x_engagement_id: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
) -> RequestContext:
    """The tenant named by the request headers (until API keys name it)."""
    missing = [h for h, v in (("X-Client-Account-Id", x_client_account_id),
                              ("X-Engagement-Id", x_engagement_id)) if not v]
    if missing:
        raise HTTPException(401, detail=f"missing tenant header(s): {', '.join(missing)}")
    try:
        tenant = Tenant(client_account_id=uuid.UUID(x_client_account_id),
                        engagement_id=uuid.UUID(x_engagement_id))
    except ValueError:
        raise HTTPException(400, detail="X-Client-Account-Id and X-Engagement-Id must be UUIDs") from None
    return RequestContext(tenant=tenant, user_id=x_user_id or "anonymous")


def health_router(ready: callable) -> APIRouter:  # type: ignore[valid-type]
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    async def readiness() -> dict[str, str]:
        if not await ready():
            raise HTTPException(503, detail="not ready")
        return {"status": "ready"}

    return router
