"""A service's database session is set up for statements over a whole import.

Memory for sorts, hashes and temp tables (``work_mem``, ``temp_buffers``), and no JIT
compilation, which a large import's statements paid for before running without gaining from it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from tributary_runtime.db import Database

# Costed far above the server's jit_above_cost (100,000 by default): a plan the server would compile.
_COSTLY = "SELECT sum(g * 2) FROM generate_series(1, 2000000) g"


def _jit_of(plan: str | list) -> dict | None:
    """The plan's JIT section (the session's codecs may have decoded the JSON already)."""
    return (json.loads(plan) if isinstance(plan, str) else plan)[0].get("JIT")


async def test_a_service_session_has_memory_for_whole_imports_and_no_jit(
        schema_db: Callable[..., Awaitable[Database]]) -> None:
    db = await schema_db("session", "SELECT 1")
    async with db.connection() as conn:
        assert await conn.fetchval("SHOW work_mem") == "64MB"
        assert await conn.fetchval("SHOW temp_buffers") == "256MB"
        assert await conn.fetchval("SHOW jit") == "off"
        assert _jit_of(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {_COSTLY}")) is None
        # The same statement on a session with the server's default would be compiled (where the
        # server can compile at all): the setting is what keeps it from happening.
        await conn.execute("SET jit = DEFAULT")
        if await conn.fetchval("SELECT pg_jit_available() AND current_setting('jit')::bool"):
            assert _jit_of(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {_COSTLY}")) is not None
        await conn.execute("SET jit = off")  # the pooled session stays as the service has it
