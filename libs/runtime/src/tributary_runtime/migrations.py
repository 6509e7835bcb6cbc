"""Alembic, once for every service: each service has its own migrations and schema.

A service's ``migrations/env.py`` is one call to :func:`run_env`; its version table
lives in its own schema, so the four histories never meet.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

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
    command.upgrade(alembic_config(script_location, schema, settings.migration_url), revision)


def run_env() -> None:
    """Body of every service's ``env.py`` (online mode only: we always have a database)."""
    cfg = context.config
    schema = cfg.attributes["schema"]
    url = cfg.attributes["database_url"]

    # psycopg (not asyncpg) here: migrations are multi-statement scripts, which
    # asyncpg's prepared statements refuse.
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
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

    engine.dispose()
