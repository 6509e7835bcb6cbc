"""Upload receipts and idempotency keys (the ingest schema)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from contracts import Tenant

RECEIPT_COLUMNS = (
    "import_id, flow_id, client_account_id, engagement_id, user_id, category, filename, file_format,"
    " content_type, size_bytes, sha256, record_count, batch_count, checksum, source, validate_only, status,"
    " idempotency_key, created_at, uploaded_at"
)


async def claim_idempotency_key(conn: asyncpg.Connection, tenant: Tenant, key: str,
                                import_id: uuid.UUID) -> uuid.UUID:
    """Bind ``key`` to ``import_id`` unless it is already bound; return the bound import."""
    bound = await conn.fetchval(
        "INSERT INTO idempotency_keys (client_account_id, engagement_id, key, import_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING import_id",
        tenant.client_account_id, tenant.engagement_id, key, import_id,
    )
    if bound is not None:
        return bound
    return await conn.fetchval(
        "SELECT import_id FROM idempotency_keys WHERE client_account_id = $1 AND engagement_id = $2 AND key = $3",
        tenant.client_account_id, tenant.engagement_id, key,
    )


async def insert_receipt(conn: asyncpg.Connection, receipt: dict[str, Any]) -> None:
    cols = list(receipt)
    placeholders = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    await conn.execute(
        f"INSERT INTO data_imports ({', '.join(cols)}) VALUES ({placeholders}) ON CONFLICT (import_id) DO NOTHING",
        *receipt.values(),
    )


async def mark_uploaded(conn: asyncpg.Connection, import_id: uuid.UUID, *, record_count: int,
                        batch_count: int, checksum: str) -> None:
    await conn.execute(
        "UPDATE data_imports SET status = 'uploaded', record_count = $2, batch_count = $3, checksum = $4,"
        " uploaded_at = now() WHERE import_id = $1",
        import_id, record_count, batch_count, checksum,
    )


async def get_receipt(conn: asyncpg.Connection, tenant: Tenant, import_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {RECEIPT_COLUMNS} FROM data_imports"
        " WHERE import_id = $1 AND client_account_id = $2 AND engagement_id = $3",
        import_id, tenant.client_account_id, tenant.engagement_id,
    )
    return dict(row) if row else None
