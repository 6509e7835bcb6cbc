"""Reconciliation against a freshly migrated database, with claims of chosen ages.

Staleness is a matter of days, and the end-to-end scenarios can only make claims seconds
apart, so it is pinned down here: claims are seeded straight into ``asset_claims`` with the
``asserted_at`` each case needs, and ``reconciliation.decide`` runs in a transaction on the
``touched`` temp table, as the write side calls it. The rules (``enricher.reconciliation``):
per attribute, a claim older than the newest claim *on that attribute* by more than
``stale_after_days`` loses to any fresh one; then the higher source priority wins; then the
newer claim.

The second part applies staged rows with ``inventory.apply_import`` (what the enricher does
once an import's rows are all in) to pin three inventory rules: a short host name never
replaces the FQDN it abbreviates; an infrastructure file with placeholders enabled claims host
names and addresses only for the placeholders it creates; a placeholder stops being one when a
CMDB import names it, and is one again when that import is reverted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg

import pytest

from contracts import Category, Tenant
from enricher import SCHEMA, identification, inventory, planner_statistics, reconciliation, revert
from enricher.policy import InventoryPolicy
from tributary_runtime import staging
from tributary_runtime.db import Database

DAY = 24 * 60  # minutes, for ``seed.at``

SN, ITAM, RV = "servicenow", "itam", "rvtools"
PRIORITIES = {SN: 10, ITAM: 5}


class Claims:
    """One asset with claims of chosen sources and ages; ``decide`` runs reconciliation on it."""

    def __init__(self, db: Database, seed: Any) -> None:
        self.db, self.seed = db, seed
        self.tenant = seed.tenant()
        self.imports: dict[str, uuid.UUID] = {}
        self.asset_id: uuid.UUID | None = None

    async def claim(self, label: str, source: str, day: float, **values: str) -> None:
        if self.asset_id is None:
            self.asset_id = await self.seed.asset(self.tenant, "erp-01")
        self.imports[label] = uuid.uuid4()
        await self.seed.asset_claim(self.asset_id, self.imports[label], asserted_at=self.seed.at(int(day * DAY)),
                                    category="cmdb_export", source=source, claims=values)

    async def decide(self, **policy: Any) -> dict[str, Any]:
        """{attribute: (value, label of the winning claim)} for environment, OS and criticality."""
        policy.setdefault("source_priorities", PRIORITIES)
        async with self.db.transaction() as conn:
            await reconciliation.start_created(conn)
            await reconciliation.start_touched(conn)
            await conn.execute("INSERT INTO touched VALUES ($1)", self.asset_id)
            await reconciliation.decide(conn, InventoryPolicy(**policy), None, self.seed.at(400 * DAY))
            row = await conn.fetchrow("SELECT environment, operating_system, criticality, provenance FROM assets"
                                      " WHERE asset_id = $1", self.asset_id)
        labels = {str(v): k for k, v in self.imports.items()}
        won = {attr: labels[claim["import_id"]] for claim in row["provenance"] for attr in claim["attributes"]}
        return {attr: (row[attr], won[attr]) for attr in ("environment", "operating_system", "criticality")
                if attr in won}


async def test_a_stale_claim_loses_to_a_fresh_one_whatever_its_priority(db: Database, seed: Any) -> None:
    c = Claims(db, seed)
    await c.claim("sn", SN, 0, environment="production", operating_system="RHEL 8")
    await c.claim("rv", RV, 40, environment="test")
    # 40 days apart: stale after 30, fresh with 60 or without a limit.
    assert await c.decide(stale_after_days=30) == {"environment": ("test", "rv"),
                                                   "operating_system": ("RHEL 8", "sn")}
    assert await c.decide(stale_after_days=60) == {"environment": ("production", "sn"),
                                                   "operating_system": ("RHEL 8", "sn")}
    assert await c.decide(stale_after_days=None) == {"environment": ("production", "sn"),
                                                     "operating_system": ("RHEL 8", "sn")}


async def test_staleness_is_measured_per_attribute(db: Database, seed: Any) -> None:
    """ServiceNow's OS is its only claim on the OS, so it is the newest there and not stale."""
    c = Claims(db, seed)
    await c.claim("sn", SN, 0, environment="production", operating_system="RHEL 8", criticality="high")
    await c.claim("rv", RV, 40, environment="test")
    await c.claim("rv2", RV, 45, criticality="low")
    assert await c.decide(stale_after_days=30) == {"environment": ("test", "rv"),
                                                   "operating_system": ("RHEL 8", "sn"),
                                                   "criticality": ("low", "rv2")}


async def test_exactly_the_limit_is_not_stale(db: Database, seed: Any) -> None:
    c = Claims(db, seed)
    await c.claim("sn", SN, 0, environment="production")
    await c.claim("rv", RV, 30, environment="test")
    assert await c.decide(stale_after_days=30) == {"environment": ("production", "sn")}
    assert await c.decide(stale_after_days=29) == {"environment": ("test", "rv")}


async def test_among_fresh_claims_priority_then_age_decide(db: Database, seed: Any) -> None:
    c = Claims(db, seed)
    await c.claim("sn", SN, 0, environment="production")      # stale: 40 days before the newest
    await c.claim("itam", ITAM, 35, environment="staging")    # fresh, priority 5
    await c.claim("rv", RV, 40, environment="test")           # fresh, newest, priority 0
    assert await c.decide(stale_after_days=30) == {"environment": ("staging", "itam")}
    await c.claim("itam2", ITAM, 38, environment="development")
    assert await c.decide(stale_after_days=30) == {"environment": ("development", "itam2")}
    # Without a limit ServiceNow's priority wins again.
    assert await c.decide() == {"environment": ("production", "sn")}


async def test_among_stale_claims_priority_still_ranks(db: Database, seed: Any) -> None:
    """When only stale claims and one fresh claim exist the fresh one wins; the stale ones keep
    their order among themselves (seen when the fresh claim does not speak of the attribute)."""
    c = Claims(db, seed)
    await c.claim("itam", ITAM, 0, environment="staging", operating_system="Windows")
    await c.claim("sn", SN, 1, environment="production", operating_system="RHEL 8")
    await c.claim("rv", RV, 40, environment="test")
    # environment: both older ones stale, rv fresh. OS: sn is the newest OS claim, itam one day older.
    assert await c.decide(stale_after_days=30) == {"environment": ("test", "rv"),
                                                   "operating_system": ("RHEL 8", "sn")}


# --- inventory rules, applied from staged rows ---------------------------------------------------


class Inventory:
    """A tenant's imports applied from staged rows, one transaction each, as the enricher applies them."""

    def __init__(self, db: Database, seed: Any) -> None:
        self.db = db
        self.tenant: Tenant = seed.tenant()
        self.at = seed.at
        self.minute = 0

    def _apply(self, import_id: uuid.UUID, category: Category, policy: InventoryPolicy) -> inventory.Apply:
        return inventory.Apply(import_id, self.tenant.client_account_id, self.tenant.engagement_id,
                               self.at(self.minute), category, "upload", policy)

    async def apply(self, category: Category, columns: list[str], *rows: list[str | None],
                    policy: InventoryPolicy | None = None) -> tuple[uuid.UUID, dict[str, int]]:
        async with self.db.transaction() as conn:
            return await self.apply_in(conn, category, columns, *rows, policy=policy)

    async def apply_in(self, conn: Any, category: Category, columns: list[str], *rows: list[str | None],
                       policy: InventoryPolicy | None = None) -> tuple[uuid.UUID, dict[str, int]]:
        """The import staged and applied in ``conn``'s transaction, which the caller commits."""
        self.minute += 1
        import_id = uuid.uuid4()
        a = self._apply(import_id, category, policy or InventoryPolicy())
        await staging.stage_rows(conn, import_id, 1, columns, list(range(1, len(rows) + 1)), [list(r) for r in rows],
                                 trim_cells=inventory.TRIM_CELLS)
        counts = await inventory.apply_import(conn, a)
        await inventory.record_run(conn, a, counts)
        return import_id, counts

    async def revert(self, import_id: uuid.UUID, category: Category) -> dict[str, int]:
        self.minute += 1
        async with self.db.transaction() as conn:
            outcome = await revert.revert_import(conn, self._apply(import_id, category, InventoryPolicy()))
        assert outcome is not None
        return outcome.counts

    async def assets(self) -> dict[str, dict[str, Any]]:
        async with self.db.connection() as conn:
            rows = await conn.fetch(
                "SELECT name, hostname, ip_address, asset_type, is_placeholder, performance FROM assets"
                " WHERE client_account_id = $1 AND engagement_id = $2", self.tenant.client_account_id,
                self.tenant.engagement_id)
        return {r["name"]: {k: r[k] for k in ("hostname", "ip_address", "asset_type", "is_placeholder",
                                               "performance")} for r in rows}


async def test_a_short_name_never_replaces_the_fqdn_it_abbreviates(db: Database, seed: Any) -> None:
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT, ["hostname", "environment"], ["web-01.corp.example", "production"],
                    ["db-01", "production"])
    _, counts = await inv.apply(Category.CMDB_EXPORT, ["hostname", "environment"], ["web-01", "staging"],
                                ["db-01.corp.example", "staging"])
    assert (counts["assets_created"], counts["assets_updated"]) == (0, 2)
    assets = await inv.assets()
    # The FQDN stays (and names the asset); a longer name replaces a short one as any newer value does.
    assert {n: a["hostname"] for n, a in assets.items()} == {"web-01.corp.example": "web-01.corp.example",
                                                                "db-01.corp.example": "db-01.corp.example"}


@pytest.mark.parametrize("probe", [True, False], ids=["looked-up-one-by-one", "joined"])
async def test_a_name_finds_exactly_the_assets_that_bear_it_though_a_host_name_is_not_indexed_twice(
        db: Database, seed: Any, probe: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # web-01's name is its host name, stored once, as its FQDN; db-02's name is its own.
    if not probe:
        monkeypatch.setattr(planner_statistics, "MIN_ROWS", 0)
    assert identification.probes(1) is probe
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT, ["name", "hostname", "ip_address"],
                    [None, "web-01.corp.example", "10.0.0.1"], ["Payroll", "db-02", "10.0.0.2"],
                    [None, None, "10.0.0.3"])
    async with db.connection() as conn:
        names = {r[0] for r in await conn.fetch(
            "SELECT value FROM asset_identifiers WHERE client_account_id = $1 AND engagement_id = $2"
            " AND kind = 'name'", inv.tenant.client_account_id, inv.tenant.engagement_id)}
    assert names == {"payroll"}
    # Named by nothing but a name: web-01 by its own; "db-02" is db-02's host, not its name, so it is
    # a new asset; "10.0.0.3" is the name of the asset found by that address.
    _, counts = await inv.apply(Category.CMDB_EXPORT, ["name", "environment"],
                                ["WEB-01.corp.example", "production"], ["db-02", "staging"], ["10.0.0.3", "test"],
                                ["payroll", "production"])
    assert (counts["assets_created"], counts["assets_updated"]) == (1, 3)
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT name, hostname, environment FROM assets WHERE client_account_id = $1"
                                " AND engagement_id = $2", inv.tenant.client_account_id, inv.tenant.engagement_id)
    assert {(r["name"], r["hostname"], r["environment"]) for r in rows} == {
        ("WEB-01.corp.example", "web-01.corp.example", "production"), ("payroll", "db-02", "production"),
        ("10.0.0.3", None, "test"), ("db-02", None, "staging")}
    # An application-discovery endpoint resolves by name the same way.
    _, counts = await inv.apply(Category.APP_DISCOVERY, ["source", "target", "target_type", "port", "protocol"],
                                ["billing", "web-01.corp.example", "server", "443", "TCP"],
                                ["billing", "payroll", "database", "5432", "TCP"])
    async with db.connection() as conn:
        targets = {r[0] for r in await conn.fetch(
            "SELECT t.name FROM asset_dependencies d JOIN assets t ON t.asset_id = d.target_asset_id"
            " WHERE d.client_account_id = $1 AND d.engagement_id = $2",
            inv.tenant.client_account_id, inv.tenant.engagement_id)}
    assert targets == {"WEB-01.corp.example", "payroll"}


async def test_placeholder_policy_claims_identity_only_for_the_placeholders(db: Database, seed: Any) -> None:
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT, ["hostname", "ip_address", "asset_type"],
                    ["web-01.corp.example", "10.0.0.1", "server"])
    _, counts = await inv.apply(Category.INFRASTRUCTURE, ["hostname", "ip_address", "cpu_avg_pct"],
                                ["web-01", "10.9.9.9", "20"], ["ghost-01", "10.0.0.99", "40"],
                                policy=InventoryPolicy(create_placeholders=True))
    assert (counts["assets_created"], counts["assets_updated"], counts["placeholders_created"]) == (1, 1, 1)
    assert await inv.assets() == {
        "web-01.corp.example": {"hostname": "web-01.corp.example", "ip_address": "10.0.0.1", "asset_type": "server",
                                "is_placeholder": False, "performance": {"cpu_avg_pct": 20}},
        "ghost-01": {"hostname": "ghost-01", "ip_address": "10.0.0.99", "asset_type": "server",
                     "is_placeholder": True, "performance": {"cpu_avg_pct": 40}},
    }


async def test_a_placeholder_named_by_the_cmdb_is_real_until_that_import_is_reverted(db: Database,
                                                                                     seed: Any) -> None:
    inv = Inventory(db, seed)
    await inv.apply(Category.INFRASTRUCTURE, ["hostname", "cpu_avg_pct"], ["ghost-01", "40"],
                    policy=InventoryPolicy(create_placeholders=True))
    cmdb, counts = await inv.apply(Category.CMDB_EXPORT, ["hostname", "asset_type"], ["ghost-01", "virtual_machine"])
    assert (counts["assets_created"], counts["assets_updated"]) == (0, 1)
    assert await inv.assets() == {"ghost-01": {"hostname": "ghost-01", "ip_address": None,
                                               "asset_type": "virtual_machine", "is_placeholder": False,
                                               "performance": {"cpu_avg_pct": 40}}}
    assert (await inv.revert(cmdb, Category.CMDB_EXPORT))["assets_restored"] == 1
    assert await inv.assets() == {"ghost-01": {"hostname": "ghost-01", "ip_address": None, "asset_type": "server",
                                               "is_placeholder": True, "performance": {"cpu_avg_pct": 40}}}


async def test_a_revert_that_removes_assets_removes_their_identifiers(db: Database, seed: Any) -> None:
    # Identifiers are a derived index with no foreign key to cascade (migration 0006): the revert removes them.
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT, ["hostname", "ip_address"], ["web-01.corp.example", "10.0.0.1"])
    second, _ = await inv.apply(Category.CMDB_EXPORT, ["hostname", "ip_address", "serial_number"],
                                ["db-01.corp.example", "10.0.0.2", "SN-1"])

    async def identifiers() -> set[tuple[str, str]]:
        async with db.connection() as conn:
            rows = await conn.fetch("SELECT kind, value FROM asset_identifiers WHERE client_account_id = $1"
                                    " AND engagement_id = $2", inv.tenant.client_account_id, inv.tenant.engagement_id)
        return {(r["kind"], r["value"]) for r in rows}

    assert ("serial", "SN-1") in await identifiers()
    assert (await inv.revert(second, Category.CMDB_EXPORT))["assets_removed"] == 1
    # Named after its host name: the name is not indexed a second time.
    assert await identifiers() == {("fqdn", "web-01.corp.example"), ("host", "web-01"), ("ip", "10.0.0.1")}
    async with db.connection() as conn:
        dangling = await conn.fetchval("SELECT count(*) FROM asset_identifiers i WHERE i.client_account_id = $1"
                                       " AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.asset_id = i.asset_id)",
                                       inv.tenant.client_account_id)
    assert dangling == 0


async def test_a_large_imports_identifiers_are_sorted_in_the_collation_of_their_key(db: Database) -> None:
    # Sorted in another collation they would reach the insert in the key's order all the same
    # (byte order and the database's "C.UTF-8" agree), only slower: without abbreviated keys, each
    # comparison through the C library.
    async with db.transaction() as conn:
        key = {r["column_name"]: r["collation_name"] for r in await conn.fetch(
            "SELECT column_name, collation_name FROM information_schema.columns WHERE table_schema = $1"
            " AND table_name = 'asset_identifiers' AND column_name IN ('kind', 'value')", SCHEMA)}
        await conn.execute("CREATE TEMP TABLE created (LIKE assets)")
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON, VERBOSE) "
                                   + reconciliation.identifiers_in_key_order("created"))
    sort_keys = []
    nodes = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        sort_keys.extend(node.get("Sort Key", []))
        nodes.extend(node.get("Plans", []))
    assert key == {"kind": "C", "value": "C"}
    assert len(sort_keys) == len(reconciliation.IDENTIFIER_KINDS)
    assert all(k.endswith('COLLATE "C"') for k in sort_keys), sort_keys


@pytest.mark.parametrize("large_from", [inventory.IDENTIFIERS_IN_KEY_ORDER_FROM, 0],
                         ids=["applied-as-a-small-import", "applied-as-a-large-import"])
async def test_an_asset_is_created_with_the_values_deciding_would_give_it(db: Database, seed: Any, large_from: int,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Created assets skip deciding (reconciliation's module docstring): deciding them again
    # afterwards must change nothing, neither a value nor a provenance entry nor an identifier,
    # whichever order a large import inserts the identifiers in (and with ``identified``'s index
    # built after it is filled, ``incoming`` made by CREATE TABLE AS and the new assets' claims
    # inserted unchecked, as for a large import).
    monkeypatch.setattr(inventory, "IDENTIFIERS_IN_KEY_ORDER_FROM", large_from)
    monkeypatch.setattr(inventory, "CREATED_CLAIMS_UNCHECKED_FROM", large_from)
    monkeypatch.setattr(inventory, "INCOMING_IN_PARALLEL_FROM", large_from)
    monkeypatch.setattr(identification, "INDEX_AFTER_FROM", large_from)
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT,
                    ["name", "hostname", "mac_address", "environment", "cpu_avg_pct", "regulation", "owner"],
                    ["Web One", "web-01.corp.example", None, "production", "12.5", "PCI,SOX", "team-a"],
                    ["", "web-01.corp.example", "AA:BB", "staging", None, None, "team-b"],  # same asset, wins
                    [None, None, "CC:DD", None, None, None, None],  # named by nothing but its first row's MAC
                    ["Lab Printer", None, "EE:FF", None, None, None, None],
                    # The same asset: its claim, which names nothing, leaves it its first row's name.
                    [None, None, "EE:FF", "production", None, None, None])
    await inv.apply(Category.CMDB_EXPORT, ["hostname", "environment", "criticality", "external_id", "source"],
                    ["db-01.corp.example", "", "high", "CI-7", "ServiceNow"],
                    ["db-02", "", "low", "CI-8", ""], policy=InventoryPolicy(empty_overwrites=True))
    await inv.apply(Category.INFRASTRUCTURE, ["hostname", "ip_address", "cpu_avg_pct", "collected_at"],
                    ["ghost-01", "10.0.0.99", "40", "2026-03-02"], ["ghost-01", "10.0.0.98", "70", "2026-03-01"],
                    policy=InventoryPolicy(create_placeholders=True))
    columns = "asset_id, name, asset_type, hostname, fqdn, ip_address, mac_address, serial_number, external_id," \
              " source, environment, criticality, operating_system, attributes, performance, classification," \
              " compliance_flags, provenance, is_placeholder, last_import_id, updated_at"
    tenant = (inv.tenant.client_account_id, inv.tenant.engagement_id)
    query = f"SELECT {columns} FROM assets WHERE client_account_id = $1 AND engagement_id = $2 ORDER BY asset_id"
    identifiers = ("SELECT kind, value, asset_id FROM asset_identifiers WHERE client_account_id = $1"
                   " AND engagement_id = $2 ORDER BY 1, 2, 3")
    async with db.transaction() as conn:
        created = [dict(r) for r in await conn.fetch(query, *tenant)]
        indexed = [tuple(r) for r in await conn.fetch(identifiers, *tenant)]
        await reconciliation.start_created(conn)
        await reconciliation.start_touched(conn)
        await conn.execute("INSERT INTO touched SELECT asset_id FROM assets WHERE client_account_id = $1"
                           " AND engagement_id = $2", *tenant)
        decided = await reconciliation.decide(conn, InventoryPolicy(), uuid.uuid4(), inv.at(60))
        after = [dict(r) for r in await conn.fetch(query, *tenant)]
        reindexed = [tuple(r) for r in await conn.fetch(identifiers, *tenant)]
    assert len(created) == 6
    assert decided == 0
    assert after == created
    assert reindexed == indexed
    assert {(kind, value) for kind, value, _ in indexed if kind == "source_key"} == {
        ("source_key", "servicenow|ci-7"), ("source_key", "upload|ci-8")}
    by_name = {a["name"]: a for a in created}
    web = by_name["web-01.corp.example"]
    assert (web["environment"], web["mac_address"], web["attributes"]) == ("staging", "AA:BB", {"owner": "team-b"})
    # One claim won every attribute: one element naming them all.
    [won] = web["provenance"]
    assert (won["source"], sorted(won["attributes"])) == ("upload", ["environment", "hostname", "mac_address", "owner"])
    assert by_name["ghost-01"]["performance"] == {"cpu_avg_pct": 40, "collected_at": "2026-03-02"}
    printer = by_name["Lab Printer"]
    assert (printer["mac_address"], printer["environment"]) == ("EE:FF", "production")


# A trigger that notes every claim row it sees inserted: an ordinary trigger fires as the foreign
# key's check does, and not where the checks are switched off (session_replication_role).
_NOTE_CLAIMS = """
CREATE TEMP TABLE noted (asset_id uuid NOT NULL);
CREATE FUNCTION note_claim() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO pg_temp.noted VALUES (NEW.asset_id); RETURN NEW; END$$;
CREATE TRIGGER note_claim AFTER INSERT ON asset_claims FOR EACH ROW EXECUTE FUNCTION note_claim();
"""


@pytest.mark.parametrize("may_skip", [True, False], ids=["role-may-skip-triggers", "role-may-not"])
async def test_a_large_import_claims_its_new_assets_without_checking_their_references(
        db: Database, seed: Any, may_skip: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # CREATED_CLAIMS_UNCHECKED_FROM: the claims of the assets a large import creates skip their
    # foreign key's check, where the role may switch it off; the claims of assets that existed keep
    # it, and so does every statement after the insert.
    monkeypatch.setattr(inventory, "CREATED_CLAIMS_UNCHECKED_FROM", 0)
    if not may_skip:
        async def refused(conn: Any) -> bool:
            return False
        monkeypatch.setattr(inventory, "_may_skip_triggers", refused)
    inv = Inventory(db, seed)
    await inv.apply(Category.CMDB_EXPORT, ["hostname"], ["web-01"])
    async with db.connection() as conn:
        work = conn.transaction()
        await work.start()
        try:
            await conn.execute(_NOTE_CLAIMS)  # rolled back with the import
            import_id, counts = await inv.apply_in(conn, Category.CMDB_EXPORT, ["hostname"], ["web-01"], ["db-01"],
                                                   ["app-01"])
            claimed = {r["hostname"]: r["asset_id"] for r in await conn.fetch(
                "SELECT a.hostname, a.asset_id FROM asset_claims c JOIN assets a USING (asset_id)"
                " WHERE c.import_id = $1", import_id)}
            noted = {r["asset_id"] for r in await conn.fetch("SELECT asset_id FROM pg_temp.noted")}
            role = await conn.fetchval("SHOW session_replication_role")
        finally:
            await work.rollback()
    assert (counts["assets_created"], counts["assets_unchanged"]) == (2, 1)
    assert set(claimed) == {"web-01", "db-01", "app-01"}
    checked = {"web-01", "db-01", "app-01"} if not may_skip else {"web-01"}
    assert noted == {claimed[h] for h in checked}
    assert role == "origin"


async def test_only_a_privileged_role_may_switch_the_checks_off(db: Database) -> None:
    role = f"tributary_plain_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        work = conn.transaction()
        await work.start()
        try:
            superuser = await inventory._may_skip_triggers(conn)  # noqa: SLF001 - the tests run as a superuser
            await conn.execute(f"CREATE ROLE {role}; SET LOCAL ROLE {role}")
            plain = await inventory._may_skip_triggers(conn)  # noqa: SLF001
            await conn.execute(f"RESET ROLE; GRANT SET ON PARAMETER session_replication_role TO {role};"
                               f" SET LOCAL ROLE {role}")
            granted = await inventory._may_skip_triggers(conn)  # noqa: SLF001
        finally:
            await work.rollback()
    assert (superuser, plain, granted) == (True, False, True)


@pytest.mark.parametrize("index_after_from", [identification.INDEX_AFTER_FROM, 0], ids=["kept-up", "built-after"])
async def test_the_identified_rows_keep_their_index_by_asset_id_however_they_were_filled(
        db: Database, seed: Any, index_after_from: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identification, "INDEX_AFTER_FROM", index_after_from)
    inv = Inventory(db, seed)
    async with db.transaction() as conn:
        for _ in range(2):  # the second import finds the index the first one left
            _, counts = await inv.apply_in(conn, Category.CMDB_EXPORT, ["hostname"], ["web-01"], ["db-01"])
            indexed = await conn.fetchval(
                "SELECT count(*) FROM pg_class WHERE relname = 'identified_asset' AND relnamespace = pg_my_temp_schema()")
            rows = await conn.fetchval("SELECT count(*) FROM identified WHERE asset_id IS NOT NULL")
            assert (indexed, rows) == (1, 2)
        assert (counts["assets_created"], counts["assets_unchanged"]) == (0, 2)


async def test_every_asset_holds_exactly_the_identifiers_its_values_and_claims_derive(db: Database, seed: Any) -> None:
    # Nothing finds an asset's identifiers by asset id (migration 0008): they are derived from its
    # values and claims and looked up by key. So after every change the table must hold exactly what
    # derived_identifiers gives, or an identifier an asset no longer has would outlive it.
    inv = Inventory(db, seed)
    tenant = (inv.tenant.client_account_id, inv.tenant.engagement_id)
    derived = reconciliation.derived_identifiers("a.client_account_id = $1 AND a.engagement_id = $2")

    async def identifiers() -> set[tuple[str, str]]:
        async with db.connection() as conn:
            stored = {tuple(r) for r in await conn.fetch(
                "SELECT kind, value, asset_id FROM asset_identifiers WHERE client_account_id = $1"
                " AND engagement_id = $2", *tenant)}
            wanted = {tuple(r) for r in await conn.fetch(f"SELECT kind, value, asset_id FROM ({derived}) d", *tenant)}
        assert stored == wanted
        return {(kind, value) for kind, value, _ in stored}

    cmdb = ["hostname", "ip_address", "external_id", "source"]
    first, _ = await inv.apply(Category.CMDB_EXPORT, cmdb, ["web-01.corp.example", "10.0.0.1", "CI-1", "ServiceNow"],
                               ["db-01.corp.example", "10.0.0.2", "", ""])
    assert {("source_key", "servicenow|ci-1"), ("ip", "10.0.0.1")} <= await identifiers()
    # Another source's key for web-01, and a new address: the old one goes, the key joins the first.
    second, _ = await inv.apply(Category.CMDB_EXPORT, cmdb, ["web-01.corp.example", "10.0.0.9", "A-77", "Tanium"])
    held = await identifiers()
    assert {("source_key", "servicenow|ci-1"), ("source_key", "tanium|a-77"), ("ip", "10.0.0.9")} <= held
    assert ("ip", "10.0.0.1") not in held
    await inv.apply(Category.INFRASTRUCTURE, ["hostname", "ip_address", "cpu_avg_pct"], ["ghost-01", "10.0.0.99", "40"],
                    policy=InventoryPolicy(create_placeholders=True))
    await inv.apply(Category.APP_DISCOVERY, ["source", "target", "target_type", "port", "protocol"],
                    ["billing", "db-01.corp.example", "database", "5432", "TCP"])
    assert {("host", "ghost-01"), ("name", "billing")} <= await identifiers()

    # The revert deletes the claim the Tanium key came from: the key goes, the old address returns.
    await inv.revert(second, Category.CMDB_EXPORT)
    held = await identifiers()
    assert ("source_key", "tanium|a-77") not in held
    assert {("source_key", "servicenow|ci-1"), ("ip", "10.0.0.1")} <= held
    assert ("ip", "10.0.0.9") not in held
    # The assets only the first import named go, and everything they were found by with them.
    assert (await inv.revert(first, Category.CMDB_EXPORT))["assets_removed"] == 2
    assert await identifiers() == {("host", "ghost-01"), ("ip", "10.0.0.99"), ("name", "billing")}


async def test_an_import_deciding_an_asset_another_is_changing_refreshes_from_what_that_one_committed(
        db: Database, seed: Any, seeded_database_url: str) -> None:
    # Two imports of one tenant, applied at once on two partitions, both readdress web-01. The
    # second decides only once the first has committed, and must drop the address the first
    # gave, though it was not there when the second began: it finds what to drop from the
    # asset's values, so it has to read them after the first's commit.
    inv = Inventory(db, seed)
    tenant = (inv.tenant.client_account_id, inv.tenant.engagement_id)
    cols = ["hostname", "ip_address"]
    await inv.apply(Category.CMDB_EXPORT, cols, ["web-01.corp.example", "10.0.0.1"])
    admin = await asyncpg.connect(seeded_database_url)
    racing = await Database.connect(seeded_database_url, SCHEMA, min_size=2, max_size=2)  # ``seed`` holds one of db's
    try:
        async with racing.connection() as first, racing.connection() as second:
            second_pid = await second.fetchval("SELECT pg_backend_pid()")
            first_tx, second_tx = first.transaction(), second.transaction()
            await first_tx.start()
            await inv.apply_in(first, Category.CMDB_EXPORT, cols, ["web-01.corp.example", "10.0.0.2"])
            await second_tx.start()
            applying = asyncio.create_task(
                inv.apply_in(second, Category.CMDB_EXPORT, cols, ["web-01.corp.example", "10.0.0.3"]))
            while not await admin.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                                           second_pid):
                assert not applying.done(), "the second import did not wait for the first"
                await asyncio.sleep(0.02)
            await first_tx.commit()
            await applying
            await second_tx.commit()
        stored = {tuple(r) for r in await admin.fetch(
            "SELECT kind, value, asset_id FROM enricher.asset_identifiers WHERE client_account_id = $1"
            " AND engagement_id = $2", *tenant)}
        derived = reconciliation.derived_identifiers("a.client_account_id = $1 AND a.engagement_id = $2")
        await admin.execute("SET search_path = enricher")
        wanted = {tuple(r) for r in await admin.fetch(f"SELECT kind, value, asset_id FROM ({derived}) d", *tenant)}
    finally:
        await racing.close()
        await admin.close()
    assert stored == wanted
    assert {value for kind, value, _ in stored if kind == "ip"} == {"10.0.0.3"}


@pytest.mark.parametrize("probe", [True, False], ids=["looked-up-one-by-one", "joined"])
async def test_tenants_are_numbered_as_first_applied_to_and_each_finds_only_its_own_assets(
        db: Database, seed: Any, probe: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # enricher.tenants: a new tenant's identifiers are keyed after every other tenant's, whatever
    # its ids; applying to a numbered tenant spends no number.
    if not probe:
        monkeypatch.setattr(planner_statistics, "MIN_ROWS", 0)
    first, second, third = Inventory(db, seed), Inventory(db, seed), Inventory(db, seed)
    first.tenant = Tenant(client_account_id=uuid.UUID(int=2**128 - 1), engagement_id=uuid.uuid4())
    second.tenant = Tenant(client_account_id=uuid.UUID(int=1), engagement_id=uuid.uuid4())
    created = []
    for inv in (first, second, first, second, third):
        _, counts = await inv.apply(Category.CMDB_EXPORT, ["hostname", "ip_address"],
                                    ["web-01.corp.example", "10.0.0.1"])
        created.append(counts["assets_created"])
    # The same identifiers, one asset per tenant: each re-import found its own tenant's.
    assert created == [1, 1, 0, 0, 1]
    ids = [inv.tenant.engagement_id for inv in (first, second, third)]
    async with db.connection() as conn:
        numbers = [await conn.fetchval("SELECT tenant_no FROM tenants WHERE engagement_id = $1", i) for i in ids]
        keyed = {tuple(r) for r in await conn.fetch(
            "SELECT DISTINCT engagement_id, tenant_no FROM asset_identifiers WHERE engagement_id = ANY($1)", ids)}
    assert numbers[1] == numbers[0] + 1 and numbers[2] == numbers[1] + 1
    assert keyed == set(zip(ids, numbers, strict=True))
