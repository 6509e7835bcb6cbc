"""The LLM usage ledger against the real PostgreSQL, in a throwaway schema of its own."""

from __future__ import annotations

import os

# Before litellm is imported anywhere: no download of the price map.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts import Category
from validator.llm_review import LlmUsage, ReviewConfig, review_import
from validator.llm_usage import LLM_USAGE_DDL, PgUsageLedger
from validator.rules.model import Finding

HASH = "ab" * 32
TENANT: dict[str, uuid.UUID] = {"client_account_id": uuid.uuid4(), "engagement_id": uuid.uuid4()}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"llm_usage_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        await admin.execute(LLM_USAGE_DDL)
        pool = await asyncpg.create_pool(database_url, min_size=2, max_size=4,
                                         server_settings={"search_path": schema})
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def usage(import_id: uuid.UUID, outcome: str = "ok", cost: float = 0.0125, text: str | None = '{"findings": []}',
          request_hash: str = HASH) -> LlmUsage:
    return LlmUsage(import_id=import_id, model="gpt-4o-mini", request_hash=request_hash,
                    outcome=outcome,  # type: ignore[arg-type]  # the table's CHECK is tested with nonsense
                    prompt_tokens=120, completion_tokens=30, cost_usd=cost, latency_ms=850, response_text=text,
                    created_at=datetime.now(UTC), **TENANT)


async def test_record_spent_and_cached(pool: asyncpg.Pool) -> None:
    ledger = PgUsageLedger(pool)
    import_id, other = uuid.uuid4(), uuid.uuid4()
    assert await ledger.spent_usd(import_id) == 0.0
    assert await ledger.cached_response(import_id, HASH) is None

    await ledger.record(usage(import_id, "error", cost=0.0, text=None))
    assert await ledger.cached_response(import_id, HASH) is None  # only a success is reusable
    await ledger.record(usage(import_id, "ok", cost=0.0125, text='{"findings": [1]}'))
    await ledger.record(usage(import_id, "ok", cost=0.0000135, text='{"findings": [2]}'))
    await ledger.record(usage(import_id, "malformed", cost=0.002, text=None, request_hash="cd" * 32))
    await ledger.record(usage(other, "ok", cost=1.0))

    assert await ledger.spent_usd(import_id) == pytest.approx(0.0125 + 0.0000135 + 0.002)
    assert await ledger.cached_response(import_id, HASH) == '{"findings": [1]}'  # the first answer wins
    assert await ledger.cached_response(import_id, "cd" * 32) is None
    row = await pool.fetchrow("SELECT * FROM llm_usage WHERE import_id = $1 AND outcome = 'error'", import_id)
    assert (row["client_account_id"], row["engagement_id"], row["model"], row["prompt_tokens"],
            row["completion_tokens"], row["latency_ms"]) == (
        TENANT["client_account_id"], TENANT["engagement_id"], "gpt-4o-mini", 120, 30, 850)


async def test_the_table_refuses_nonsense(pool: asyncpg.Pool) -> None:
    ledger = PgUsageLedger(pool)
    with pytest.raises(asyncpg.CheckViolationError):
        await ledger.record(usage(uuid.uuid4(), "maybe"))
    with pytest.raises(asyncpg.CheckViolationError):
        await ledger.record(usage(uuid.uuid4(), request_hash="not-a-sha256"))


async def test_a_record_survives_the_rollback_of_the_callers_transaction(pool: asyncpg.Pool) -> None:
    ledger = PgUsageLedger(pool)
    import_id = uuid.uuid4()
    config = ReviewConfig(model="gpt-4o-mini", mock_response=json.dumps(
        {"findings": [{"row_number": 2, "column": "os", "message": "Windows 95 is not a server OS"}]}))

    async def review() -> list[Finding]:
        return await review_import(ledger, config, import_id=import_id, category=Category.CMDB_EXPORT,
                                   columns=["hostname", "os"], sample=[(2, {"hostname": "web-01", "os": "Windows 95"})],
                                   **TENANT)

    async with pool.acquire() as caller:
        await caller.execute("CREATE TEMP TABLE caller_work (n int)")
        tx = caller.transaction()
        await tx.start()
        await caller.execute("INSERT INTO caller_work VALUES (1)")
        first = await review()
        await tx.rollback()  # the validation that asked for the review crashed
        assert await caller.fetchval("SELECT count(*) FROM caller_work") == 0

    assert await pool.fetchval("SELECT count(*) FROM llm_usage WHERE import_id = $1", import_id) == 1
    spent = await ledger.spent_usd(import_id)
    assert spent > 0

    # Redelivery: the same request is answered from the ledger, with no new call or spend.
    second = await review()
    assert second == first and len(first) == 1
    assert await pool.fetchval("SELECT count(*) FROM llm_usage WHERE import_id = $1", import_id) == 1
    assert await ledger.spent_usd(import_id) == spent
