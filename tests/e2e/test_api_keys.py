"""API keys per tenant: every endpoint wants one, and a key sees only its own tenant (404 otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess, create_api_key

pytestmark = pytest.mark.e2e

CMDB = b"hostname,ip_address\nweb-01,10.9.0.1\nweb-02,10.9.0.2\n"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def keyed_client(pipeline: dict[str, ServiceProcess], stack_env: dict[str, str]) -> tuple[TributaryClient, dict]:
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    created = create_api_key(stack_env, str(tenant.client_account_id), str(tenant.engagement_id), "pytest")
    client = TributaryClient(pipeline["ingest"].url, pipeline["flow-state"].url, tenant, user_id="pytest",
                             validator_url=pipeline["validator"].url, enricher_url=pipeline["enricher"].url,
                             api_key=created["api_key"])
    for process in pipeline.values():
        wait_until(lambda p=process: httpx.get(f"{p.url}/v1/whoami", headers=client.headers).status_code == 200,
                   f"{process.name} never accepted the new key")
    return client, created


def test_a_key_names_its_tenant_everywhere(pipeline: dict[str, ServiceProcess], stack_env: dict[str, str]) -> None:
    client, created = keyed_client(pipeline, stack_env)
    assert created["api_key"].startswith(f"trb_{created['key_id']}_")
    for process in pipeline.values():
        me = httpx.get(f"{process.url}/v1/whoami", headers=client.headers).json()
        assert me["client_account_id"] == str(client.tenant.client_account_id)
        assert me["engagement_id"] == str(client.tenant.engagement_id)


def test_tenant_a_cannot_reach_tenant_b(pipeline: dict[str, ServiceProcess], stack_env: dict[str, str]) -> None:
    a, _ = keyed_client(pipeline, stack_env)
    b, _ = keyed_client(pipeline, stack_env)
    receipt = a.upload_bytes(CMDB, "a.csv", "cmdb_export").json()
    flow = a.wait_for_flow(receipt["flow_id"])
    assert flow["master"]["status"] == "completed"
    asset_id = a.list_assets().json()["items"][0]["asset_id"]
    import_id, flow_id = receipt["import_id"], receipt["flow_id"]

    # Read, list, findings, inventory, revert: B sees nothing of A's, and gets 404 for A's ids.
    assert b.get_flow(flow_id).status_code == 404
    assert b.get_import(import_id).status_code == 404
    assert b.list_flows().json()["total"] == 0
    assert b.get_validation(import_id).status_code == 404
    assert b.list_issues(import_id).status_code == 404
    assert b.get_asset(asset_id).status_code == 404
    assert b.list_assets().json()["total"] == 0
    assert b.revert_import(import_id).status_code == 404
    # B's upload lands in B's tenant only, whatever it claims in headers.
    spoofed = httpx.post(f"{b.ingest_url}/v1/imports", files={"file": ("b.csv", CMDB)},
                         data={"category": "cmdb_export"},
                         headers=b.headers | {"X-Client-Account-Id": str(a.tenant.client_account_id),
                                              "X-Engagement-Id": str(a.tenant.engagement_id)})
    assert spoofed.status_code == 202
    b.wait_for_flow(spoofed.json()["flow_id"])
    assert a.list_flows().json()["total"] == 1 and b.list_flows().json()["total"] == 1
    assert a.get_flow(spoofed.json()["flow_id"]).status_code == 404


def test_no_key_a_wrong_key_and_a_revoked_key_are_refused(pipeline: dict[str, ServiceProcess],
                                                           stack_env: dict[str, str]) -> None:
    client, created = keyed_client(pipeline, stack_env)
    bad = f"trb_{created['key_id']}_{'x' * 43}"
    for process in pipeline.values():
        assert httpx.get(f"{process.url}/v1/whoami").status_code == 401
        # Naming a tenant in headers is no key.
        assert httpx.get(f"{process.url}/v1/whoami", headers={
            "X-Client-Account-Id": str(client.tenant.client_account_id),
            "X-Engagement-Id": str(client.tenant.engagement_id)}).status_code == 401
        refused = httpx.get(f"{process.url}/v1/whoami", headers={"Authorization": f"Bearer {bad}"})
        assert refused.status_code == 401
        assert "not valid" in refused.json()["detail"]
    subprocess.run([sys.executable, "-m", "ingest", "keys", "revoke", created["key_id"]],
                   env=__import__("os").environ | stack_env, check=True, capture_output=True)
    for process in pipeline.values():
        wait_until(lambda p=process: httpx.get(f"{p.url}/v1/whoami", headers=client.headers).status_code == 401,
                   f"{process.name} still accepts a revoked key")
    assert client.upload_bytes(CMDB, "late.csv", "cmdb_export").status_code == 401


def test_keys_create_and_revoke_from_the_cli(pipeline: dict[str, ServiceProcess], stack_env: dict[str, str]) -> None:
    # What an operator types: `tributary keys create`, then the printed key works everywhere for
    # that tenant only, until `tributary keys revoke`.
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    cli = [str(Path(sys.executable).parent / "tributary"), "keys"]
    env = os.environ | stack_env
    created = subprocess.run([*cli, "create", "--client-account-id", str(tenant.client_account_id),
                              "--engagement-id", str(tenant.engagement_id), "--label", "cli"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    # "key id   <id>" and "api key  <key>"
    printed = {line[:7]: line[7:].strip() for line in created.stdout.splitlines()
               if line.startswith(("key id ", "api key"))}
    key_id, api_key = printed["key id "], printed["api key"]
    assert api_key.startswith(f"trb_{key_id}_") and "It is not shown again." in created.stdout
    headers = {"Authorization": f"Bearer {api_key}"}
    for process in pipeline.values():
        wait_until(lambda p=process: httpx.get(f"{p.url}/v1/whoami", headers=headers).status_code == 200,
                   f"{process.name} never accepted the key made by the CLI")
        me = httpx.get(f"{process.url}/v1/whoami", headers=headers).json()
        assert (me["client_account_id"], me["engagement_id"]) == (str(tenant.client_account_id),
                                                                  str(tenant.engagement_id))
    revoked = subprocess.run([*cli, "revoke", key_id], env=env, capture_output=True, text=True, timeout=120)
    assert revoked.returncode == 0 and f"key {key_id} revoked" in revoked.stdout, revoked.stderr
    for process in pipeline.values():
        wait_until(lambda p=process: httpx.get(f"{p.url}/v1/whoami", headers=headers).status_code == 401,
                   f"{process.name} still accepts a key revoked by the CLI")
    unknown = subprocess.run([*cli, "revoke", "nosuchkey"], env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert unknown.stderr.startswith("Revoking key nosuchkey failed:"), unknown.stderr
