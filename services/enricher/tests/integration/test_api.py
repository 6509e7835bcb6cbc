"""The inventory API over HTTP (in process), against the migrated database: shapes, tenancy, validation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts import Tenant
from contracts.access import ApiKeyRecord, hash_key, new_key
from enricher.api import assets, candidates, dependencies, policy
from tributary_runtime.db import Database
from tributary_runtime.keyring import KeyRing
from tributary_runtime.settings import ServiceSettings


# Keys the in-process app knows, as a service learns them from the key topic.
KEYRING = KeyRing(ServiceSettings())
KEYRING.ready.set()


@pytest.fixture
async def http(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.resources = SimpleNamespace(db=db)
    app.state.keyring = KEYRING
    for module in (assets, dependencies, candidates, policy):
        app.include_router(module.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://enricher") as client:
        yield client


def headers(tenant: Tenant) -> dict[str, str]:
    """An API key of the tenant's, known to the app."""
    key_id, key = new_key()
    record = ApiKeyRecord(key_id=key_id, client_account_id=tenant.client_account_id,
                          engagement_id=tenant.engagement_id, key_hash=hash_key(key), created_at=datetime.now(UTC))
    KEYRING.learn(record.model_dump_json().encode(), key_id.encode())
    return {"Authorization": f"Bearer {key}"}


async def test_an_api_key_is_required(http: httpx.AsyncClient) -> None:
    for path in ("/v1/assets", f"/v1/assets/{uuid.uuid4()}", "/v1/dependencies", "/v1/dependencies/parked",
                 "/v1/duplicate-candidates", "/v1/inventory-policy"):
        assert (await http.get(path)).status_code == 401, path


async def test_asset_list_and_detail_json(http: httpx.AsyncClient, seed: Any) -> None:
    tenant = seed.tenant()
    imp = uuid.uuid4()
    web = await seed.asset(tenant, "web-01", import_id=imp, asset_type="server", environment="production",
                           compliance_flags=["PCI-DSS"], classification={"classification": "PII,PCI"},
                           provenance=[{"import_id": str(imp), "source": "servicenow",
                                        "set_at": seed.at(0).isoformat(), "attributes": ["environment"]}])
    dbs = await seed.asset(tenant, "db-01", asset_type="database")
    await seed.asset(tenant, "ghost", is_placeholder=True)
    dep = await seed.dependency(tenant, web, dbs, port=5432, protocol="TCP", confidence=0.8)
    await seed.asset_claim(web, imp, asserted_at=seed.at(0), claims={"environment": "production"})

    page = (await http.get("/v1/assets", params={"page_size": 2, "page": 1}, headers=headers(tenant))).json()
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 2)
    assert [i["name"] for i in page["items"]] == ["db-01", "ghost"]
    page = (await http.get("/v1/assets", params={"page_size": 2, "page": 2}, headers=headers(tenant))).json()
    assert [i["name"] for i in page["items"]] == ["web-01"]
    assert page["items"][0] == {
        "asset_id": str(web), "name": "web-01", "asset_type": "server", "hostname": None, "fqdn": None,
        "ip_address": None, "environment": "production", "criticality": None, "operating_system": None,
        "is_placeholder": False, "compliance_flags": ["PCI-DSS"], "updated_at": "2026-03-01T12:00:00Z"}
    params = {"classification": "pci", "placeholder": "false", "import_id": str(imp), "q": "WEB",
              "asset_type": "Server", "environment": "production"}
    page = (await http.get("/v1/assets", params=params, headers=headers(tenant))).json()
    assert [i["name"] for i in page["items"]] == ["web-01"]
    # blank parameters (a form's empty fields) filter nothing
    blank = {"asset_type": "", "environment": "", "criticality": "", "classification": "", "q": ""}
    assert (await http.get("/v1/assets", params=blank, headers=headers(tenant))).json()["total"] == 3

    asset = (await http.get(f"/v1/assets/{web}", headers=headers(tenant))).json()
    assert asset["asset_id"] == str(web)
    assert asset["classification"] == {"classification": "PII,PCI"}
    assert asset["provenance"] == {"environment": {"import_id": str(imp), "source": "servicenow",
                                                   "set_at": seed.at(0).isoformat()}}
    assert asset["created_at"] == "2026-03-01T12:00:00Z"
    assert asset["dependencies"]["incoming"] == []
    [edge] = asset["dependencies"]["outgoing"]
    assert (edge["dependency_id"], edge["target_asset_id"], edge["target_name"], edge["confidence"]) == (
        str(dep), str(dbs), "db-01", 0.8)
    assert asset["claims"] == [{"import_id": str(imp), "category": "cmdb", "source": "servicenow",
                                "asserted_at": "2026-03-01T12:00:00Z", "row_number": 1,
                                "claims": {"environment": "production"}}]
    incoming = (await http.get(f"/v1/assets/{dbs}", headers=headers(tenant))).json()["dependencies"]["incoming"]
    assert [(e["source_asset_id"], e["source_name"]) for e in incoming] == [(str(web), "web-01")]


async def test_another_tenants_asset_answers_404(http: httpx.AsyncClient, seed: Any) -> None:
    tenant = seed.tenant()
    asset_id = await seed.asset(tenant, "web-01")
    assert (await http.get(f"/v1/assets/{asset_id}", headers=headers(tenant))).status_code == 200
    response = await http.get(f"/v1/assets/{asset_id}", headers=headers(seed.tenant()))
    assert response.status_code == 404
    assert (await http.get(f"/v1/assets/{uuid.uuid4()}", headers=headers(tenant))).status_code == 404
    assert (await http.get("/v1/assets/not-a-uuid", headers=headers(tenant))).status_code == 422
    page = (await http.get("/v1/assets", headers=headers(seed.tenant()))).json()
    assert (page["total"], page["items"]) == (0, [])


@pytest.mark.parametrize("params", [{"page": 0}, {"page_size": 0}, {"page_size": 501}, {"placeholder": "maybe"},
                                    {"import_id": "nope"}])
async def test_bad_list_parameters_are_422(http: httpx.AsyncClient, params: dict[str, Any]) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    assert (await http.get("/v1/assets", params=params, headers=headers(tenant))).status_code == 422


async def test_dependencies_parked_and_candidates_json(http: httpx.AsyncClient, seed: Any) -> None:
    tenant = seed.tenant()
    imp = uuid.uuid4()
    a, b = await seed.asset(tenant, "App-01"), await seed.asset(tenant, "db-01")
    await seed.dependency(tenant, a, b, port=5432, protocol="TCP", import_id=imp)
    await seed.dependency(tenant, b, a, port=8080, protocol="HTTP")
    await seed.parked(tenant, imp, 3)
    await seed.candidate(tenant, imp, 4, [a, b])

    page = (await http.get("/v1/dependencies", params={"source": "app-01", "port": 5432},
                           headers=headers(tenant))).json()
    assert page["total"] == 1
    item = page["items"][0]
    assert (item["source_name"], item["target_name"], item["source_asset_id"], item["confidence"]) == (
        "App-01", "db-01", str(a), None)
    page = (await http.get("/v1/dependencies", params={"target": str(a)}, headers=headers(tenant))).json()
    assert [(i["source_name"], i["protocol"]) for i in page["items"]] == [("db-01", "HTTP")]
    assert (await http.get("/v1/dependencies", params={"port": 70000}, headers=headers(tenant))).status_code == 422

    page = (await http.get("/v1/dependencies/parked", params={"import_id": str(imp)}, headers=headers(tenant))).json()
    assert page["total"] == 1
    assert page["items"][0] | {"asserted_at": None} == {
        "import_id": str(imp), "row_number": 3, "asserted_at": None, "source_ref": "app-a",
        "target_ref": "db-unknown", "source_type": "application", "target_type": "server", "port": 5432,
        "protocol": "TCP", "missing": "target", "claims": {"dependency_type": "database"}}
    other = (await http.get("/v1/dependencies/parked", headers=headers(seed.tenant()))).json()
    assert (other["total"], other["items"]) == (0, [])

    page = (await http.get("/v1/duplicate-candidates", params={"status": "open"}, headers=headers(tenant))).json()
    assert page["total"] == 1
    assert page["items"][0]["matched_assets"] == [{"asset_id": str(a), "name": "App-01"},
                                                  {"asset_id": str(b), "name": "db-01"}]
    other = (await http.get("/v1/duplicate-candidates", headers=headers(seed.tenant()))).json()
    assert (other["total"], other["items"]) == (0, [])


async def test_inventory_policy_defaults_put_and_tenancy(http: httpx.AsyncClient) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    defaults = {"source_priorities": {}, "stale_after_days": None, "empty_overwrites": False,
                "create_placeholders": False}
    assert (await http.get("/v1/inventory-policy", headers=headers(tenant))).json() == defaults

    body = {"source_priorities": {"ServiceNow": 10, "RVTools": 5}, "stale_after_days": 180,
            "empty_overwrites": True, "create_placeholders": True}
    stored = body | {"source_priorities": {"servicenow": 10, "rvtools": 5}}
    response = await http.put("/v1/inventory-policy", json=body, headers=headers(tenant))
    assert (response.status_code, response.json()) == (200, stored)
    assert (await http.get("/v1/inventory-policy", headers=headers(tenant))).json() == stored
    # another tenant still has the defaults
    other = Tenant(client_account_id=tenant.client_account_id, engagement_id=uuid.uuid4())
    assert (await http.get("/v1/inventory-policy", headers=headers(other))).json() == defaults

    # PUT replaces the whole policy
    response = await http.put("/v1/inventory-policy", json={"create_placeholders": True}, headers=headers(tenant))
    assert response.json() == defaults | {"create_placeholders": True}


@pytest.mark.parametrize("body", [{"stale_after_days": 0}, {"stale_after_days": "30"}, {"empty_overwrites": "yes"},
                                  {"source_priorities": {"servicenow": "high"}},
                                  {"source_priorities": {"a": 1, "A": 2}}, {"unknown": 1}, []])
async def test_bad_policy_is_422_and_changes_nothing(http: httpx.AsyncClient, body: Any) -> None:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    await http.put("/v1/inventory-policy", json={"stale_after_days": 30}, headers=headers(tenant))
    response = await http.put("/v1/inventory-policy", json=body, headers=headers(tenant))
    assert response.status_code == 422, response.text
    assert (await http.get("/v1/inventory-policy", headers=headers(tenant))).json()["stale_after_days"] == 30
