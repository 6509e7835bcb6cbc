"""Scratch tables live as long as the database session; each use starts them empty."""

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


async def test_a_commit_keeps_the_tables_and_the_next_start_empties_them(db: Database) -> None:
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            await scratch.start(conn, "incoming")
            await conn.execute("INSERT INTO incoming (row_number, source, claims) VALUES (1, 'cmdb', '{}')")
            made = await _relation(conn, "incoming")
        # Not truncated at commit (ON COMMIT DELETE ROWS would, at a cost of ~8 ms per transaction).
        assert await _count(conn, "incoming") == 1
        async with conn.transaction():
            await scratch.start(conn, "incoming")
            # The same table, not made again, and empty.
            assert await _relation(conn, "incoming") == made
            assert await _count(conn, "incoming") == 0


async def test_tidy_truncates_the_tables_once_they_have_grown(db: Database, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            await scratch.start(conn, *scratch.TABLES)
            assert not await scratch.tidy(conn)  # empty: nothing to give back
            await conn.execute("INSERT INTO touched SELECT gen_random_uuid() FROM generate_series(1, 5000)")
            await scratch.start(conn, "touched")  # deleted: the pages stay
        grown = await conn.fetchval("SELECT pg_relation_size('pg_temp.touched')")
        assert grown > 0
        monkeypatch.setattr(scratch, "TIDY_BYTES", grown - 1)
        async with conn.transaction():
            assert await scratch.tidy(conn)
        assert await conn.fetchval("SELECT pg_relation_size('pg_temp.touched')") == 0
        async with conn.transaction():
            await scratch.start(conn, "touched")  # still there, usable
            await conn.execute("INSERT INTO touched VALUES ($1)", uuid.uuid4())
            assert await _count(conn, "touched") == 1


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

