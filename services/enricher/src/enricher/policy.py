"""A tenant's reconciliation policy: how competing claims about one attribute are decided.

Policies are configuration written through the API, not events. For the inventory to stay a
function of the event log (a rebuild replays it and must come out equal), every change is kept
as a version with the time it took effect, and an import is enriched under the version in effect
at its own event time (the ``ValidationCompleted`` marker's ``occurred_at``; a revert's
``ImportReverted``), however late the enricher gets to it. The current policy (what the API
shows) is the latest version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg


_COLUMNS = "source_priorities, stale_after_days, empty_overwrites, create_placeholders"


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


async def policy_for(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID,
                     at: datetime | None = None) -> InventoryPolicy:
    """The policy in effect at ``at`` (an event's time); the current one when ``at`` is None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM inventory_policy_versions WHERE client_account_id = $1 AND engagement_id = $2"
        " AND effective_from <= coalesce($3::timestamptz, 'infinity') ORDER BY effective_from DESC LIMIT 1",
        client_account_id, engagement_id, at)
    return InventoryPolicy() if row is None else InventoryPolicy(**dict(row))


async def put_policy(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID,
                     policy: InventoryPolicy) -> None:
    """A new version, in effect from now: it governs imports whose events are from now on.

    clock_timestamp(), not now(): two changes in one transaction are still two versions, in order.
    """
    await conn.execute(
        "INSERT INTO inventory_policy_versions (client_account_id, engagement_id, effective_from, source_priorities,"
        " stale_after_days, empty_overwrites, create_placeholders)"
        " VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6)",
        client_account_id, engagement_id, {k.lower(): v for k, v in policy.source_priorities.items()},
        policy.stale_after_days, policy.empty_overwrites, policy.create_placeholders)
