"""``/v1/validation-policies``: a tenant's verdict threshold and blocking rules per category."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from contracts import Category
from tributary_runtime.deps import ContextDep, DbDep

from .. import policies
from ..validation import rules_of

router = APIRouter(prefix="/v1/validation-policies", tags=["validation"])


class PolicyIn(BaseModel):
    max_error_rate: Annotated[float, Field(ge=0.0, le=1.0, description="share of invalid rows tolerated")]
    blocking_rules: list[str] = Field(default_factory=list, description="rule ids whose errors fail the import")


def _default(request: Request) -> float:
    return request.app.state.resources.settings.max_error_rate


@router.get("/{category}")
async def get_policy(category: Category, ctx: ContextDep, db: DbDep, request: Request) -> dict[str, Any]:
    async with db.connection() as conn:
        policy = await policies.policy_for(conn, ctx.tenant, category, _default(request))
    return {"category": category.value} | policy.as_dict()


@router.put("/{category}")
async def put_policy(category: Category, body: PolicyIn, ctx: ContextDep, db: DbDep) -> dict[str, Any]:
    unknown = sorted(set(body.blocking_rules) - set(rules_of(category)))
    if unknown:
        raise HTTPException(422, detail=f"unknown rule id(s) for {category.value}: {', '.join(unknown)}; "
                                        f"known: {', '.join(sorted(rules_of(category)))}")
    policy = policies.VerdictPolicy(body.max_error_rate, tuple(body.blocking_rules), source="tenant")
    async with db.transaction() as conn:
        await policies.put_policy(conn, ctx.tenant, category, policy, ctx.user_id)
    return {"category": category.value} | policy.as_dict()


@router.delete("/{category}", status_code=204)
async def delete_policy(category: Category, ctx: ContextDep, db: DbDep) -> None:
    async with db.transaction() as conn:
        if not await policies.delete_policy(conn, ctx.tenant, category):
            raise HTTPException(404, detail="no policy set for this category")


rules_router = APIRouter(prefix="/v1/validation-rules", tags=["validation"])


@rules_router.get("/{category}")
async def list_rules(category: Category) -> dict[str, Any]:
    """Every rule the category's agents apply: id, agent, severity and what it checks."""
    return {"category": category.value,
            "rules": [{"rule_id": r.rule_id, "agent": r.agent, "severity": r.severity, "description": r.description}
                      for r in sorted(rules_of(category).values(), key=lambda r: (r.agent, r.rule_id))]}
