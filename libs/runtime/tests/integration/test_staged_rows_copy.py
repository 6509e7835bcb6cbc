"""A batch's rows staged through COPY's text format come back cell for cell, whatever they hold.

The lines are written by hand (``staging.staged_rows_copy``): quoting inside an array literal and
escaping for COPY are both ours, so every character either treats specially goes through the
real server here and is read back as staging's readers read it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from contracts import Envelope, RecordBatch, Tenant
from tributary_runtime import staging
from tributary_runtime.db import Database

AWKWARD = ["", " ", "NULL", "null", '"', '""', "\\", "\\\\", "\\N", "\\.", "a\tb", "line\nbreak", "cr\rlf\r\n",
           "cr\ronly", "{", "}", "{}", "a,b", "'", " lead", "trail ", "é", "日本", "\U0001f600", "\u2028", "x\\\"y", "\x7f",
           "\x01\x1f", "tab\tand\\backslash\"quote\nnewline"]


def random_cell(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    pool = 'ab ,{}"\\\t\n\r\'é日\U0001f600N.'
    return "".join(rng.choice(pool) for _ in range(rng.randrange(0, 12)))


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    return await schema_db("staged_copy", staging.STAGING_DDL, max_size=2)


async def stage(conn: asyncpg.Connection, rows: list[list[object]], columns: list[str]) -> uuid.UUID:
    import_id = uuid.uuid4()
    batch = RecordBatch(category="cmdb_export", batch_seq=3, columns=columns,
                        row_numbers=list(range(1, len(rows) + 1)), rows=rows)
    envelope = Envelope.wrap(batch, tenant=Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()),
                             import_id=import_id, flow_id=uuid.uuid4(), producer="test")
    assert await staging.stage_batch(conn, envelope)
    return import_id


async def read_back(conn: asyncpg.Connection, import_id: uuid.UUID) -> list[list[str | None]]:
    return [r["cells"] for r in await conn.fetch(
        "SELECT cells FROM staged_rows WHERE import_id = $1 AND batch_seq = 3 ORDER BY row_number", import_id)]


async def test_every_awkward_cell_comes_back_as_it_went(db: Database) -> None:
    rng = random.Random(20261207)
    rows: list[list[object]] = [[cell, "plain"] for cell in AWKWARD]
    rows += [["plain", cell] for cell in AWKWARD]
    rows += [[None, None], ["", ""], ["web01", None], [None, "web01"], [True, 4, 2.5], [False, None, "x\ty"]]
    # Padded with text, never None, so that a row without escapes takes the unescaped path.
    rows = [row + ["", "x", "y"][: 5 - len(row)] for row in rows]
    rows += [[cell] * 5 for cell in AWKWARD] + [[cell, cell[::-1], "", "a", "b"] for cell in AWKWARD]
    rows += [[random_cell(rng) for _ in range(5)] for _ in range(500)]
    async with db.transaction() as conn:
        import_id = await stage(conn, rows, ["a", "b", "c", "d", "e"])
        assert await read_back(conn, import_id) == [staging._cells(row) for row in rows]
        # As pass 1 reads them: row numbers and cells under the batch's columns.
        read = [row for chunk in [c async for c in staging.iter_rows(conn, import_id, 100)] for row in chunk]
    assert [n for n, _ in read] == list(range(1, len(rows) + 1))
    assert read[AWKWARD.index("NULL")][1] == {"a": "NULL", "b": "plain", "c": "", "d": "x", "e": "y"}


async def test_a_cell_the_database_cannot_hold_fails_the_batch_and_stages_nothing(db: Database) -> None:
    with pytest.raises(asyncpg.PostgresError):
        async with db.transaction() as conn:
            await stage(conn, [["web01"], ["a\x00b"]], ["a"])
    async with db.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM staged_rows") == 0
