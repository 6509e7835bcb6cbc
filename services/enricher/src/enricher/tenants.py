"""Tenant numbers: what a tenant's identifiers are keyed by in ``asset_identifiers``.

A tenant (client account and engagement) is numbered when it is first applied to, in that order,
so a new tenant's identifiers sort after every other tenant's. Its first import (an engagement's
initial inventory, as a rule its largest) then appends them at the right end of the table's
primary key, where a B-tree page that fills is split to be left nine tenths full. Keyed by the
tenant's ids, which are random, a new tenant's identifiers went to some place in the middle of
the index, where every split leaves two half-empty pages: inserting 4M identifiers in key order
there took 21.2 s against 11.9 s at the end, and left an index 1.8 times the size (544 against
307 MB, docs/performance.md, sixteenth pass). An integer also keys them in 4 bytes instead of 32.

Numbers are not a function of the events (a rolled-back first import spends one), so a rebuild
may number tenants otherwise: what it verifies is the identifiers by tenant ids.
"""

from __future__ import annotations

import uuid

import asyncpg


def number(client_account_id: str, engagement_id: str) -> str:
    """SQL scalar subquery: the number of the tenant these SQL expressions name (NULL if unnumbered).
    Over parameters it is computed once per statement, and an index lookup can use it."""
    return (f"(SELECT tn.tenant_no FROM tenants tn WHERE tn.client_account_id = {client_account_id}"
            f" AND tn.engagement_id = {engagement_id})")


# The existence test first: an INSERT that conflicts still spends a number of the identity.
_ENSURE = f"""
INSERT INTO tenants (client_account_id, engagement_id) SELECT $1::uuid, $2::uuid
WHERE {number("$1::uuid", "$2::uuid")} IS NULL
ON CONFLICT DO NOTHING
"""


async def ensure(conn: asyncpg.Connection, client_account_id: uuid.UUID, engagement_id: uuid.UUID) -> None:
    """Number the tenant unless it is. Before anything of it is applied: its identifiers need it.

    A new tenant's row stays locked until the transaction that numbers it ends: a second first
    apply of the same tenant waits here for the first to commit (or roll back and leave the
    number to it). So a phase numbers its tenant before it takes any lock such an apply may hold.
    """
    await conn.execute(_ENSURE, client_account_id, engagement_id)
