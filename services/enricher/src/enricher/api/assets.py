"""``/v1/assets``: a filtered page of the tenant's inventory, or one asset with its edges and claims."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from tributary_runtime.deps import ContextDep, DbDep

from .. import queries
from . import Page, PageNumber, PageSize, offset
from .dependencies import Dependency

router = APIRouter(prefix="/v1/assets", tags=["inventory"])


class AssetSummary(BaseModel):
    asset_id: uuid.UUID
    name: str
    asset_type: str | None
    hostname: str | None
    fqdn: str | None
    ip_address: str | None
    environment: str | None
    criticality: str | None
    operating_system: str | None
    is_placeholder: bool
    compliance_flags: list[str]
    updated_at: datetime


class Claim(BaseModel):
    """What one import asserted about the asset."""
    import_id: uuid.UUID
    category: str
    source: str
    asserted_at: datetime
    row_number: int | None
    claims: dict[str, Any]


class AssetDependencies(BaseModel):
    outgoing: list[Dependency]
    incoming: list[Dependency]


class Asset(AssetSummary):
    mac_address: str | None
    serial_number: str | None
    external_id: str | None
    source: str | None
    attributes: dict[str, Any]
    performance: dict[str, Any]
    classification: dict[str, Any]
    # attribute → {import_id, source, set_at}: which import set each current value
    provenance: dict[str, Any]
    created_by_import: uuid.UUID
    last_import_id: uuid.UUID
    created_at: datetime
    dependencies: AssetDependencies
    claims: list[Claim]


@router.get("", response_model=Page[AssetSummary])
async def list_assets(
    ctx: ContextDep, db: DbDep,
    asset_type: str | None = None,
    environment: str | None = None,
    criticality: str | None = None,
    classification: Annotated[str | None, Query(description="one data classification label, e.g. PII")] = None,
    import_id: Annotated[uuid.UUID | None, Query(description="assets this import made a claim about")] = None,
    placeholder: Annotated[bool | None, Query(description="only placeholders (true) or only real assets")] = None,
    q: Annotated[str | None, Query(description="part of the name, hostname, FQDN or IP address (any case)")] = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page[AssetSummary]:
    async with db.connection() as conn:
        total, rows = await queries.list_assets(
            conn, ctx.tenant, asset_type=asset_type, environment=environment, criticality=criticality,
            classification=classification, import_id=import_id, placeholder=placeholder, q=q, limit=page_size,
            offset=offset(page, page_size))
    return Page[AssetSummary](items=[AssetSummary(**r) for r in rows], total=total, page=page, page_size=page_size)


@router.get("/{asset_id}", response_model=Asset)
async def get_asset(asset_id: uuid.UUID, ctx: ContextDep, db: DbDep) -> Asset:
    async with db.connection() as conn:
        asset = await queries.get_asset(conn, ctx.tenant, asset_id)
    if asset is None:
        raise HTTPException(404, detail="asset not found")
    return Asset(**asset)
