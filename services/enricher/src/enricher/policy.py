"""A tenant's reconciliation policy: how competing claims about one attribute are decided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class InventoryPolicy:
    # Higher wins; a source not listed ranks 0. Keys are lower-case source names.
    source_priorities: dict[str, int] = field(default_factory=dict)
    # A claim this many days older than the newest claim on the same attribute is stale: any newer
    # source may then override it whatever its priority. None: values never go stale.
    stale_after_days: int | None = None
    # Blank cells normally assert nothing; with this on, they clear the attribute.
    empty_overwrites: bool = False
    # Infrastructure rows for unknown hosts create flagged placeholder assets instead of being reported only.
    create_placeholders: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"source_priorities": self.source_priorities, "stale_after_days": self.stale_after_days,
                "empty_overwrites": self.empty_overwrites, "create_placeholders": self.create_placeholders}


async def policy_for(conn: asyncpg.Connection, client_account_id: uuid.UUID,
                     engagement_id: uuid.UUID) -> InventoryPolicy:
    row = await conn.fetchrow(
        "SELECT source_priorities, stale_after_days, empty_overwrites, create_placeholders FROM inventory_policies"
        " WHERE client_account_id = $1 AND engagement_id = $2", client_account_id, engagement_id)
    return InventoryPolicy() if row is None else InventoryPolicy(**dict(row))


async def put_policy(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID,
                     policy: InventoryPolicy) -> None:
    await conn.execute(
        "INSERT INTO inventory_policies (client_account_id, engagement_id, source_priorities, stale_after_days,"
        " empty_overwrites, create_placeholders) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (client_account_id, engagement_id) DO UPDATE SET source_priorities = EXCLUDED.source_priorities,"
        " stale_after_days = EXCLUDED.stale_after_days, empty_overwrites = EXCLUDED.empty_overwrites,"
        " create_placeholders = EXCLUDED.create_placeholders, updated_at = now()",
        client_account_id, engagement_id, {k.lower(): v for k, v in policy.source_priorities.items()},
        policy.stale_after_days, policy.empty_overwrites, policy.create_placeholders)
