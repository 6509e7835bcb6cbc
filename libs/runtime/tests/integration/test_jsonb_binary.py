"""jsonb through the pool's binary codec, on the real database: by parameter, by COPY, read back.

The pool sends jsonb in the binary protocol so that COPY can fill jsonb columns. Whatever way a
value goes in, it must be the same jsonb the text path (the stdlib's JSON, cast) would have
stored: a rebuild compares tables written by either.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest

from tributary_runtime.db import Database

VALUES = [
    {"at": datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC), "id": uuid.UUID(int=7)},
    {"nested": {"list": [1, None, True, "é", "日本"], "empty": {}}, "big": 2**70},
    ["a", 1.5, -0.0, "line\nbreak", "quote\"d", "\u2028"],
    "just a string",
    None,
]


def stdlib(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    return await schema_db("jsonb_binary", "CREATE TABLE docs (n int PRIMARY KEY, via text NOT NULL, doc jsonb)",
                           max_size=2)


async def test_parameter_copy_and_text_store_the_same_jsonb(db: Database) -> None:
    async with db.connection() as conn:
        for n, value in enumerate(VALUES):
            await conn.execute("INSERT INTO docs VALUES ($1, 'parameter', $2)", n, value)
            await conn.execute("INSERT INTO docs VALUES ($1, 'text', $2::text::jsonb)", 100 + n, stdlib(value))
        await conn.copy_records_to_table("docs", records=[(200 + n, "copy", v) for n, v in enumerate(VALUES)])
        rows = await conn.fetch("SELECT n % 100 AS k, via, doc, doc::text AS text FROM docs ORDER BY n")
    by_key: dict[int, dict[str, asyncpg.Record]] = {}
    for r in rows:
        by_key.setdefault(r["k"], {})[r["via"]] = r
    assert len(by_key) == len(VALUES)
    for k, value in enumerate(VALUES):
        ways = by_key[k]
        # JSON null as a parameter is SQL NULL for asyncpg (None means NULL), in every way but text.
        if value is None:
            assert ways["parameter"]["doc"] is None and ways["copy"]["doc"] is None
            continue
        assert ways["parameter"]["text"] == ways["copy"]["text"] == ways["text"]["text"]
        assert ways["parameter"]["doc"] == ways["copy"]["doc"] == json.loads(stdlib(value))
