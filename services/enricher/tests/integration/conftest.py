"""Fixtures of the enricher integration tests: the service's database, and rows written straight into
its schema as the write side would leave them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.config import Config

import enricher
from contracts import Tenant
from enricher import SCHEMA, tenants
from tributary_cli.testing import _create_database, _drop_database, _with_database
from tributary_runtime.db import Database
from tributary_runtime.migrations import alembic_config
from tributary_runtime.settings import plain_dsn

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Seed:
    """Inserts one kind of row per method; ids are random, timestamps fixed (``at(minutes)``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @staticmethod
    def tenant() -> Tenant:
        return Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())

    @staticmethod
    def at(minutes: int) -> datetime:
        return at(minutes)

    async def asset(self, tenant: Tenant, name: str, **columns: Any) -> uuid.UUID:
        import_id = columns.pop("import_id", uuid.uuid4())
        row = {"asset_id": uuid.uuid4(), "client_account_id": tenant.client_account_id,
               "engagement_id": tenant.engagement_id, "name": name, "created_by_import": import_id,
               "last_import_id": import_id, "created_at": T0, "updated_at": T0} | columns
        await self.conn.execute(
            f"INSERT INTO assets ({', '.join(row)}) VALUES ({', '.join(f'${i}' for i in range(1, len(row) + 1))})",
            *row.values())
        # As the tenant's first apply would have numbered it (its identifiers are keyed by the number).
        await tenants.ensure(self.conn, tenant.client_account_id, tenant.engagement_id)
        return row["asset_id"]

    async def asset_claim(self, asset_id: uuid.UUID, import_id: uuid.UUID, *, asserted_at: datetime,
                          category: str = "cmdb", source: str = "servicenow", row_number: int | None = 1,
                          claims: dict[str, Any] | None = None) -> None:
        await self.conn.execute(
            "INSERT INTO asset_claims (asset_id, import_id, category, source, asserted_at, row_number, claims)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            asset_id, import_id, category, source, asserted_at, row_number, claims or {})

    async def dependency(self, tenant: Tenant, source: uuid.UUID, target: uuid.UUID, *,
                         import_id: uuid.UUID | None = None, port: int | None = None, protocol: str | None = None,
                         criticality: str | None = None, confidence: float | None = None,
                         provenance: dict[str, Any] | None = None, row_number: int = 1) -> uuid.UUID:
        """An edge and the claim of the import that asserted it."""
        dependency_id, import_id = uuid.uuid4(), import_id or uuid.uuid4()
        await self.conn.execute(
            "INSERT INTO asset_dependencies (dependency_id, client_account_id, engagement_id, source_asset_id,"
            " target_asset_id, port, protocol, dependency_type, criticality, confidence, provenance,"
            " created_by_import, last_import_id, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'network', $8, $9, $10, $11, $11, $12, $12)",
            dependency_id, tenant.client_account_id, tenant.engagement_id, source, target, port, protocol, criticality,
            confidence, provenance or {}, import_id, T0)
        await self.conn.execute(
            "INSERT INTO dependency_claims (dependency_id, import_id, asserted_at, row_number, source_ref, target_ref,"
            " claims) VALUES ($1, $2, $3, $4, 'src', 'tgt', '{}')", dependency_id, import_id, T0, row_number)
        return dependency_id

    async def parked(self, tenant: Tenant, import_id: uuid.UUID, row_number: int, *,
                     asserted_at: datetime = T0, missing: str = "target") -> None:
        await self.conn.execute(
            "INSERT INTO parked_dependencies (import_id, row_number, client_account_id, engagement_id, asserted_at,"
            " source_ref, target_ref, source_type, target_type, port, protocol, claims, missing)"
            " VALUES ($1, $2, $3, $4, $5, 'app-a', 'db-unknown', 'application', 'server', 5432, 'TCP',"
            " '{\"dependency_type\": \"database\"}', $6)",
            import_id, row_number, tenant.client_account_id, tenant.engagement_id, asserted_at, missing)

    async def candidate(self, tenant: Tenant, import_id: uuid.UUID, row_number: int,
                        asset_ids: list[uuid.UUID], *, status: str = "open") -> None:
        await self.conn.execute(
            "INSERT INTO duplicate_candidates (import_id, row_number, client_account_id, engagement_id, category,"
            " matched_on, reason, asset_ids, identifiers, claims, status)"
            " VALUES ($1, $2, $3, $4, 'cmdb', 'hostname', 'ambiguous', $5,"
            " '{\"hostname\": \"web-01\"}', '{\"name\": \"web-01\"}', $6)",
            import_id, row_number, tenant.client_account_id, tenant.engagement_id, asset_ids, status)


@pytest.fixture
async def db(seeded_database_url: str) -> AsyncIterator[Database]:
    """The enricher's database as the service opens it (schema on the search path, jsonb codecs)."""
    database = await Database.connect(seeded_database_url, SCHEMA, min_size=1, max_size=2)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def seed(db: Database) -> AsyncIterator[Seed]:
    async with db.connection() as conn:
        yield Seed(conn)


@pytest.fixture
def empty_database_url(stack_env: dict[str, str]) -> Iterator[str]:
    """A database of its own, with nothing in it: a migration test upgrades it step by step."""
    name = f"tributary_migration_{uuid.uuid4().hex[:10]}"
    _create_database(stack_env["DATABASE_URL"], name)
    try:
        yield plain_dsn(_with_database(stack_env["DATABASE_URL"], name))
    finally:
        _drop_database(stack_env["DATABASE_URL"], name)


@pytest.fixture
def migrations(empty_database_url: str) -> Config:
    """The enricher's migrations, pointed at ``empty_database_url``."""
    return alembic_config(Path(enricher.__file__).parent / "migrations", "enricher",
                          "postgresql+psycopg://" + empty_database_url.split("://", 1)[1])
