"""``/v1/duplicate-candidates``: rows not merged because they matched several assets, with those assets."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tributary_runtime.deps import ContextDep, DbDep

from .. import queries
from . import Page, PageNumber, PageSize, offset

router = APIRouter(prefix="/v1/duplicate-candidates", tags=["inventory"])


class MatchedAsset(BaseModel):
    asset_id: uuid.UUID
    # None when the asset has since been removed (an import reverted)
    name: str | None


class DuplicateCandidate(BaseModel):
    import_id: uuid.UUID
    row_number: int
    category: str
    matched_on: str
    reason: str
    status: str
    # the identifiers the row carried (kind → value), as the identification step recorded them
    identifiers: Any
    claims: dict[str, Any]
    matched_assets: list[MatchedAsset]


@router.get("", response_model=Page[DuplicateCandidate])
async def list_candidates(
    ctx: ContextDep, db: DbDep,
    import_id: uuid.UUID | None = None,
    status: Annotated[str | None, Query(description="e.g. open")] = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page[DuplicateCandidate]:
    async with db.connection() as conn:
        total, rows = await queries.list_duplicate_candidates(conn, ctx.tenant, import_id=import_id, status=status,
                                                              limit=page_size, offset=offset(page, page_size))
    return Page[DuplicateCandidate](items=[DuplicateCandidate(**r) for r in rows], total=total, page=page,
                                    page_size=page_size)
