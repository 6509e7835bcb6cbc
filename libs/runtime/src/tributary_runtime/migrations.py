"""Alembic, once for every service: each service has its own migrations and schema.

A service's ``migrations/env.py`` is one call to :func:`run_env`; its version table
lives in its own schema, so the four histories never meet.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from .settings import ServiceSettings


def alembic_config(script_location: Path, schema: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["schema"] = schema
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(script_location: Path, schema: str, settings: ServiceSettings | None = None,
            revision: str = "head") -> None:
    settings = settings or ServiceSettings()
    command.upgrade(alembic_config(script_location, schema, settings.sqlalchemy_url), revision)


def run_env() -> None:
    """Body of every service's ``env.py`` (online mode only: we always have a database)."""
    cfg = context.config
    schema = cfg.attributes["schema"]
    url = cfg.attributes["database_url"]

    def migrate(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}", public'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=None,
            version_table_schema=schema,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(main())
