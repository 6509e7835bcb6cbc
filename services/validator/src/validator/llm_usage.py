"""The LLM usage ledger in PostgreSQL: every model call the validator pays for, per import.

Rows are written through a pool connection of their own, in autocommit, never through
the caller's transaction: the money is spent whether or not the validation that asked
for it commits, so a rollback (or a crash) must not erase the record, and a redelivered
import must find the stored answer instead of paying again.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from .llm_review import LlmUsage

# Executed inside the validator's schema by its migration, hence no schema prefix.
# Several rows per (import, request) are normal (an error, then a success on redelivery;
# repeated over_budget refusals), so the key is a surrogate. The index serves both the
# per-import spend sum and the cache lookup.
LLM_USAGE_DDL = """
CREATE TABLE llm_usage (
    usage_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_account_id uuid           NOT NULL,
    engagement_id     uuid           NOT NULL,
    import_id         uuid           NOT NULL,
    model             text           NOT NULL,
    request_hash      text           NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    outcome           text           NOT NULL
                      CHECK (outcome IN ('ok', 'timeout', 'error', 'malformed', 'over_budget')),
    prompt_tokens     integer        NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens integer        NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_usd          numeric(18, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    latency_ms        integer        NOT NULL DEFAULT 0 CHECK (latency_ms >= 0),
    response_text     text,
    created_at        timestamptz    NOT NULL DEFAULT now(),
    CHECK (response_text IS NULL OR outcome = 'ok')
);
CREATE INDEX llm_usage_import ON llm_usage (import_id, request_hash);
"""

_INSERT = """
INSERT INTO llm_usage (client_account_id, engagement_id, import_id, model, request_hash, outcome,
                       prompt_tokens, completion_tokens, cost_usd, latency_ms, response_text, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""


class PgUsageLedger:
    """UsageLedger over an asyncpg pool (pass the pool, never a connection in a transaction)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def spent_usd(self, import_id: uuid.UUID) -> float:
        spent = await self._pool.fetchval(
            "SELECT coalesce(sum(cost_usd), 0) FROM llm_usage WHERE import_id = $1", import_id)
        return float(spent)

    async def cached_response(self, import_id: uuid.UUID, request_hash: str) -> str | None:
        # The first successful answer wins, so every redelivery reproduces the same findings.
        text: str | None = await self._pool.fetchval(
            "SELECT response_text FROM llm_usage WHERE import_id = $1 AND request_hash = $2"
            " AND outcome = 'ok' ORDER BY created_at, usage_id LIMIT 1", import_id, request_hash)
        return text

    async def record(self, usage: LlmUsage) -> None:
        # Pool.execute acquires a connection of its own and runs outside any transaction:
        # the row is committed the moment this returns.
        await self._pool.execute(
            _INSERT, usage.client_account_id, usage.engagement_id, usage.import_id, usage.model,
            usage.request_hash, usage.outcome, usage.prompt_tokens, usage.completion_tokens,
            Decimal(repr(usage.cost_usd)), usage.latency_ms, usage.response_text, usage.created_at)
