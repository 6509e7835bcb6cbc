"""Fixtures of the runtime library's integration tests: pools on schemas of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tributary_runtime.db import Database
from tributary_runtime.settings import ServiceSettings

SchemaDatabase = Callable[..., Awaitable[Database]]


@pytest.fixture
async def schema_db(stack_env: dict[str, str]) -> AsyncIterator[SchemaDatabase]:
    """``await schema_db(prefix, ddl, **pool_options)``: a Database on a new schema whose tables
    ``ddl`` makes (names unqualified); schemas and pools are dropped after the test."""
    settings = ServiceSettings(database_url=stack_env["DATABASE_URL"],
                               kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    admin = await asyncpg.connect(settings.asyncpg_dsn)
    made: list[tuple[str, Database]] = []

    async def make(prefix: str, ddl: str, **pool_options: Any) -> Database:
        schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await admin.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"; {ddl}')
        database = await Database.connect(settings.asyncpg_dsn, schema, **pool_options)
        made.append((schema, database))
        return database

    try:
        yield make
    finally:
        for schema, database in made:
            await database.close()
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
