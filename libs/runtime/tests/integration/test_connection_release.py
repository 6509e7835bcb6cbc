"""Releasing a pool connection: no reset statement after a unit of work, an open transaction rolled back.

asyncpg's default reset costs a round trip on every release (``pg_advisory_unlock_all``,
``CLOSE ALL``, ``UNLISTEN``, ``RESET ALL``). The pool releases connections as they are instead;
what must still hold is that the next unit never inherits an open transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tributary_runtime.db import Database


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    # One connection: every unit of work below runs on the one the previous unit released.
    return await schema_db("release", "CREATE TABLE marks (n int PRIMARY KEY)", min_size=1, max_size=1)


async def test_a_unit_of_work_ends_with_its_commit_on_the_wire(db: Database) -> None:
    sent: list[str] = []
    async with db.transaction() as conn:
        raw = conn._con  # noqa: SLF001 - the proxy is invalidated on release; the logger stays on the connection
        raw.add_query_logger(log := lambda record: sent.append(record.query))
        await conn.execute("INSERT INTO marks VALUES (1)")
    async with db.connection() as conn:
        assert conn._con is raw  # noqa: SLF001 - the same connection came back
        assert await conn.fetchval("SELECT count(*) FROM marks") == 1
    raw.remove_query_logger(log)
    # The insert, the commit, then straight to the next unit's query: nothing sent on release.
    after_insert = sent[sent.index("INSERT INTO marks VALUES (1)") + 1:]
    assert [q.strip().rstrip(";").upper() for q in after_insert[:-1]] == ["COMMIT"]
    assert after_insert[-1] == "SELECT count(*) FROM marks"


async def test_a_transaction_left_open_is_rolled_back_on_release(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO marks VALUES (2)")
            raise RuntimeError("the unit of work failed before it committed")
    async with db.connection() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM marks WHERE n = 2") == 0
