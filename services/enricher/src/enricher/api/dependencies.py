"""``/v1/dependencies``: the tenant's dependency edges, and the edges parked for a missing endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tributary_runtime.deps import ContextDep, DbDep

from .. import queries
from . import Page, PageNumber, PageSize, offset

router = APIRouter(prefix="/v1/dependencies", tags=["inventory"])


class Dependency(BaseModel):
    dependency_id: uuid.UUID
    source_asset_id: uuid.UUID
    source_name: str
    target_asset_id: uuid.UUID
    target_name: str
    port: int | None
    protocol: str | None
    dependency_type: str | None
    criticality: str | None
    confidence: float | None
    # the claim the current values come from, as the write side records it (e.g. {import_id, set_at})
    provenance: dict[str, Any]
    created_by_import: uuid.UUID
    last_import_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class ParkedDependency(BaseModel):
    import_id: uuid.UUID
    row_number: int
    asserted_at: datetime
    source_ref: str
    target_ref: str
    source_type: str | None
    target_type: str | None
    port: int | None
    protocol: str | None
    # which endpoint the inventory lacks
    missing: str
    claims: dict[str, Any]


@router.get("", response_model=Page[Dependency])
async def list_dependencies(
    ctx: ContextDep, db: DbDep,
    source: Annotated[str | None, Query(description="source asset: its id or its name (any case)")] = None,
    target: Annotated[str | None, Query(description="target asset: its id or its name (any case)")] = None,
    protocol: str | None = None,
    port: Annotated[int | None, Query(ge=0, le=65535)] = None,
    criticality: str | None = None,
    import_id: Annotated[uuid.UUID | None, Query(description="edges claimed by this import")] = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page[Dependency]:
    async with db.connection() as conn:
        total, rows = await queries.list_dependencies(
            conn, ctx.tenant, source=source, target=target, protocol=protocol, port=port, criticality=criticality,
            import_id=import_id, limit=page_size, offset=offset(page, page_size))
    return Page[Dependency](items=[Dependency(**r) for r in rows], total=total, page=page, page_size=page_size)


@router.get("/parked", response_model=Page[ParkedDependency])
async def list_parked(
    ctx: ContextDep, db: DbDep,
    import_id: uuid.UUID | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page[ParkedDependency]:
    """Edges whose source or target is not in the inventory yet; applied when an import brings it."""
    async with db.connection() as conn:
        total, rows = await queries.list_parked(conn, ctx.tenant, import_id=import_id, limit=page_size,
                                                offset=offset(page, page_size))
    return Page[ParkedDependency](items=[ParkedDependency(**r) for r in rows], total=total, page=page,
                                  page_size=page_size)
