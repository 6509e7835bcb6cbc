"""Scratch tables live as long as the database session and hold rows only within a transaction."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from enricher import scratch
from tributary_runtime.db import Database


async def _count(conn: asyncpg.Connection, table: str) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM pg_temp.{table}")


async def _relation(conn: asyncpg.Connection, table: str) -> int | None:
    return await conn.fetchval("SELECT to_regclass($1)::oid", f"pg_temp.{table}")


async def test_started_twice_in_a_transaction_the_tables_are_empty_again(db: Database) -> None:
    async with db.transaction() as conn:
        await scratch.start(conn, "touched", "touched_edges")
        await conn.execute("INSERT INTO touched VALUES ($1), ($2)", uuid.uuid4(), uuid.uuid4())
        await conn.execute("INSERT INTO touched_edges VALUES ($1)", uuid.uuid4())
        assert (await _count(conn, "touched"), await _count(conn, "touched_edges")) == (2, 1)
        await scratch.start(conn, "touched", "touched_edges")
        assert (await _count(conn, "touched"), await _count(conn, "touched_edges")) == (0, 0)


async def test_a_commit_empties_the_tables_and_keeps_them(db: Database) -> None:
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            await scratch.start(conn, "incoming")
            await conn.execute("INSERT INTO incoming (row_number, source, claims) VALUES (1, 'cmdb', '{}')")
            made = await _relation(conn, "incoming")
        assert await _count(conn, "incoming") == 0
        async with conn.transaction():
            await scratch.start(conn, "incoming")
            # The same table: not created again.
            assert await _relation(conn, "incoming") == made


async def test_a_rolled_back_transaction_takes_the_tables_it_made_and_the_next_makes_them_again(db: Database
                                                                                               ) -> None:
    async with db.pool.acquire() as conn:
        await conn.execute("DISCARD TEMP")  # a session that has made none yet
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await scratch.start(conn, "created_assets")
                assert await _relation(conn, "created_assets") is not None
                raise RuntimeError("the apply failed")
        assert await _relation(conn, "created_assets") is None
        async with conn.transaction():
            await scratch.start(conn, "created_assets")
            await conn.execute("INSERT INTO created_assets VALUES ($1)", uuid.uuid4())
            assert await _count(conn, "created_assets") == 1

