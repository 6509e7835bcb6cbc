"""Multi-import scenarios that pin the asset inventory down exactly, end to end.

Every scenario uploads small files of its own through ingest, waits for each flow, and then
compares the whole inventory of its tenant with what the enricher's documented rules say it
must be:

* identification (``enricher.identification``): source key, FQDN, short host name, IP, MAC,
  serial, name, in that order; the first kind that matches decides; several matches are
  *ambiguous*, a stronger identifier contradicting the matched asset a *conflict*; both become
  duplicate candidates and are not merged;
* reconciliation (``enricher.reconciliation``): one claim per import and asset; per attribute
  stale claims lose, then the higher source priority, then the newer claim; provenance per
  attribute; blank cells assert nothing unless ``empty_overwrites``;
* inventory (``enricher.inventory``): CMDB rows make assets, infrastructure rows add
  ``performance`` (the latest measurement per host), sensitive-data rows add ``classification``
  (labels of an asset's rows unioned, record counts summed) and ``compliance_flags``;
* dependencies (``enricher.dependencies``): endpoints resolved by name, FQDN, host, IP;
  unknown applications created; edges to unknown servers or databases parked until an import
  brings the asset;
* revert (``enricher.revert``): an import's claims go, what only it contributed disappears,
  what it overwrote comes back, edges of other imports to removed assets are parked again.

A snapshot is compact but complete: per asset name its typed values, performance,
classification, flags and the provenance of every attribute (as ``"<import label>:<source>"``
→ the attributes that claim set), plus every edge (source, target, port, protocol, type,
criticality). Expected values were worked out from the files below and those rules, not
copied from a run.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e

# Every count of EnrichmentCompleted; a count a scenario does not name must be 0.
ENRICHMENT_COUNTS = ("rows_applied", "assets_created", "assets_updated", "assets_unchanged",
                     "dependencies_created", "dependencies_updated", "dependencies_unchanged", "parked_edges",
                     "resolved_edges", "unmatched_rows", "duplicate_candidates", "placeholders_created")
REVERT_COUNTS = ("applied", "assets_removed", "assets_restored", "dependencies_removed", "dependencies_restored",
                 "edges_reparked", "parked_edges_removed", "duplicate_candidates_removed")
C1_ATTRS = "asset_type criticality environment hostname ip_address operating_system serial_number"
PERF_ATTRS = "collected_at cpu_avg_pct cpu_peak_pct memory_avg_pct"


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def enrichment(**nonzero: int) -> dict[str, int]:
    return dict.fromkeys(ENRICHMENT_COUNTS, 0) | nonzero


def reverted(**nonzero: int) -> dict[str, Any]:
    return dict.fromkeys(REVERT_COUNTS, 0) | {"applied": True} | nonzero


def asset(asset_type: str | None = None, hostname: str | None = None, ip: str | None = None,
          environment: str | None = None, criticality: str | None = None, os: str | None = None, *,
          prov: dict[str, str], fqdn: str | None = None, source: str | None = None,
          perf: dict[str, Any] | None = None, cls: dict[str, Any] | None = None, flags: tuple[str, ...] = (),
          attrs: dict[str, Any] | None = None, placeholder: bool = False) -> dict[str, Any]:
    """One expected asset as ``Scenario.snapshot`` renders it."""
    return {"asset_type": asset_type, "hostname": hostname, "fqdn": fqdn, "ip_address": ip,
            "environment": environment, "criticality": criticality, "operating_system": os, "source": source,
            "performance": perf or {}, "classification": cls or {}, "compliance_flags": list(flags),
            "attributes": attrs or {}, "is_placeholder": placeholder, "provenance": prov}


def app(prov: str) -> dict[str, Any]:
    """An application asset created (or named) by application discovery."""
    return asset("application", prov={prov: "asset_type name"})


@dataclasses.dataclass
class Scenario:
    """One tenant's imports by label, and its inventory as a comparable snapshot."""

    client: TributaryClient
    imports: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def upload(self, label: str, content: bytes, category: str, *, source_system: str | None = None,
               idempotency_key: str | None = None) -> dict[str, Any]:
        """Upload, wait for the flow to complete, return the flow."""
        response = self.client.upload_bytes(content, f"{label}.csv", category, source_system=source_system,
                                            idempotency_key=idempotency_key)
        assert response.status_code == 202, response.text
        receipt = response.json()
        self.imports[label] = receipt
        flow = self.client.wait_for_flow(receipt["flow_id"])
        assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
        assert flow["child"]["status"] == "completed"
        return flow

    def counts(self, flow: dict[str, Any]) -> dict[str, int]:
        state = flow["child"]["phase_state"]["enrichment"]
        return {k: state.get(k) for k in ENRICHMENT_COUNTS}

    def import_id(self, label: str) -> str:
        return self.imports[label]["import_id"]

    def label(self, import_id: str) -> str:
        return next((k for k, v in self.imports.items() if v["import_id"] == str(import_id)), f"?{import_id}")

    def revert(self, label: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Revert an import and wait until its flow shows the revert done; returns the flow."""
        response = self.client.revert_import(self.import_id(label), reason=f"scenario: undo {label}")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "requested"
        return self.wait_reverted(label, timeout=timeout)

    def wait_reverted(self, label: str, *, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            response = self.client.get_flow(self.imports[label]["flow_id"])
            if response.status_code == 200:
                last = response.json()
                if last["child"]["phase_state"].get("revert", {}).get("status") == "reverted":
                    return last
            time.sleep(0.05)
        raise TimeoutError(f"revert of {label} not shown in {timeout}s; last: "
                           f"{last['child']['phase_state'].get('revert') if last else None}")

    @staticmethod
    def revert_counts(flow: dict[str, Any]) -> dict[str, Any]:
        state = flow["child"]["phase_state"]["revert"]
        return {k: state.get(k) for k in REVERT_COUNTS}

    # -- the inventory ------------------------------------------------------------------------

    def assets(self) -> list[dict[str, Any]]:
        response = self.client.list_assets(page_size=500)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        details = []
        for item in body["items"]:
            detail = self.client.get_asset(item["asset_id"])
            assert detail.status_code == 200, detail.text
            details.append(detail.json())
        return details

    def snapshot(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for a in self.assets():
            assert a["name"] not in out, f"two assets named {a['name']}"
            grouped: dict[str, list[str]] = {}
            for attribute, p in a["provenance"].items():
                grouped.setdefault(f"{self.label(p['import_id'])}:{p['source']}", []).append(attribute)
            out[a["name"]] = {
                "asset_type": a["asset_type"], "hostname": a["hostname"], "fqdn": a["fqdn"],
                "ip_address": a["ip_address"], "environment": a["environment"], "criticality": a["criticality"],
                "operating_system": a["operating_system"], "source": a["source"], "performance": a["performance"],
                "classification": a["classification"], "compliance_flags": a["compliance_flags"],
                "attributes": a["attributes"], "is_placeholder": a["is_placeholder"],
                "provenance": {k: " ".join(sorted(v)) for k, v in grouped.items()},
            }
        return out

    def asset_id(self, name: str) -> str:
        [found] = [a["asset_id"] for a in self.client.list_assets(q=name, page_size=500).json()["items"]
                   if a["name"] == name]
        return found

    def dependencies(self) -> list[tuple[Any, ...]]:
        response = self.client.list_dependencies(page_size=500)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return sorted((d["source_name"], d["target_name"], d["port"], d["protocol"], d["dependency_type"],
                       d["criticality"]) for d in body["items"])

    def parked(self) -> list[tuple[Any, ...]]:
        response = self.client.list_parked(page_size=500)
        assert response.status_code == 200, response.text
        return [(self.label(p["import_id"]), p["row_number"], p["source_ref"], p["target_ref"], p["source_type"],
                 p["target_type"], p["port"], p["protocol"], p["missing"], p["claims"])
                for p in response.json()["items"]]

    def candidates(self, **filters: Any) -> list[dict[str, Any]]:
        response = self.client.list_duplicate_candidates(page_size=500, **filters)
        assert response.status_code == 200, response.text
        return [{"import": self.label(c["import_id"]), "row_number": c["row_number"], "category": c["category"],
                 "matched_on": c["matched_on"], "reason": c["reason"], "status": c["status"],
                 "identifiers": c["identifiers"], "claims": c["claims"],
                 "matched": sorted(m["name"] for m in c["matched_assets"])}
                for c in response.json()["items"]]


def other_tenant(client: TributaryClient, client_for: Callable[[Tenant], TributaryClient], *,
                 same_client_account: bool = False) -> TributaryClient:
    """A client of another tenant, with that tenant's own API key."""
    account = client.tenant.client_account_id if same_client_account else uuid.uuid4()
    return client_for(Tenant(client_account_id=account, engagement_id=uuid.uuid4()))


def put_policy(client: TributaryClient, **policy: Any) -> None:
    response = client.put_inventory_policy(**policy)
    assert response.status_code == 200, response.text


# --- 1. all four categories, then the parked server arrives -----------------------------------

CMDB_1 = csv(
    "hostname,ip_address,asset_type,environment,criticality,operating_system,serial_number",
    "web-01.corp.example,10.0.1.11,server,production,high,Ubuntu 22.04,SN-1001",
    "db-01.corp.example,10.0.2.21,database,production,critical,RHEL 9,SN-2001",
    "app-01.corp.example,10.0.3.31,server,staging,medium,Windows Server 2022,SN-3001",
)
# storefront and orders-api are new applications; db-01 (short name) and web-01.corp.example
# (its name) are CMDB assets; app-01 has no type, so it may be an application, but it is the
# CMDB server app-01 by host name and stays that; cache-01 is an unknown server: parked.
DISCOVERY_1 = csv(
    "source,target,source_type,target_type,port,protocol,dependency_type,criticality",
    "storefront,orders-api,application,application,443,HTTPS,api,high",
    "orders-api,db-01,application,database,5432,TCP,database,critical",
    "orders-api,web-01.corp.example,application,server,8080,HTTP,api,medium",
    "app-01,orders-api,,application,8443,HTTPS,api,high",
    "storefront,cache-01,application,server,6379,TCP,cache,low",
)
# web-01 by short name; db-01 twice (the later measurement wins); unknown-09 is no asset.
INFRA_1 = csv(
    "hostname,cpu_avg_pct,cpu_peak_pct,memory_avg_pct,collected_at",
    "web-01,35.5,78,61,2026-11-01T00:00:00Z",
    "db-01.corp.example,60,95,85,2026-11-02T00:00:00Z",
    "db-01.corp.example,55,92,83,2026-11-01T00:00:00Z",
    "unknown-09,10,20,30,2026-11-01T00:00:00Z",
)
# db-01 by FQDN and by short name: one asset, labels unioned, record counts summed.
SENSITIVE_1 = csv(
    "hostname,data_store,classification,regulation,data_owner,record_count",
    "db-01.corp.example,orders,PII,GDPR,dpo@example.com,1200",
    "db-01,payments,PCI,PCI-DSS,payments@example.com,300",
    "app-01.corp.example,logs,internal,,platform@example.com,",
)
# cache-01 arrives (the parked edge links); web-01 gets a new criticality, blanks assert nothing.
CMDB_2 = csv(
    "hostname,ip_address,asset_type,environment,criticality,operating_system",
    "cache-01.corp.example,10.0.4.41,server,production,medium,Debian 12",
    "web-01.corp.example,,,,critical,",
)

DEPENDENCIES_1 = [
    ("app-01.corp.example", "orders-api", 8443, "HTTPS", "api", "high"),
    ("orders-api", "db-01.corp.example", 5432, "TCP", "database", "critical"),
    ("orders-api", "web-01.corp.example", 8080, "HTTP", "api", "medium"),
    ("storefront", "orders-api", 443, "HTTPS", "api", "high"),
]


def test_four_categories_then_the_parked_server_arrives(client: TributaryClient) -> None:
    s = Scenario(client)
    flow = s.upload("C1", CMDB_1, "cmdb_export")
    assert s.counts(flow) == enrichment(rows_applied=3, assets_created=3)

    flow = s.upload("D1", DISCOVERY_1, "app_discovery", source_system="dynatrace")
    assert s.counts(flow) == enrichment(rows_applied=5, assets_created=2, dependencies_created=4, parked_edges=1)
    assert s.dependencies() == DEPENDENCIES_1
    assert s.parked() == [("D1", 5, "storefront", "cache-01", "application", "server", 6379, "TCP", "target",
                           {"dependency_type": "cache", "criticality": "low"})]

    flow = s.upload("P1", INFRA_1, "infrastructure")
    assert s.counts(flow) == enrichment(rows_applied=4, assets_updated=2, unmatched_rows=1)

    flow = s.upload("S1", SENSITIVE_1, "sensitive_data")
    assert s.counts(flow) == enrichment(rows_applied=3, assets_updated=2)

    flow = s.upload("C2", CMDB_2, "cmdb_export")
    assert s.counts(flow) == enrichment(rows_applied=2, assets_created=1, assets_updated=1, resolved_edges=1)
    assert s.parked() == []
    assert s.dependencies() == sorted([*DEPENDENCIES_1,
                                       ("storefront", "cache-01.corp.example", 6379, "TCP", "cache", "low")])

    assert s.snapshot() == {
        "app-01.corp.example": asset(
            "server", "app-01.corp.example", "10.0.3.31", "staging", "medium", "Windows Server 2022",
            cls={"classification": "internal", "data_store": "logs", "data_owner": "platform@example.com"},
            prov={"C1:upload": C1_ATTRS, "S1:upload": "classification data_owner data_store"}),
        "cache-01.corp.example": asset(
            "server", "cache-01.corp.example", "10.0.4.41", "production", "medium", "Debian 12",
            prov={"C2:upload": "asset_type criticality environment hostname ip_address operating_system"}),
        "db-01.corp.example": asset(
            "database", "db-01.corp.example", "10.0.2.21", "production", "critical", "RHEL 9",
            perf={"cpu_avg_pct": 60, "cpu_peak_pct": 95, "memory_avg_pct": 85,
                  "collected_at": "2026-11-02T00:00:00+00:00"},
            cls={"classification": "PII,PCI", "regulation": "GDPR,PCI-DSS", "data_store": "orders,payments",
                 "data_owner": "dpo@example.com,payments@example.com", "record_count": "1500"},
            flags=("GDPR", "PCI-DSS"),
            prov={"C1:upload": C1_ATTRS, "P1:upload": PERF_ATTRS,
                  "S1:upload": "classification data_owner data_store record_count regulation"}),
        "orders-api": app("D1:dynatrace"),
        "storefront": app("D1:dynatrace"),
        "web-01.corp.example": asset(
            "server", "web-01.corp.example", "10.0.1.11", "production", "critical", "Ubuntu 22.04",
            perf={"cpu_avg_pct": 35.5, "cpu_peak_pct": 78, "memory_avg_pct": 61,
                  "collected_at": "2026-11-01T00:00:00+00:00"},
            prov={"C1:upload": "asset_type environment ip_address operating_system serial_number",
                  "C2:upload": "criticality hostname", "P1:upload": PERF_ATTRS}),
    }
    # The asset API agrees with the list filters.
    assert [a["name"] for a in client.list_assets(classification="PCI").json()["items"]] == ["db-01.corp.example"]
    assert [a["name"] for a in client.list_assets(asset_type="application").json()["items"]] == \
        ["orders-api", "storefront"]


# --- 2. overlapping and conflicting sources ---------------------------------------------------

SERVICENOW_2 = csv(
    "hostname,ip_address,asset_type,environment,operating_system",
    "erp-01,10.1.0.1,server,production,RHEL 8",
    "erp-02,10.1.0.2,server,production,RHEL 8",
)
# erp-01: disagrees on environment and OS; erp-02: agrees, and adds memory (blank for erp-01).
RVTOOLS_2 = csv(
    "hostname,ip_address,environment,operating_system,memory_gb",
    "erp-01,10.1.0.1,test,RHEL 9,",
    "erp-02,10.1.0.2,production,RHEL 8,64",
)
# No source system of its own: each row's source column ranks it (erp-02's blank one: "upload").
MIXED_2 = csv(
    "hostname,environment,source",
    "erp-01,development,ServiceNow",
    "erp-02,staging,",
)


def test_without_a_policy_the_newer_source_wins(client: TributaryClient) -> None:
    s = Scenario(client)
    assert s.counts(s.upload("SN", SERVICENOW_2, "cmdb_export", source_system="servicenow")) == \
        enrichment(rows_applied=2, assets_created=2)
    assert s.counts(s.upload("RV", RVTOOLS_2, "cmdb_export", source_system="rvtools")) == \
        enrichment(rows_applied=2, assets_updated=2)
    assert s.snapshot() == {
        "erp-01": asset("server", "erp-01", "10.1.0.1", "test", None, "RHEL 9",
                        prov={"SN:servicenow": "asset_type",
                              "RV:rvtools": "environment hostname ip_address operating_system"}),
        "erp-02": asset("server", "erp-02", "10.1.0.2", "production", None, "RHEL 8", attrs={"memory_gb": "64"},
                        prov={"SN:servicenow": "asset_type",
                              "RV:rvtools": "environment hostname ip_address memory_gb operating_system"}),
    }


def test_source_priority_beats_a_newer_claim(client: TributaryClient) -> None:
    s = Scenario(client)
    put_policy(client, source_priorities={"ServiceNow": 10})
    assert client._enricher("GET", "/v1/inventory-policy").json() == {
        "source_priorities": {"servicenow": 10}, "stale_after_days": None, "empty_overwrites": False,
        "create_placeholders": False}
    s.upload("SN", SERVICENOW_2, "cmdb_export", source_system="servicenow")
    # erp-01: every value RVTools claims loses, so nothing changes; erp-02 gains memory_gb.
    assert s.counts(s.upload("RV", RVTOOLS_2, "cmdb_export", source_system="rvtools")) == \
        enrichment(rows_applied=2, assets_updated=1, assets_unchanged=1)
    sn_all = "asset_type environment hostname ip_address operating_system"
    assert s.snapshot() == {
        "erp-01": asset("server", "erp-01", "10.1.0.1", "production", None, "RHEL 8", prov={"SN:servicenow": sn_all}),
        "erp-02": asset("server", "erp-02", "10.1.0.2", "production", None, "RHEL 8", attrs={"memory_gb": "64"},
                        prov={"SN:servicenow": sn_all, "RV:rvtools": "memory_gb"}),
    }

    # A row's own source column ranks it: erp-01's row is ServiceNow's (and newest), erp-02's is not.
    assert s.counts(s.upload("M", MIXED_2, "cmdb_export")) == \
        enrichment(rows_applied=2, assets_updated=1, assets_unchanged=1)
    assert s.snapshot() == {
        "erp-01": asset("server", "erp-01", "10.1.0.1", "development", None, "RHEL 8", source="ServiceNow",
                        prov={"SN:servicenow": "asset_type ip_address operating_system",
                              "M:servicenow": "environment hostname source"}),
        "erp-02": asset("server", "erp-02", "10.1.0.2", "production", None, "RHEL 8", attrs={"memory_gb": "64"},
                        prov={"SN:servicenow": sn_all, "RV:rvtools": "memory_gb"}),
    }


# --- 3. empty values --------------------------------------------------------------------------

EMPTY_C1 = csv("hostname,ip_address,environment,criticality,operating_system",
               "lab-01,10.6.0.1,production,high,Ubuntu 22.04")
EMPTY_C2 = csv("hostname,environment,criticality,operating_system", "lab-01,,low,")
EMPTY_C3 = csv("hostname,environment,criticality,operating_system", "lab-01,,,Debian 12")


def test_blank_cells_assert_nothing_unless_empty_values_overwrite(client: TributaryClient) -> None:
    s = Scenario(client)
    s.upload("C1", EMPTY_C1, "cmdb_export")
    assert s.counts(s.upload("C2", EMPTY_C2, "cmdb_export")) == enrichment(rows_applied=1, assets_updated=1)
    assert s.snapshot() == {"lab-01": asset(
        None, "lab-01", "10.6.0.1", "production", "low", "Ubuntu 22.04",
        prov={"C1:upload": "environment ip_address operating_system", "C2:upload": "criticality hostname"})}

    put_policy(client, empty_overwrites=True)
    assert s.counts(s.upload("C3", EMPTY_C3, "cmdb_export")) == enrichment(rows_applied=1, assets_updated=1)
    # Blank cells clear (and the clearing import is the provenance); a column the file lacks is untouched.
    assert s.snapshot() == {"lab-01": asset(
        None, "lab-01", "10.6.0.1", None, None, "Debian 12",
        prov={"C1:upload": "ip_address", "C3:upload": "criticality environment hostname operating_system"})}


# --- 4. identification ------------------------------------------------------------------------

BASE_4 = csv(
    "external_id,hostname,ip_address,asset_type,environment",
    "CI-1,web-01.corp.example,10.2.0.1,server,production",
    "CI-2,db-01,10.2.0.2,database,production",
    "CI-3,app.dc1.example,10.2.0.3,server,production",
    "CI-4,app.dc2.example,10.2.0.4,server,test",
    "CI-5,old-name,10.2.0.5,server,development",
    "CI-6,mq-01,10.2.0.6,server,production",
    "CI-7,batch-01,10.2.0.7,server,production",
)
# web-01 by short name (the asset has the FQDN); db-01 by an FQDN (the asset has the short name);
# mq-01 by its IP address alone.
MATCHES_4 = csv(
    "hostname,fqdn,ip_address,environment",
    "web-01,,,staging",
    ",db-01.corp.example,,staging",
    ",,10.2.0.6,staging",
)
CONFLICT_4 = csv("hostname,ip_address,environment", "batch-02,10.2.0.7,staging")
AMBIGUOUS_4 = csv("hostname,environment", "app,staging")
RENAME_4 = csv("external_id,hostname", "CI-5,new-name")
BASE_ATTRS = "asset_type environment external_id hostname ip_address"


def test_identification_in_priority_order(client: TributaryClient) -> None:
    s = Scenario(client)
    assert s.counts(s.upload("B0", BASE_4, "cmdb_export", source_system="servicenow")) == \
        enrichment(rows_applied=7, assets_created=7)
    renamed_id = s.asset_id("old-name")

    assert s.counts(s.upload("X", MATCHES_4, "cmdb_export")) == enrichment(rows_applied=3, assets_updated=3)

    # Host batch-02 is no asset, but IP 10.2.0.7 is batch-01's: a conflict, not a merge.
    assert s.counts(s.upload("Y", CONFLICT_4, "cmdb_export")) == \
        enrichment(rows_applied=1, duplicate_candidates=1)
    # "app" is the short name of app.dc1.example and of app.dc2.example: ambiguous.
    assert s.counts(s.upload("Z", AMBIGUOUS_4, "cmdb_export")) == \
        enrichment(rows_applied=1, duplicate_candidates=1)
    assert s.candidates() == sorted([
        {"import": "Y", "row_number": 1, "category": "cmdb_export", "matched_on": "ip", "reason": "conflict",
         "status": "open", "identifiers": {"host": "batch-02", "ip": "10.2.0.7"},
         "claims": {"hostname": "batch-02", "ip_address": "10.2.0.7", "environment": "staging"},
         "matched": ["batch-01"]},
        {"import": "Z", "row_number": 1, "category": "cmdb_export", "matched_on": "host", "reason": "ambiguous",
         "status": "open", "identifiers": {"host": "app"}, "claims": {"hostname": "app", "environment": "staging"},
         "matched": ["app.dc1.example", "app.dc2.example"]},
    ], key=lambda c: s.import_id(c["import"]))
    assert [c["import"] for c in s.candidates(import_id=s.import_id("Y"))] == ["Y"]

    # The same source's external id finds the asset although its host name changed: a rename.
    assert s.counts(s.upload("R", RENAME_4, "cmdb_export", source_system="servicenow")) == \
        enrichment(rows_applied=1, assets_updated=1)
    assert s.asset_id("new-name") == renamed_id
    assert client.list_assets(q="old-name").json()["total"] == 0

    assert s.snapshot() == {
        "app.dc1.example": asset("server", "app.dc1.example", "10.2.0.3", "production",
                                 prov={"B0:servicenow": BASE_ATTRS}),
        "app.dc2.example": asset("server", "app.dc2.example", "10.2.0.4", "test", prov={"B0:servicenow": BASE_ATTRS}),
        "batch-01": asset("server", "batch-01", "10.2.0.7", "production", prov={"B0:servicenow": BASE_ATTRS}),
        "db-01": asset("database", "db-01", "10.2.0.2", "staging", fqdn="db-01.corp.example",
                       prov={"B0:servicenow": "asset_type external_id hostname ip_address",
                             "X:upload": "environment fqdn"}),
        "mq-01": asset("server", "mq-01", "10.2.0.6", "staging",
                       prov={"B0:servicenow": "asset_type external_id hostname",
                             "X:upload": "environment ip_address"}),
        "new-name": asset("server", "new-name", "10.2.0.5", "development",
                          prov={"B0:servicenow": "asset_type environment ip_address",
                                "R:servicenow": "external_id hostname"}),
        # A short name matches the FQDN it abbreviates and never replaces it.
        "web-01.corp.example": asset("server", "web-01.corp.example", "10.2.0.1", "staging",
                                     prov={"B0:servicenow": "asset_type external_id hostname ip_address",
                                           "X:upload": "environment"}),
    }


# --- 5. reverts -------------------------------------------------------------------------------

REVERT_A = csv(
    "hostname,ip_address,asset_type,environment,criticality",
    "r-web-01,10.3.0.1,server,production,high",
    "r-web-02,10.3.0.2,server,production,medium",
    "r-db-01,10.3.0.3,database,production,critical",
)
REVERT_B = csv(
    "hostname,environment,criticality,operating_system",
    "r-web-01,staging,,Ubuntu 24.04",
    "r-db-01,,low,",
    "r-new-01,test,low,Debian 12",
)
A_ALL = "asset_type criticality environment hostname ip_address"
ONLY_A = {
    "r-db-01": asset("database", "r-db-01", "10.3.0.3", "production", "critical", prov={"A:upload": A_ALL}),
    "r-web-01": asset("server", "r-web-01", "10.3.0.1", "production", "high", prov={"A:upload": A_ALL}),
    "r-web-02": asset("server", "r-web-02", "10.3.0.2", "production", "medium", prov={"A:upload": A_ALL}),
}


def _a_then_b(s: Scenario) -> None:
    assert s.counts(s.upload("A", REVERT_A, "cmdb_export")) == enrichment(rows_applied=3, assets_created=3)
    assert s.counts(s.upload("B", REVERT_B, "cmdb_export")) == \
        enrichment(rows_applied=3, assets_created=1, assets_updated=2)
    assert s.snapshot() == {
        "r-db-01": asset("database", "r-db-01", "10.3.0.3", "production", "low",
                         prov={"A:upload": "asset_type environment ip_address", "B:upload": "criticality hostname"}),
        "r-new-01": asset(None, "r-new-01", None, "test", "low", "Debian 12",
                          prov={"B:upload": "criticality environment hostname operating_system"}),
        "r-web-01": asset("server", "r-web-01", "10.3.0.1", "staging", "high", "Ubuntu 24.04",
                          prov={"A:upload": "asset_type criticality ip_address",
                                "B:upload": "environment hostname operating_system"}),
        "r-web-02": ONLY_A["r-web-02"],
    }


def _assert_revert_shown(flow: dict[str, Any]) -> None:
    assert flow["master"]["status"] == "completed"
    assert flow["child"]["status"] == "reverted"
    [step] = [st for st in flow["steps"] if st["step_name"] == "revert"]
    assert step["status"] == "completed"


def test_revert_newer_then_older(client: TributaryClient) -> None:
    s = Scenario(client)
    _a_then_b(s)
    flow = s.revert("B")
    _assert_revert_shown(flow)
    # r-new-01 only B said anything about; r-web-01 and r-db-01 get A's values back.
    assert s.revert_counts(flow) == reverted(assets_removed=1, assets_restored=2)
    assert s.snapshot() == ONLY_A

    # Twice is a no-op that says so.
    again = client.revert_import(s.import_id("B"))
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "reverted"
    assert again.json()["counts"] == {k: v for k, v in reverted(assets_removed=1, assets_restored=2).items()
                                      if k != "applied"}
    assert s.snapshot() == ONLY_A

    assert s.revert_counts(s.revert("A")) == reverted(assets_removed=3)
    assert s.snapshot() == {}
    assert s.dependencies() == []


def test_revert_older_then_newer(client: TributaryClient) -> None:
    s = Scenario(client)
    _a_then_b(s)
    flow = s.revert("A")
    _assert_revert_shown(flow)
    # r-web-02 only A said anything about; the two both named keep B's values and nothing else.
    assert s.revert_counts(flow) == reverted(assets_removed=1, assets_restored=2)
    assert s.snapshot() == {
        "r-db-01": asset(None, "r-db-01", None, None, "low", prov={"B:upload": "criticality hostname"}),
        "r-new-01": asset(None, "r-new-01", None, "test", "low", "Debian 12",
                          prov={"B:upload": "criticality environment hostname operating_system"}),
        "r-web-01": asset(None, "r-web-01", None, "staging", None, "Ubuntu 24.04",
                          prov={"B:upload": "environment hostname operating_system"}),
    }
    assert s.revert_counts(s.revert("B")) == reverted(assets_removed=3)
    assert s.snapshot() == {}


REVERT_CMDB = csv("hostname,ip_address,asset_type", "pay-db-01,10.4.0.1,database")
REVERT_D1 = csv(
    "source,target,source_type,target_type,port,protocol,dependency_type",
    "checkout,payments,application,application,443,HTTPS,api",
    "checkout,catalog,application,application,443,HTTPS,api",
)
REVERT_D2 = csv(
    "source,target,source_type,target_type,port,protocol,dependency_type",
    "payments,pay-db-01,application,database,5432,TCP,database",
    "checkout,payments,application,application,443,HTTPS,api",
)


def test_revert_application_discovery_and_repark(client: TributaryClient) -> None:
    s = Scenario(client)
    s.upload("C", REVERT_CMDB, "cmdb_export")
    assert s.counts(s.upload("D1", REVERT_D1, "app_discovery")) == \
        enrichment(rows_applied=2, assets_created=3, dependencies_created=2)
    # checkout → payments again: D2's claim, same values.
    assert s.counts(s.upload("D2", REVERT_D2, "app_discovery")) == \
        enrichment(rows_applied=2, dependencies_created=1, dependencies_unchanged=1)
    assert s.dependencies() == [("checkout", "catalog", 443, "HTTPS", "api", None),
                                ("checkout", "payments", 443, "HTTPS", "api", None),
                                ("payments", "pay-db-01", 5432, "TCP", "database", None)]

    # catalog and checkout → catalog were D1's alone; checkout and payments D2 names too.
    assert s.revert_counts(s.revert("D1")) == reverted(assets_removed=1, dependencies_removed=1)
    pay_db = asset("database", "pay-db-01", "10.4.0.1", prov={"C:upload": "asset_type hostname ip_address"})
    assert s.snapshot() == {"checkout": app("D2:upload"), "pay-db-01": pay_db, "payments": app("D2:upload")}
    assert s.dependencies() == [("checkout", "payments", 443, "HTTPS", "api", None),
                                ("payments", "pay-db-01", 5432, "TCP", "database", None)]

    # pay-db-01 goes with C; D2's edge to it waits for it again.
    assert s.revert_counts(s.revert("C")) == reverted(assets_removed=1, dependencies_removed=1, edges_reparked=1)
    assert s.snapshot() == {"checkout": app("D2:upload"), "payments": app("D2:upload")}
    assert s.dependencies() == [("checkout", "payments", 443, "HTTPS", "api", None)]
    assert s.parked() == [("D2", 1, "payments", "pay-db-01", "application", "database", 5432, "TCP", "target",
                           {"dependency_type": "database"})]

    # ... and links when an import brings it back.
    assert s.counts(s.upload("C2", REVERT_CMDB, "cmdb_export")) == \
        enrichment(rows_applied=1, assets_created=1, resolved_edges=1)
    assert s.parked() == []
    assert s.dependencies() == [("checkout", "payments", 443, "HTTPS", "api", None),
                                ("payments", "pay-db-01", 5432, "TCP", "database", None)]


# --- 6. re-importing --------------------------------------------------------------------------


def test_reimporting_the_same_files_changes_nothing(client: TributaryClient) -> None:
    s = Scenario(client)
    s.upload("F1", REVERT_A, "cmdb_export")
    s.upload("G1", REVERT_D1, "app_discovery")
    before = s.snapshot()
    details = {a["name"]: a for a in s.assets()}
    deps = s.dependencies()

    assert s.counts(s.upload("F2", REVERT_A, "cmdb_export")) == enrichment(rows_applied=3, assets_unchanged=3)
    assert s.counts(s.upload("G2", REVERT_D1, "app_discovery")) == \
        enrichment(rows_applied=2, dependencies_unchanged=2)
    after = s.snapshot()
    # Same values; the newest of equal claims is the provenance now.
    assert {n: a | {"provenance": {}} for n, a in after.items()} == \
        {n: a | {"provenance": {}} for n, a in before.items()}
    assert {n: a["provenance"] for n, a in after.items()} == {
        "r-db-01": {"F2:upload": A_ALL}, "r-web-01": {"F2:upload": A_ALL}, "r-web-02": {"F2:upload": A_ALL},
        "catalog": {"G2:upload": "asset_type name"}, "checkout": {"G2:upload": "asset_type name"},
        "payments": {"G2:upload": "asset_type name"}}
    assert s.dependencies() == deps
    # Nothing changed, so nothing was updated.
    for a in s.assets():
        assert (a["updated_at"], a["last_import_id"]) == \
            (details[a["name"]]["updated_at"], details[a["name"]]["last_import_id"])

    # The same upload sent twice under one idempotency key is one import.
    assert s.counts(s.upload("F3", REVERT_A, "cmdb_export", idempotency_key="inventory-f3")) == \
        enrichment(rows_applied=3, assets_unchanged=3)
    replay = client.upload_bytes(REVERT_A, "F3.csv", "cmdb_export", idempotency_key="inventory-f3")
    assert replay.status_code == 200, replay.text
    assert (replay.json()["import_id"], replay.json()["flow_id"]) == \
        (s.import_id("F3"), s.imports["F3"]["flow_id"])
    assert client.list_flows(page_size=100).json()["total"] == 5
    assert {n: a | {"provenance": {}} for n, a in s.snapshot().items()} == \
        {n: a | {"provenance": {}} for n, a in before.items()}


# --- 7. tenants -------------------------------------------------------------------------------


def test_another_tenant_sees_nothing_and_matches_nothing(
        client: TributaryClient, client_for: Callable[[Tenant], TributaryClient]) -> None:
    s = Scenario(client)
    s.upload("C1", CMDB_1, "cmdb_export")
    s.upload("D1", DISCOVERY_1, "app_discovery")
    s.upload("Y", csv("hostname,ip_address", "web-09,10.0.1.11"), "cmdb_export")
    mine = s.snapshot()
    assert len(mine) == 5 and len(s.parked()) == 1 and len(s.candidates()) == 1

    for other in (other_tenant(client, client_for), other_tenant(client, client_for, same_client_account=True)):
        for a in s.assets():
            assert other.get_asset(a["asset_id"]).status_code == 404
        for label in s.imports:
            assert other.revert_import(s.import_id(label)).status_code == 404
        for listing in (other.list_assets, other.list_dependencies, other.list_parked,
                        other.list_duplicate_candidates):
            body = listing().json()
            assert (body["total"], body["items"]) == (0, [])
        assert other.list_assets(import_id=s.import_id("C1")).json()["total"] == 0

        # The same file in the other tenant makes assets of its own.
        t = Scenario(other)
        assert t.counts(t.upload("C1", CMDB_1, "cmdb_export")) == enrichment(rows_applied=3, assets_created=3)
        assert {a["asset_id"] for a in t.assets()}.isdisjoint({a["asset_id"] for a in s.assets()})

    # Nothing the others did (or tried) touched this tenant.
    assert s.snapshot() == mine
    assert s.revert_counts(s.revert("Y")) == reverted(duplicate_candidates_removed=1)
    assert s.candidates() == []
    # D1's two applications, its four edges (each touches one of them) and its parked edge go.
    assert s.revert_counts(s.revert("D1")) == \
        reverted(assets_removed=2, dependencies_removed=4, parked_edges_removed=1)
    assert sorted(s.snapshot()) == ["app-01.corp.example", "db-01.corp.example", "web-01.corp.example"]
    assert (s.dependencies(), s.parked()) == ([], [])


# --- 8. placeholders --------------------------------------------------------------------------

PLACEHOLDER_CMDB = csv("hostname,ip_address,asset_type", "ph-web-01.corp.example,10.5.0.1,server")
PLACEHOLDER_INFRA = csv(
    "hostname,ip_address,cpu_avg_pct,collected_at",
    "ph-web-01,,20,2026-11-01T00:00:00Z",
    "ph-ghost-01,10.5.0.99,40,2026-11-01T00:00:00Z",
)
PLACEHOLDER_CMDB_2 = csv("hostname,ip_address,asset_type,environment",
                         "ph-ghost-01.corp.example,10.5.0.99,virtual_machine,production")


def test_placeholders_only_when_the_policy_says_so(client: TributaryClient) -> None:
    s = Scenario(client)
    s.upload("C", PLACEHOLDER_CMDB, "cmdb_export")
    assert s.counts(s.upload("P1", PLACEHOLDER_INFRA, "infrastructure")) == \
        enrichment(rows_applied=2, assets_updated=1, unmatched_rows=1)
    web = asset("server", "ph-web-01.corp.example", "10.5.0.1",
                perf={"cpu_avg_pct": 20, "collected_at": "2026-11-01T00:00:00+00:00"},
                prov={"C:upload": "asset_type hostname ip_address", "P1:upload": "collected_at cpu_avg_pct"})
    assert s.snapshot() == {"ph-web-01.corp.example": web}

    put_policy(client, create_placeholders=True)
    # ph-web-01's measurement is the same (its host name and address are not P2's to claim).
    assert s.counts(s.upload("P2", PLACEHOLDER_INFRA, "infrastructure")) == \
        enrichment(rows_applied=2, assets_created=1, assets_unchanged=1, placeholders_created=1)
    ghost = asset("server", "ph-ghost-01", "10.5.0.99", placeholder=True,
                  perf={"cpu_avg_pct": 40, "collected_at": "2026-11-01T00:00:00+00:00"},
                  prov={"P2:upload": "asset_type collected_at cpu_avg_pct hostname ip_address"})
    assert s.snapshot() == {
        "ph-ghost-01": ghost,
        "ph-web-01.corp.example": web | {"provenance": {"C:upload": "asset_type hostname ip_address",
                                                        "P2:upload": "collected_at cpu_avg_pct"}},
    }
    assert [a["name"] for a in client.list_assets(placeholder=True).json()["items"]] == ["ph-ghost-01"]

    # The CMDB brings the host: the placeholder is a real asset now ...
    assert s.counts(s.upload("C2", PLACEHOLDER_CMDB_2, "cmdb_export")) == enrichment(rows_applied=1, assets_updated=1)
    real = asset("virtual_machine", "ph-ghost-01.corp.example", "10.5.0.99", "production",
                 perf={"cpu_avg_pct": 40, "collected_at": "2026-11-01T00:00:00+00:00"},
                 prov={"C2:upload": "asset_type environment hostname ip_address",
                       "P2:upload": "collected_at cpu_avg_pct"})
    assert s.snapshot()["ph-ghost-01.corp.example"] == real
    assert client.list_assets(placeholder=True).json()["total"] == 0
    # ... and a placeholder again when that import is reverted.
    assert s.revert_counts(s.revert("C2")) == reverted(assets_restored=1)
    assert s.snapshot()["ph-ghost-01"] == ghost
