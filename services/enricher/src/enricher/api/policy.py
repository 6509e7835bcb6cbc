"""``/v1/inventory-policy``: how the tenant's competing claims about one attribute are decided."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tributary_runtime.deps import ContextDep, DbDep

from .. import policy as store

router = APIRouter(prefix="/v1/inventory-policy", tags=["inventory"])

INT4_MAX = 2**31 - 1
Priority = Annotated[int, Field(ge=-INT4_MAX, le=INT4_MAX)]


class InventoryPolicyBody(BaseModel):
    """The whole policy (PUT replaces it: a field left out takes its default)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source_priorities: dict[str, Priority] = Field(
        default_factory=dict, description="source name → priority; higher wins, an unlisted source ranks 0")
    stale_after_days: Annotated[int | None, Field(gt=0, le=INT4_MAX)] = Field(
        default=None, description="a claim this many days older than the newest on the attribute may be overridden"
                                  " by any newer source; null: never stale")
    empty_overwrites: bool = Field(default=False, description="blank cells clear the attribute")
    create_placeholders: bool = Field(default=False,
                                      description="infrastructure rows for unknown hosts create placeholder assets")

    @field_validator("source_priorities")
    @classmethod
    def _source_names(cls, value: dict[str, int]) -> dict[str, int]:
        """Names are stored lower-case and trimmed; two spellings of one name must not disagree silently."""
        names: dict[str, int] = {}
        for name, priority in value.items():
            key = name.strip().lower()
            if not key:
                raise ValueError("a source name must not be blank")
            if key in names:
                raise ValueError(f"source {key!r} is given more than once (names are case-insensitive)")
            names[key] = priority
        return names

    def to_policy(self) -> store.InventoryPolicy:
        return store.InventoryPolicy(source_priorities=dict(self.source_priorities),
                                     stale_after_days=self.stale_after_days, empty_overwrites=self.empty_overwrites,
                                     create_placeholders=self.create_placeholders)


class InventoryPolicyOut(BaseModel):
    source_priorities: dict[str, int]
    stale_after_days: int | None
    empty_overwrites: bool
    create_placeholders: bool


@router.get("", response_model=InventoryPolicyOut)
async def get_policy(ctx: ContextDep, db: DbDep) -> InventoryPolicyOut:
    """The tenant's policy, or the defaults when none is set."""
    async with db.connection() as conn:
        policy = await store.policy_for(conn, ctx.tenant.client_account_id, ctx.tenant.engagement_id)
    return InventoryPolicyOut(**policy.as_dict())


@router.put("", response_model=InventoryPolicyOut)
async def put_policy(body: InventoryPolicyBody, ctx: ContextDep, db: DbDep) -> InventoryPolicyOut:
    """Replace the tenant's policy; it governs imports validated from now on.

    Earlier imports keep the version they were validated under, even when enriched later.
    """
    async with db.transaction() as conn:
        await store.put_policy(conn, ctx.tenant.client_account_id, ctx.tenant.engagement_id, body.to_policy())
        policy = await store.policy_for(conn, ctx.tenant.client_account_id, ctx.tenant.engagement_id)
    return InventoryPolicyOut(**policy.as_dict())
