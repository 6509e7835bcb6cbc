"""The inventory read queries against a freshly migrated database, rows seeded straight into its tables.

Every test works in tenants of its own (the database is shared by the session), so counts are exact.
``seed`` (conftest) inserts rows as the write side would leave them.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts import Tenant
from enricher import queries
from tributary_runtime.db import Database


async def names(db: Database, tenant: Tenant, **filters: Any) -> tuple[int, list[str]]:
    async with db.connection() as conn:
        total, rows = await queries.list_assets(conn, tenant, **filters)
    return total, [r["name"] for r in rows]


async def test_assets_are_the_tenants_own_ordered_by_name_and_paged(db: Database, seed: Any) -> None:
    tenant, other = seed.tenant(), seed.tenant()
    for name in ("web-02", "App-01", "db-01", "web-01", "Cache-01"):
        await seed.asset(tenant, name)
    await seed.asset(other, "web-03")
    # same client, other engagement: still another tenant
    await seed.asset(seed.tenant().model_copy(update={"client_account_id": tenant.client_account_id}), "web-04")

    assert await names(db, tenant) == (5, ["App-01", "Cache-01", "db-01", "web-01", "web-02"])
    assert await names(db, tenant, limit=2, offset=0) == (5, ["App-01", "Cache-01"])
    assert await names(db, tenant, limit=2, offset=2) == (5, ["db-01", "web-01"])
    assert await names(db, tenant, limit=2, offset=4) == (5, ["web-02"])
    assert await names(db, tenant, limit=2, offset=6) == (5, [])
    assert await names(db, other) == (1, ["web-03"])
    assert await names(db, seed.tenant()) == (0, [])


async def test_asset_summary_columns(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    asset_id = await seed.asset(tenant, "web-01", asset_type="server", hostname="web-01", fqdn="web-01.corp.example",
                                ip_address="10.0.0.5", environment="production", criticality="high",
                                operating_system="RHEL 9", compliance_flags=["PCI-DSS", "GDPR"],
                                updated_at=seed.at(5))
    async with db.connection() as conn:
        _, [row] = await queries.list_assets(conn, tenant)
    assert row == {"asset_id": asset_id, "name": "web-01", "asset_type": "server", "hostname": "web-01",
                   "fqdn": "web-01.corp.example", "ip_address": "10.0.0.5", "environment": "production",
                   "criticality": "high", "operating_system": "RHEL 9", "is_placeholder": False,
                   "compliance_flags": ["PCI-DSS", "GDPR"], "updated_at": seed.at(5)}


async def test_asset_value_filters_ignore_case(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    await seed.asset(tenant, "a", asset_type="server", environment="production", criticality="high")
    await seed.asset(tenant, "b", asset_type="database", environment="production", criticality="low")
    await seed.asset(tenant, "c", asset_type="server", environment="development", criticality="high")
    await seed.asset(tenant, "d")
    await seed.asset(seed.tenant(), "x", asset_type="server", environment="production", criticality="high")

    assert await names(db, tenant, asset_type="server") == (2, ["a", "c"])
    assert await names(db, tenant, asset_type="SERVER") == (2, ["a", "c"])
    assert await names(db, tenant, environment="Production") == (2, ["a", "b"])
    assert await names(db, tenant, criticality="high") == (2, ["a", "c"])
    assert await names(db, tenant, asset_type="server", environment="production", criticality="high") == (1, ["a"])
    assert await names(db, tenant, asset_type="router") == (0, [])


async def test_classification_filter_matches_one_label_of_the_list(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    await seed.asset(tenant, "pii-pci", classification={"classification": "PII,PCI", "data_owner": "finance"})
    await seed.asset(tenant, "pii", classification={"classification": "PII"})
    await seed.asset(tenant, "phi-spaced", classification={"classification": "PHI, confidential"})
    await seed.asset(tenant, "as-array", classification={"classification": ["PCI", "internal"]})
    await seed.asset(tenant, "unclassified")
    await seed.asset(seed.tenant(), "elsewhere", classification={"classification": "PII"})

    assert await names(db, tenant, classification="PII") == (2, ["pii", "pii-pci"])
    assert await names(db, tenant, classification="pci") == (2, ["as-array", "pii-pci"])
    assert await names(db, tenant, classification="confidential") == (1, ["phi-spaced"])
    assert await names(db, tenant, classification="PHI") == (1, ["phi-spaced"])
    # a label, not a substring
    assert await names(db, tenant, classification="PI") == (0, [])
    assert await names(db, tenant, classification="PII,PCI") == (0, [])


async def test_import_filter_is_assets_claimed_by_that_import(db: Database, seed: Any) -> None:
    tenant, other = seed.tenant(), seed.tenant()
    first, second = uuid.uuid4(), uuid.uuid4()
    a = await seed.asset(tenant, "a", import_id=first)
    b = await seed.asset(tenant, "b", import_id=second)
    c = await seed.asset(tenant, "c", import_id=second)
    await seed.asset_claim(a, first, asserted_at=seed.at(0))
    await seed.asset_claim(a, second, asserted_at=seed.at(10), source="rvtools")
    await seed.asset_claim(b, second, asserted_at=seed.at(10), source="rvtools")
    await seed.asset_claim(c, uuid.uuid4(), asserted_at=seed.at(20))
    # another tenant's asset claimed by the same import id is not listed
    x = await seed.asset(other, "x")
    await seed.asset_claim(x, first, asserted_at=seed.at(0))

    assert await names(db, tenant, import_id=first) == (1, ["a"])
    assert await names(db, tenant, import_id=second) == (2, ["a", "b"])
    assert await names(db, tenant, import_id=uuid.uuid4()) == (0, [])


async def test_placeholder_filter(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    await seed.asset(tenant, "real")
    await seed.asset(tenant, "ghost", is_placeholder=True)
    assert await names(db, tenant, placeholder=True) == (1, ["ghost"])
    assert await names(db, tenant, placeholder=False) == (1, ["real"])
    assert await names(db, tenant, placeholder=None) == (2, ["ghost", "real"])


async def test_search_is_a_substring_of_name_hostname_fqdn_or_ip(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    await seed.asset(tenant, "Payments API", hostname="pay-app-01", fqdn="pay-app-01.corp.example",
                     ip_address="10.1.2.3")
    await seed.asset(tenant, "Ledger", hostname="ledger_db", ip_address="10.1.20.7")
    await seed.asset(tenant, "100% uptime", hostname="svc-9")
    await seed.asset(seed.tenant(), "Payments API elsewhere")

    assert await names(db, tenant, q="payments") == (1, ["Payments API"])
    assert await names(db, tenant, q="APP-01") == (1, ["Payments API"])
    assert await names(db, tenant, q="corp.example") == (1, ["Payments API"])
    assert await names(db, tenant, q="10.1.2") == (2, ["Ledger", "Payments API"])
    assert await names(db, tenant, q="10.1.2.") == (1, ["Payments API"])
    assert await names(db, tenant, q=" ledger ") == (1, ["Ledger"])
    # wildcards are literal
    assert await names(db, tenant, q="%") == (1, ["100% uptime"])
    assert await names(db, tenant, q="r_d") == (1, ["Ledger"])
    assert await names(db, tenant, q="_") == (1, ["Ledger"])
    # blank: no filter
    assert await names(db, tenant, q="  ") == (3, ["100% uptime", "Ledger", "Payments API"])


async def test_one_asset_with_edges_both_ways_provenance_and_claims(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    first, second = uuid.uuid4(), uuid.uuid4()
    by_first = {"import_id": str(first), "source": "servicenow", "set_at": seed.at(0).isoformat()}
    by_second = {"import_id": str(second), "source": "rvtools", "set_at": seed.at(10).isoformat()}
    # Stored by claim; shown by attribute.
    stored = [by_first | {"attributes": ["hostname", "mac_address"]}, by_second | {"attributes": ["operating_system"]}]
    provenance = {"hostname": by_first, "mac_address": by_first, "operating_system": by_second}
    app = await seed.asset(tenant, "app-01", import_id=first, asset_type="application", hostname="app-01",
                           mac_address="00:11:22:33:44:55", serial_number="SN1", external_id="CI001",
                           source="servicenow", operating_system="RHEL 9", attributes={"owner": "team-a"},
                           performance={"cpu_utilization_p95": 61.5}, classification={"classification": "PII"},
                           compliance_flags=["GDPR"], provenance=stored, last_import_id=second,
                           updated_at=seed.at(10))
    db_ = await seed.asset(tenant, "db-01")
    lb = await seed.asset(tenant, "lb-01", is_placeholder=True)
    cache = await seed.asset(tenant, "Cache-01")
    out_db = await seed.dependency(tenant, app, db_, port=5432, protocol="TCP", criticality="high", confidence=0.9,
                                   provenance={"import_id": str(first), "set_at": seed.at(0).isoformat()})
    out_cache = await seed.dependency(tenant, app, cache, port=6379, protocol="TCP")
    in_lb = await seed.dependency(tenant, lb, app, port=443, protocol="HTTPS")
    await seed.dependency(tenant, lb, db_)  # not app's
    await seed.asset_claim(app, second, asserted_at=seed.at(10), category="cmdb", source="rvtools", row_number=7,
                           claims={"operating_system": "RHEL 9"})
    await seed.asset_claim(app, first, asserted_at=seed.at(0), category="cmdb", source="servicenow", row_number=3,
                           claims={"hostname": "app-01", "operating_system": "RHEL 8"})

    async with db.connection() as conn:
        asset = await queries.get_asset(conn, tenant, app)
    assert asset is not None
    assert {k: asset[k] for k in ("asset_id", "name", "asset_type", "mac_address", "serial_number", "external_id",
                                  "source", "attributes", "performance", "classification", "compliance_flags",
                                  "provenance", "is_placeholder", "created_by_import", "last_import_id")} == {
        "asset_id": app, "name": "app-01", "asset_type": "application", "mac_address": "00:11:22:33:44:55",
        "serial_number": "SN1", "external_id": "CI001", "source": "servicenow", "attributes": {"owner": "team-a"},
        "performance": {"cpu_utilization_p95": 61.5}, "classification": {"classification": "PII"},
        "compliance_flags": ["GDPR"], "provenance": provenance, "is_placeholder": False,
        "created_by_import": first, "last_import_id": second}
    assert set(asset) == set(queries.ASSET_DETAIL) | {"dependencies", "claims"}

    outgoing = asset["dependencies"]["outgoing"]
    assert [(d["dependency_id"], d["target_asset_id"], d["target_name"]) for d in outgoing] == [
        (out_cache, cache, "Cache-01"), (out_db, db_, "db-01")]
    assert {d["source_asset_id"] for d in outgoing} == {app}
    edge = outgoing[1]
    assert (edge["port"], edge["protocol"], edge["criticality"], edge["confidence"]) == (5432, "TCP", "high", 0.9)
    assert edge["provenance"] == {"import_id": str(first), "set_at": seed.at(0).isoformat()}
    incoming = asset["dependencies"]["incoming"]
    assert [(d["dependency_id"], d["source_asset_id"], d["source_name"], d["target_name"]) for d in incoming] == [
        (in_lb, lb, "lb-01", "app-01")]

    assert [(c["import_id"], c["source"], c["row_number"]) for c in asset["claims"]] == [
        (first, "servicenow", 3), (second, "rvtools", 7)]
    assert asset["claims"][0] == {"import_id": first, "category": "cmdb", "source": "servicenow",
                                  "asserted_at": seed.at(0), "row_number": 3,
                                  "claims": {"hostname": "app-01", "operating_system": "RHEL 8"}}


async def test_another_tenants_asset_is_not_found(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    asset_id = await seed.asset(tenant, "web-01")
    async with db.connection() as conn:
        assert await queries.get_asset(conn, tenant, asset_id) is not None
        assert await queries.get_asset(conn, seed.tenant(), asset_id) is None
        assert await queries.get_asset(
            conn, seed.tenant().model_copy(update={"client_account_id": tenant.client_account_id}), asset_id) is None
        assert await queries.get_asset(conn, tenant, uuid.uuid4()) is None


async def test_asset_without_edges_or_claims(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    asset_id = await seed.asset(tenant, "lonely")
    async with db.connection() as conn:
        asset = await queries.get_asset(conn, tenant, asset_id)
    assert asset is not None
    assert asset["dependencies"] == {"outgoing": [], "incoming": []}
    assert asset["claims"] == []
    assert (asset["attributes"], asset["performance"], asset["classification"], asset["provenance"],
            asset["compliance_flags"]) == ({}, {}, {}, {}, [])


async def edges(db: Database, tenant: Tenant, **filters: Any) -> tuple[int, list[tuple[str, str]]]:
    async with db.connection() as conn:
        total, rows = await queries.list_dependencies(conn, tenant, **filters)
    return total, [(r["source_name"], r["target_name"]) for r in rows]


async def test_dependency_filters_and_paging(db: Database, seed: Any) -> None:
    tenant, other = seed.tenant(), seed.tenant()
    imp = uuid.uuid4()
    app, db_, cache, lb = [await seed.asset(tenant, n) for n in ("App-01", "db-01", "cache-01", "lb-01")]
    await seed.dependency(tenant, app, db_, port=5432, protocol="TCP", criticality="high", import_id=imp)
    await seed.dependency(tenant, app, cache, port=6379, protocol="TCP", criticality="medium", import_id=imp)
    await seed.dependency(tenant, lb, app, port=443, protocol="HTTPS", criticality="high")
    await seed.dependency(tenant, app, db_, port=5433, protocol="tcp")
    x, y = await seed.asset(other, "App-01"), await seed.asset(other, "db-01")
    await seed.dependency(other, x, y, port=5432, protocol="TCP", criticality="high", import_id=imp)

    everything = [("App-01", "cache-01"), ("App-01", "db-01"), ("App-01", "db-01"), ("lb-01", "App-01")]
    assert await edges(db, tenant) == (4, everything)
    assert await edges(db, tenant, limit=3, offset=0) == (4, everything[:3])
    assert await edges(db, tenant, limit=3, offset=3) == (4, everything[3:])
    assert await edges(db, tenant, source="app-01") == (3, everything[:3])
    assert await edges(db, tenant, source=str(app)) == (3, everything[:3])
    assert await edges(db, tenant, target="APP-01") == (1, [("lb-01", "App-01")])
    assert await edges(db, tenant, target=str(app)) == (1, [("lb-01", "App-01")])
    assert await edges(db, tenant, source="app-01", target="db-01") == (2, everything[1:3])
    assert await edges(db, tenant, source=str(x)) == (0, [])  # the other tenant's asset id
    assert await edges(db, tenant, source="app") == (0, [])  # a name, not a substring
    assert await edges(db, tenant, protocol="tcp") == (3, everything[:3])
    assert await edges(db, tenant, port=5432) == (1, [("App-01", "db-01")])
    assert await edges(db, tenant, criticality="HIGH") == (2, [("App-01", "db-01"), ("lb-01", "App-01")])
    assert await edges(db, tenant, import_id=imp) == (2, everything[:2])
    assert await edges(db, other) == (1, [("App-01", "db-01")])


async def test_dependency_items_carry_provenance_and_both_ids(db: Database, seed: Any) -> None:
    tenant = seed.tenant()
    a, b = await seed.asset(tenant, "a"), await seed.asset(tenant, "b")
    provenance = {"import_id": str(uuid.uuid4()), "set_at": seed.at(1).isoformat()}
    dependency_id = await seed.dependency(tenant, a, b, port=80, protocol="HTTP", confidence=0.75,
                                          provenance=provenance)
    async with db.connection() as conn:
        _, [row] = await queries.list_dependencies(conn, tenant)
    assert (row["dependency_id"], row["source_asset_id"], row["target_asset_id"]) == (dependency_id, a, b)
    assert (row["confidence"], row["dependency_type"], row["provenance"]) == (0.75, "network", provenance)


async def test_parked_edges(db: Database, seed: Any) -> None:
    tenant, other = seed.tenant(), seed.tenant()
    first, second = uuid.uuid4(), uuid.uuid4()
    await seed.parked(tenant, second, 4, asserted_at=seed.at(10), missing="source")
    await seed.parked(tenant, first, 2, asserted_at=seed.at(0))
    await seed.parked(tenant, first, 1, asserted_at=seed.at(0))
    await seed.parked(other, first, 3, asserted_at=seed.at(0))

    async with db.connection() as conn:
        total, rows = await queries.list_parked(conn, tenant)
        assert (total, [(r["import_id"], r["row_number"]) for r in rows]) == (
            3, [(first, 1), (first, 2), (second, 4)])
        assert rows[2]["missing"] == "source"
        assert {k: rows[0][k] for k in ("source_ref", "target_ref", "source_type", "target_type", "port", "protocol",
                                        "missing", "claims")} == {
            "source_ref": "app-a", "target_ref": "db-unknown", "source_type": "application", "target_type": "server",
            "port": 5432, "protocol": "TCP", "missing": "target", "claims": {"dependency_type": "database"}}
        total, rows = await queries.list_parked(conn, tenant, import_id=first, limit=1, offset=1)
        assert (total, [(r["import_id"], r["row_number"]) for r in rows]) == (2, [(first, 2)])
        total, rows = await queries.list_parked(conn, other, import_id=second)
        assert (total, rows) == (0, [])


async def test_duplicate_candidates_with_the_assets_they_matched(db: Database, seed: Any) -> None:
    tenant, other = seed.tenant(), seed.tenant()
    imp, later = uuid.uuid4(), uuid.uuid4()
    a, b = await seed.asset(tenant, "web-01"), await seed.asset(tenant, "WEB-01.corp")
    foreign = await seed.asset(other, "secret-host")
    gone = uuid.uuid4()
    await seed.candidate(tenant, imp, 9, [b, a])
    await seed.candidate(tenant, imp, 2, [a, gone], status="dismissed")
    await seed.candidate(tenant, later, 1, [a, foreign])
    await seed.candidate(other, imp, 5, [foreign])

    async with db.connection() as conn:
        total, rows = await queries.list_duplicate_candidates(conn, tenant, import_id=imp)
        assert (total, [r["row_number"] for r in rows]) == (2, [2, 9])
        assert rows[1]["matched_assets"] == [{"asset_id": str(b), "name": "WEB-01.corp"},
                                             {"asset_id": str(a), "name": "web-01"}]
        # an asset since removed keeps its id, without a name
        assert rows[0]["matched_assets"] == [{"asset_id": str(a), "name": "web-01"},
                                             {"asset_id": str(gone), "name": None}]
        assert {k: rows[1][k] for k in ("category", "matched_on", "reason", "status", "identifiers", "claims")} == {
            "category": "cmdb", "matched_on": "hostname", "reason": "ambiguous", "status": "open",
            "identifiers": {"hostname": "web-01"}, "claims": {"name": "web-01"}}

        # another tenant's asset never lends its name
        _, [row] = await queries.list_duplicate_candidates(conn, tenant, import_id=later)
        assert row["matched_assets"][1] == {"asset_id": str(foreign), "name": None}

        total, rows = await queries.list_duplicate_candidates(conn, tenant, status="open")
        assert total == 2 and {r["row_number"] for r in rows} == {9, 1}
        total, rows = await queries.list_duplicate_candidates(conn, tenant, status="Dismissed")
        assert (total, [r["row_number"] for r in rows]) == (1, [2])
        total, rows = await queries.list_duplicate_candidates(conn, tenant, limit=2, offset=2)
        assert total == 3 and len(rows) == 1
        total, rows = await queries.list_duplicate_candidates(conn, other)
        assert (total, [r["row_number"] for r in rows]) == (1, [5])
