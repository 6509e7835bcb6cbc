"""The web dashboard's routes: the page itself, its live event stream, and two forwarding endpoints.

- ``GET /dashboard/`` and its assets: plain HTML and JavaScript modules shipped as package data.
- ``GET /v1/dashboard/config``: what the page needs to know (categories, polling intervals).
- ``GET /v1/dashboard/flows``: the tenant's latest flows as status snapshots (the shape of
  ``FlowStatus`` plus ``created_at``/``flow_name``); the page's polling fallback and the first
  message of the stream.
- ``GET /v1/dashboard/stream``: server-sent events, ``snapshot`` first, then one ``status`` per
  change of the tenant's flows (from ``flows.status.v1``, see ``hub``). It takes the API key in
  the ``Authorization`` header like every other call: the page reads it with ``fetch()`` and a
  stream reader, not ``EventSource`` (which cannot send headers and would push the key into the
  URL, and so into access logs and browser history).
- ``POST /v1/dashboard/imports`` and ``GET /v1/dashboard/imports/{id}/issues``: forwarded to
  ingest and the validator.

Why forward instead of letting the page call ingest and the validator directly: they are other
origins, so the browser would need CORS on both (a preflight for every call carrying the
Authorization header, and an allow-list of dashboard origins configured per deployment, where a
mistake either breaks the page or lets any site drive the API with a user's key). Forwarded, the
page talks to one origin only and needs no CORS at all; ingest and the validator still check the
key themselves (it is passed on unchanged), so tenant isolation stays where it is enforced today.
The cost is one extra hop for upload bytes, which are streamed through, never buffered.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from contracts import Category, Tenant
from tributary_runtime.db import Database
from tributary_runtime.deps import ContextDep, DbDep

from ..settings import FlowStateSettings
from .hub import StatusHub

STATIC = resources.files(__package__) / "static"
# The page's files, by name: a fixed list, so no request path ever reaches the filesystem.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "format.js": "text/javascript; charset=utf-8",
    "flow.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Same-origin everything: the page needs no inline script or style and calls only its own origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
                               " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SNAPSHOT_LIMIT = 100
# Headers passed on to ingest/validator: the caller's identity and the upload's own metadata.
FORWARDED = ("authorization", "x-api-key", "x-user-id", "x-client-account-id", "x-engagement-id")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: FlowStateSettings = app.state.settings
    hub = StatusHub(settings)
    app.state.status_hub = hub
    app.state.dashboard_http = httpx.AsyncClient(timeout=httpx.Timeout(settings.dashboard_proxy_timeout_s,
                                                                       connect=10.0))
    tasks = [asyncio.create_task(hub.run(), name="dashboard-status-reader"),
             asyncio.create_task(_close_streams_on_shutdown(app, hub), name="dashboard-shutdown-watch")]
    try:
        yield
    finally:
        hub.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.state.dashboard_http.aclose()


async def _close_streams_on_shutdown(app: FastAPI, hub: StatusHub) -> None:
    """End the open event streams as soon as the process is asked to stop.

    uvicorn waits for open responses to finish *before* it runs the lifespan's shutdown, and an
    event stream never finishes by itself: without this, a browser tab left open would hold up
    every stop until the process is killed. The projector is the first thing SIGTERM stops
    (tributary_runtime.service), so its loop ending is the signal.
    """
    seen_running = False
    while True:
        consumer = getattr(app.state, "consumer", None)
        running = consumer is not None and consumer.running
        if seen_running and not running:
            hub.close()
            return
        seen_running = seen_running or running
        await asyncio.sleep(0.2)


router = APIRouter(tags=["dashboard"], lifespan=lifespan)


# --- the page ---------------------------------------------------------------------------------

@router.get("/dashboard", include_in_schema=False)
async def dashboard_root() -> RedirectResponse:
    # The page's modules are referenced relatively: they resolve under /dashboard/ only.
    return RedirectResponse("/dashboard/", status_code=308)


@router.get("/dashboard/", include_in_schema=False)
async def dashboard_index() -> Response:
    return _asset("index.html")


@router.get("/dashboard/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, detail="not found")
    return _asset(name)


def _asset(name: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("/v1/dashboard/config")
async def dashboard_config(request: Request) -> dict[str, Any]:
    """Not secret and needed before a key is entered: no key required."""
    settings: FlowStateSettings = request.app.state.settings
    return {"categories": [c.value for c in Category],
            "poll_active_s": settings.dashboard_poll_active_s, "poll_idle_s": settings.dashboard_poll_idle_s}


# --- flows: snapshot and live stream ------------------------------------------------------------

async def snapshot(db: Database, hub: StatusHub, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's latest flows, newest first, each as its newest known status.

    Read from the tables, then overlaid with statuses the hub saw that are newer than the rows
    (published but not yet committed when the rows were read).
    """
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT m.flow_id, c.id AS child_flow_id, c.data_import_id AS import_id, m.flow_type,"
            " m.import_category AS category, m.flow_name, m.status, c.status AS child_status, m.current_phase,"
            " m.progress_percentage, c.phase_state, c.error_message, m.version, m.created_at, m.updated_at"
            " FROM master_flows m JOIN child_flows c ON c.master_flow_id = m.flow_id"
            " WHERE m.client_account_id = $1 AND m.engagement_id = $2"
            " ORDER BY m.created_at DESC, m.flow_id LIMIT $3",
            tenant.client_account_id, tenant.engagement_id, SNAPSHOT_LIMIT)
    flows = {str(r["flow_id"]): _jsonable(dict(r)) for r in rows}
    for status in hub.recent_for(tenant):
        seen = flows.get(status["flow_id"])
        if seen is None:
            flows[status["flow_id"]] = status | {"created_at": status["updated_at"], "flow_name": None}
        elif status["version"] > seen["version"]:
            flows[status["flow_id"]] = seen | status
    return sorted(flows.values(), key=lambda f: (f["created_at"], f["flow_id"]), reverse=True)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v)
            for k, v in row.items()}


def _hub(request: Request) -> StatusHub:
    return request.app.state.status_hub


@router.get("/v1/dashboard/flows")
async def dashboard_flows(request: Request, ctx: ContextDep, db: DbDep) -> dict[str, Any]:
    return {"items": await snapshot(db, _hub(request), ctx.tenant)}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get("/v1/dashboard/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: `snapshot` {items}, then `status` per change"}})
async def dashboard_stream(request: Request, ctx: ContextDep, db: DbDep) -> StreamingResponse:
    hub = _hub(request)
    settings: FlowStateSettings = request.app.state.settings
    if hub.closed:
        raise HTTPException(503, detail="shutting down")
    try:
        await asyncio.wait_for(hub.positioned.wait(), timeout=10)
    except TimeoutError:
        raise HTTPException(503, detail="the status stream is not ready yet; poll GET /v1/dashboard/flows") from None
    # Subscribed before the snapshot is read: a change in between arrives twice (the page keeps the
    # higher version), never not at all.
    sub = hub.subscribe(ctx.tenant)

    async def events() -> AsyncIterator[str]:
        try:
            yield _event("snapshot", {"items": await snapshot(db, hub, ctx.tenant)})
            while not hub.closed:
                if sub.stale:
                    # This stream fell behind and statuses were dropped: start it over from the tables.
                    sub.stale = False
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    yield _event("snapshot", {"items": await snapshot(db, hub, ctx.tenant)})
                try:
                    status = await asyncio.wait_for(sub.queue.get(), timeout=settings.dashboard_heartbeat_s)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if status is None:
                    return
                yield _event("status", status)
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# --- forwarded to ingest and the validator ------------------------------------------------------

def _forward_headers(request: Request, *extra: str) -> dict[str, str]:
    return {name: request.headers[name] for name in (*FORWARDED, *extra) if name in request.headers}


def _relay(response: httpx.Response) -> Response:
    return Response(response.content, status_code=response.status_code,
                    media_type=response.headers.get("content-type"))


@router.post("/v1/dashboard/imports")
async def dashboard_upload(request: Request, ctx: ContextDep) -> Response:
    """``POST /v1/imports`` of ingest, body and answer unchanged (202, or 422/413 with the reason).

    The key is checked here first (``ctx``) so an unknown key never streams a file onwards.
    """
    settings: FlowStateSettings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.dashboard_http
    try:
        response = await client.post(
            f"{settings.ingest_url.rstrip('/')}/v1/imports", content=request.stream(),
            headers=_forward_headers(request, "content-type", "idempotency-key"))
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"ingest is not reachable: {exc.__class__.__name__}") from None
    return _relay(response)


@router.get("/v1/dashboard/imports/{import_id}/issues")
async def dashboard_issues(import_id: uuid.UUID, request: Request, ctx: ContextDep) -> Response:
    """The validator's ``GET /v1/imports/{id}/issues`` with the same query (page, page_size, filters)."""
    settings: FlowStateSettings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.dashboard_http
    try:
        response = await client.get(f"{settings.validator_url.rstrip('/')}/v1/imports/{import_id}/issues",
                                    params=request.query_params, headers=_forward_headers(request), timeout=30)
    except httpx.HTTPError as exc:
        raise HTTPException(502, detail=f"the validator is not reachable: {exc.__class__.__name__}") from None
    return _relay(response)
