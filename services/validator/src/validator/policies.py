"""Verdict policies: how many invalid rows a tenant tolerates per category, and which rules block."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from contracts import Category, Tenant


@dataclass(frozen=True)
class VerdictPolicy:
    max_error_rate: float
    # Any error of one of these rules fails the whole import, whatever the error rate.
    blocking_rules: tuple[str, ...] = field(default=())
    source: str = "default"

    def as_dict(self) -> dict[str, object]:
        return {"max_error_rate": self.max_error_rate, "blocking_rules": list(self.blocking_rules),
                "source": self.source}


async def policy_for(conn: asyncpg.Connection, tenant: Tenant, category: Category,
                     default_max_error_rate: float) -> VerdictPolicy:
    row = await conn.fetchrow(
        "SELECT max_error_rate, blocking_rules FROM validation_policies"
        " WHERE client_account_id = $1 AND engagement_id = $2 AND category = $3",
        tenant.client_account_id, tenant.engagement_id, category.value)
    if row is None:
        return VerdictPolicy(max_error_rate=default_max_error_rate)
    return VerdictPolicy(max_error_rate=row["max_error_rate"], blocking_rules=tuple(row["blocking_rules"]),
                         source="tenant")


async def put_policy(conn: asyncpg.Connection, tenant: Tenant, category: Category, policy: VerdictPolicy,
                     user_id: str) -> None:
    await conn.execute(
        "INSERT INTO validation_policies (client_account_id, engagement_id, category, max_error_rate,"
        " blocking_rules, updated_by) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (client_account_id, engagement_id, category) DO UPDATE SET"
        " max_error_rate = EXCLUDED.max_error_rate, blocking_rules = EXCLUDED.blocking_rules,"
        " updated_by = EXCLUDED.updated_by, updated_at = now()",
        tenant.client_account_id, tenant.engagement_id, category.value, policy.max_error_rate,
        list(policy.blocking_rules), user_id)


async def delete_policy(conn: asyncpg.Connection, tenant: Tenant, category: Category) -> bool:
    return await conn.fetchval(
        "DELETE FROM validation_policies WHERE client_account_id = $1 AND engagement_id = $2 AND category = $3"
        " RETURNING true", tenant.client_account_id, tenant.engagement_id, category.value) is not None
