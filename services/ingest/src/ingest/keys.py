"""API keys: created and revoked here (hashes in ``api_keys``), announced on ``access.api-keys.v1``.

Every service learns keys from that topic. The table is the record of truth: on start,
ingest announces every key again, so a broker that lost its data (or a new topic) is
refilled.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts import Tenant, topics
from contracts.access import ApiKeyRecord, hash_key, new_key


async def _announce(producer: AIOKafkaProducer, record: ApiKeyRecord) -> None:
    await producer.send_and_wait(topics.API_KEYS, key=record.key_id.encode(),
                                 value=record.model_dump_json().encode())


def _record(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord.model_validate(dict(row))


async def create_key(conn: asyncpg.Connection, producer: AIOKafkaProducer, tenant: Tenant,
                     label: str | None) -> tuple[ApiKeyRecord, str]:
    """A new key for the tenant: (its record, the key itself — shown once, never stored)."""
    key_id, key = new_key()
    row = await conn.fetchrow(
        "INSERT INTO api_keys (key_id, client_account_id, engagement_id, key_hash, label, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        key_id, tenant.client_account_id, tenant.engagement_id, hash_key(key), label, datetime.now(UTC))
    record = _record(row)
    await _announce(producer, record)
    return record, key


async def revoke_key(conn: asyncpg.Connection, producer: AIOKafkaProducer, key_id: str) -> ApiKeyRecord | None:
    row = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1 RETURNING *", key_id)
    if row is None:
        return None
    record = _record(row)
    await _announce(producer, record)
    return record


async def list_keys(conn: asyncpg.Connection, tenant: Tenant | None = None) -> list[ApiKeyRecord]:
    rows = await conn.fetch(
        "SELECT * FROM api_keys WHERE $1::uuid IS NULL OR (client_account_id = $1 AND engagement_id = $2)"
        " ORDER BY created_at", tenant.client_account_id if tenant else None, tenant.engagement_id if tenant else None)
    return [_record(r) for r in rows]


async def announce_all(conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
    records = await list_keys(conn)
    for record in records:
        await _announce(producer, record)
    return len(records)
