"""Inventory policy versions: an import is enriched under the policy in effect at its event time.

A rebuild applies last month's imports today; were it to read today's policy, a tenant that
turned placeholders on in between would get placeholders from imports that made none live.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from enricher.policy import InventoryPolicy, policy_for, put_policy
from tributary_runtime.db import Database


async def test_each_time_sees_the_version_then_in_effect(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    ids = (tenant.client_account_id, tenant.engagement_id)
    first = InventoryPolicy(source_priorities={"servicenow": 10})
    second = InventoryPolicy(source_priorities={"servicenow": 10}, create_placeholders=True, stale_after_days=30)

    async with db.connection() as conn:
        before_any = datetime.now(UTC)
        await asyncio.sleep(0.01)
        async with conn.transaction():
            await put_policy(conn, *ids, first)
        between = datetime.now(UTC)
        await asyncio.sleep(0.01)
        # Two changes in one transaction are two versions, the later one current.
        async with conn.transaction():
            await put_policy(conn, *ids, InventoryPolicy(empty_overwrites=True))
            await put_policy(conn, *ids, second)
        after = datetime.now(UTC)

        assert await policy_for(conn, *ids, before_any) == InventoryPolicy()
        assert await policy_for(conn, *ids, between) == first
        assert await policy_for(conn, *ids, after) == second
        assert await policy_for(conn, *ids, after + timedelta(days=365)) == second
        assert await policy_for(conn, *ids) == second  # the current one (what the API shows)
        versions = await conn.fetchval(
            "SELECT count(*) FROM inventory_policy_versions WHERE client_account_id = $1 AND engagement_id = $2",
            *ids)
        assert versions == 3
        # Another tenant's versions are not this one's.
        other = seed.tenant()
        assert await policy_for(conn, other.client_account_id, other.engagement_id, after) == InventoryPolicy()
