"""HTTP basics every API shares: the tenant of a request (from its API key), health, readiness, metrics."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from contracts import Tenant

from .metrics import CONTENT_TYPE, REGISTRY


@dataclass(frozen=True)
class RequestContext:
    tenant: Tenant
    user_id: str


async def request_context(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    x_user_id: Annotated[str | None, Header()] = None,
    x_client_account_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_engagement_id: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> RequestContext:
    """The tenant of the request's API key (``Authorization: Bearer …`` or ``X-Api-Key``). ``async``
    though it awaits nothing, so that FastAPI calls it on the event loop, not in its thread pool."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    keyring = getattr(request.app.state, "keyring", None)
    if key:
        if keyring is None or not keyring.ready.is_set():
            raise HTTPException(503, detail="not ready: API keys are still loading")
        tenant = keyring.tenant_for(key)
        if tenant is None:
            raise HTTPException(401, detail="the API key is not valid (unknown, revoked or mistyped)",
                                headers={"WWW-Authenticate": "Bearer"})
        return RequestContext(tenant=tenant, user_id=x_user_id or "api-key")
    settings = getattr(request.app.state, "settings", None)
    if settings is not None and settings.allow_tenant_headers and x_client_account_id and x_engagement_id:
        try:
            tenant = Tenant(client_account_id=uuid.UUID(x_client_account_id),
                            engagement_id=uuid.UUID(x_engagement_id))
        except ValueError:
            raise HTTPException(400, detail="X-Client-Account-Id and X-Engagement-Id must be UUIDs") from None
        return RequestContext(tenant=tenant, user_id=x_user_id or "anonymous")
    raise HTTPException(401, detail="an API key is required: send 'Authorization: Bearer <key>' "
                                    "(create one with `tributary keys create`)",
                        headers={"WWW-Authenticate": "Bearer"})


def health_router(ready: Callable[[], Awaitable[dict[str, bool]]]) -> APIRouter:
    """``/health``, ``/ready`` and ``/metrics``: no API key (probes and scrapers have none).

    Serve them to the cluster network only; ``/metrics`` names topics and consumer groups.
    """
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive and its event loop answers."""
        return {"status": "ok"}

    @router.get("/ready")
    async def readiness() -> JSONResponse:
        """Ready to do its work: key ring caught up, database answering, consumer loop running."""
        checks = await ready()
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """The process's metrics in the Prometheus text format."""
        return Response(REGISTRY.render(), media_type=CONTENT_TYPE)

    @router.get("/v1/whoami")
    async def whoami(ctx: Annotated[RequestContext, Depends(request_context)]) -> dict[str, str]:
        """The tenant the caller's key belongs to: a cheap check that a key works here."""
        return {"client_account_id": str(ctx.tenant.client_account_id),
                "engagement_id": str(ctx.tenant.engagement_id), "user_id": ctx.user_id}

    return router
