"""Migration 0008: the identifiers lose their index by asset id and are derived again."""

from __future__ import annotations

import uuid

import psycopg
from alembic import command
from alembic.config import Config


def test_upgrading_derives_the_identifiers_again_and_downgrading_restores_the_index(
        empty_database_url: str, migrations: Config) -> None:
    config = migrations
    command.upgrade(config, "0007")
    tenant, engagement, asset = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        conn.execute("INSERT INTO assets (asset_id, client_account_id, engagement_id, name, hostname, ip_address,"
                     " created_by_import, last_import_id, created_at, updated_at)"
                     " VALUES (%s, %s, %s, 'Web', 'web-01.corp.example', '10.0.0.1', %s, %s, now(), now())",
                     (asset, tenant, engagement, asset, asset))
        conn.execute("INSERT INTO asset_claims (asset_id, import_id, category, source, asserted_at, claims)"
                     " VALUES (%s, %s, 'cmdb_export', 'upload', now(),"
                     " '{\"external_id\": \"X-1\", \"hostname\": \"web-01.corp.example\"}')", (asset, asset))
        # What an earlier version might have left: an address the asset no longer has, and no others.
        conn.execute("INSERT INTO asset_identifiers VALUES (%s, %s, 'ip', '10.9.9.9', %s)", (tenant, engagement, asset))

    def identifiers_and_indexes() -> tuple[set[tuple[str, str]], set[str]]:
        with psycopg.connect(empty_database_url) as conn:
            held = {tuple(r) for r in conn.execute("SELECT kind, value FROM enricher.asset_identifiers")}
            indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'enricher'"
                                                  " AND tablename = 'asset_identifiers'")}
        return held, indexes

    command.upgrade(config, "0008")
    assert identifiers_and_indexes() == (
        {("fqdn", "web-01.corp.example"), ("host", "web-01"), ("ip", "10.0.0.1"), ("name", "web"),
         ("source_key", "upload|x-1")},
        {"asset_identifiers_pkey"})
    command.downgrade(config, "0007")
    assert identifiers_and_indexes()[1] == {"asset_identifiers_pkey", "asset_identifiers_asset"}


def test_upgrading_drops_the_names_indexed_twice_and_downgrading_indexes_every_name_again(
        empty_database_url: str, migrations: Config) -> None:
    command.upgrade(migrations, "0010")
    tenant, engagement = uuid.uuid4(), uuid.uuid4()
    assets = {"web-01.corp.example": ("web-01.corp.example", None), "Payroll": ("db-02", None),
              "10.0.0.3": (None, "10.0.0.3")}
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        for name, (hostname, ip) in assets.items():
            asset = uuid.uuid4()
            conn.execute("INSERT INTO assets (asset_id, client_account_id, engagement_id, name, hostname, ip_address,"
                         " created_by_import, last_import_id, created_at, updated_at)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), now())",
                         (asset, tenant, engagement, name, hostname, ip, asset, asset))
            conn.execute("INSERT INTO asset_identifiers VALUES (%s, %s, 'name', lower(%s), %s)",
                         (tenant, engagement, name, asset))

    def names() -> set[str]:
        with psycopg.connect(empty_database_url) as conn:
            return {r[0] for r in conn.execute("SELECT value FROM enricher.asset_identifiers WHERE kind = 'name'")}

    command.upgrade(migrations, "0011")
    assert names() == {"payroll"}
    command.downgrade(migrations, "0010")
    assert names() == {"web-01.corp.example", "payroll", "10.0.0.3"}


def test_upgrading_numbers_the_tenants_by_their_first_asset_and_keys_the_identifiers_by_that_number(
        empty_database_url: str, migrations: Config) -> None:
    command.upgrade(migrations, "0011")
    # Ids that sort the other way round from the order the tenants came in.
    later, earlier = (uuid.UUID(int=1), uuid.uuid4()), (uuid.UUID(int=2**128 - 1), uuid.uuid4())
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        for (tenant, engagement), created in ((later, "2026-03-02"), (earlier, "2026-03-01")):
            asset = uuid.uuid4()
            conn.execute("INSERT INTO assets (asset_id, client_account_id, engagement_id, name, hostname,"
                         " created_by_import, last_import_id, created_at, updated_at)"
                         " VALUES (%s, %s, %s, 'web', 'web-01', %s, %s, %s, %s)",
                         (asset, tenant, engagement, asset, asset, created, created))
            conn.execute("INSERT INTO asset_identifiers VALUES (%s, %s, 'host', 'web-01', %s)",
                         (tenant, engagement, asset))

    def key_and_numbers() -> tuple[list[str], list[tuple[uuid.UUID, int]]]:
        with psycopg.connect(empty_database_url) as conn:
            key = [r[0] for r in conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'enricher.asset_identifiers'::regclass"
                " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)")]
            numbers = [] if "tenant_no" not in key else [tuple(r) for r in conn.execute(
                "SELECT client_account_id, tenant_no FROM enricher.asset_identifiers ORDER BY tenant_no")]
        return key, numbers

    command.upgrade(migrations, "0012")
    assert key_and_numbers() == (["tenant_no", "kind", "value", "asset_id"], [(earlier[0], 1), (later[0], 2)])
    command.downgrade(migrations, "0011")
    assert key_and_numbers() == (["client_account_id", "engagement_id", "kind", "value", "asset_id"], [])


def test_upgrading_puts_the_identifiers_key_in_byte_order_and_downgrading_restores_the_database_collation(
        empty_database_url: str, migrations: Config) -> None:
    command.upgrade(migrations, "0013")
    tenant, engagement, asset = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    held = {("host", "web-01"), ("ip", "10.0.0.1"), ("serial", "SN-Ä1")}
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("SET search_path = enricher")
        conn.execute("INSERT INTO tenants (client_account_id, engagement_id) VALUES (%s, %s)", (tenant, engagement))
        for kind, value in held:
            conn.execute("INSERT INTO asset_identifiers (tenant_no, client_account_id, engagement_id, kind, value,"
                         " asset_id) SELECT tenant_no, %s, %s, %s, %s, %s FROM tenants", (tenant, engagement, kind,
                                                                                            value, asset))

    def collations_and_rows() -> tuple[dict[str, str | None], set[tuple[str, str]]]:
        with psycopg.connect(empty_database_url) as conn:
            collations = {r[0]: r[1] for r in conn.execute(
                "SELECT column_name, collation_name FROM information_schema.columns"
                " WHERE table_schema = 'enricher' AND table_name = 'asset_identifiers'"
                " AND column_name IN ('kind', 'value')")}
            rows = {tuple(r) for r in conn.execute("SELECT kind, value FROM enricher.asset_identifiers")}
            # The primary key still finds each identifier by equality.
            for kind, value in held:
                assert conn.execute("SELECT count(*) FROM enricher.asset_identifiers WHERE kind = %s AND value = %s",
                                    (kind, value)).fetchone() == (1,)
        return collations, rows

    command.upgrade(migrations, "0014")
    assert collations_and_rows() == ({"kind": "C", "value": "C"}, held)
    command.downgrade(migrations, "0013")
    assert collations_and_rows() == ({"kind": None, "value": None}, held)
