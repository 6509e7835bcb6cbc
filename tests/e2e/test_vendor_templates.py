"""Common vendor exports are recognised by their header and imported as they come, end to end.

The sample exports shipped with the CLI (``tributary_cli/samples/vendor``: AWS Migration Hub
import template, Azure Migrate CSV, ServiceNow CMDB list export; an RVTools workbook built by
``tributary_cli.vendor_samples``) are uploaded unchanged. For each one this checks:

* the template the validator recognised, in the flow and in ``GET /v1/imports/{id}/validation``;
* the field mapping of every column (vendor columns to canonical ones, the unit of bare numbers,
  conflicts between two vendor columns of one meaning, everything else kept as an extra);
* the exact findings for the messy cells the samples contain;
* the inventory afterwards (``enricher.assets`` of the test's tenant): which assets, with which
  normalised values, canonical columns without a column of their own and extras in
  ``attributes``, infrastructure metrics in ``performance`` of the asset matched by hostname.

Every expected value below was worked out from the sample files and the rules (field_mapping,
vendor_templates, rules/*), not copied from a run.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.vendor_samples import VINFO_HEADER, rvtools_xlsx_bytes, vendor_sample

pytestmark = pytest.mark.e2e

# The asset columns the enricher stores as such; everything else of a row is in ``attributes``.
ASSET_COLUMNS = ("name", "hostname", "fqdn", "ip_address", "mac_address", "serial_number", "external_id",
                 "asset_type", "environment", "criticality", "operating_system")


# --- helpers ---------------------------------------------------------------------------


def upload_sample(client: TributaryClient, filename: str, category: str) -> dict[str, Any]:
    with resources.as_file(vendor_sample(filename)) as path:
        response = client.upload(path, category)
    assert response.status_code == 202, response.text
    return response.json()


def completed_flow(client: TributaryClient, receipt: dict[str, Any]) -> dict[str, Any]:
    flow = client.wait_for_flow(receipt["flow_id"])
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    assert flow["child"]["current_phase"] == "complete"
    assert flow["child"]["data_import_id"] == receipt["import_id"]
    return flow


def validation_report(client: TributaryClient, import_id: str) -> dict[str, Any]:
    response = client.get_validation(import_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "validated", body
    return body


def findings(client: TributaryClient, import_id: str) -> list[tuple[Any, ...]]:
    """(row, column as uploaded, rule, agent, severity, value) of every finding, in row order."""
    return sorted(((i["row_number"], i["column"], i["rule_id"], i["agent"], i["severity"], i["value"])
                   for i in client.all_issues(import_id)), key=lambda f: (f[0] or 0, f[1] or "", f[2]))


def messages(client: TributaryClient, import_id: str) -> dict[tuple[Any, str], str]:
    """The message of every finding, by (row, rule)."""
    return {(i["row_number"], i["rule_id"]): i["message"] for i in client.all_issues(import_id)}


def counts(flow: dict[str, Any], phase: str, *names: str) -> tuple[Any, ...]:
    state = flow["child"]["phase_state"][phase]
    return tuple(state[name] for name in names)


VALIDATION_COUNTS = ("record_count", "valid_count", "invalid_count", "error_count", "warning_count")
INFRA_COUNTS = ("rows_applied", "assets_updated", "assets_unchanged", "unmatched_rows")


# Every canonical CMDB column: stored in a column of its own where enricher.assets has one,
# else (like every extra column) in its ``attributes``.
CMDB_CANONICAL = ASSET_COLUMNS + ("os_version", "cpu_cores", "memory_gb", "storage_gb", "location", "owner",
                                  "application", "source")


@dataclass(frozen=True)
class Asset:
    values: dict[str, Any]  # every value of the asset, canonical or extra, wherever it is stored
    performance: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        return {column: self.values.get(column) for column in ASSET_COLUMNS}

    def get(self, *columns: str) -> tuple[Any, ...]:
        return tuple(self.values.get(column) for column in columns)

    def attributes(self) -> dict[str, Any]:
        """Everything but the identifying and classifying ASSET_COLUMNS."""
        return {k: v for k, v in self.values.items() if k not in ASSET_COLUMNS}


async def _assets(database_url: str, tenant: Tenant) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        rows = await conn.fetch("SELECT * FROM enricher.assets WHERE client_account_id = $1 AND engagement_id = $2",
                                tenant.client_account_id, tenant.engagement_id)
    finally:
        await conn.close()
    return [dict(row) for row in rows]


def inventory(database_url: str, tenant: Tenant) -> dict[str, Asset]:
    """The tenant's assets keyed by host name (by IP address where there is none)."""
    out: dict[str, Asset] = {}
    for row in asyncio.run(_assets(database_url, tenant)):
        stored = {c: row[c] for c in CMDB_CANONICAL if c in row and row[c] is not None}
        key = row["hostname"] or row["ip_address"]
        assert key not in out, f"two assets for {key}"
        out[key] = Asset(row["attributes"] | stored, row["performance"])
    return out


def asset(name: str, **columns: Any) -> dict[str, Any]:
    """Expected ASSET_COLUMNS: ``name`` plus the given ones, every other one empty."""
    return dict.fromkeys(ASSET_COLUMNS) | {"name": name} | columns


def snake(header: str) -> str:
    """How an extra column is named (field_mapping docs): lower case, other characters as ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", header.lower()).strip("_")


# --- AWS Migration Hub import template ----------------------------------------------------

AWS_CMDB_MAPPED = {
    "ExternalId": "external_id", "IPAddress": "ip_address", "MACAddress": "mac_address", "HostName": "hostname",
    "CPU.NumberOfCores": "cpu_cores", "OS.Name": "operating_system", "OS.Version": "os_version",
    "VMware.VMName": "name", "RAM.TotalSizeInMB": "memory_gb", "Applications": "application",
}
AWS_INFRA_MAPPED = {
    "IPAddress": "ip_address", "HostName": "hostname", "RAM.TotalSizeInMB": "memory_total",
    "CPU.UsagePct.Avg": "cpu_avg_pct", "CPU.UsagePct.Max": "cpu_peak_pct",
}
# Every AWS column without a canonical meaning, as the extra attribute it is kept as.
AWS_EXTRAS = {
    "ExternalId": "externalid", "SMBiosId": "smbiosid", "IPAddress": "ipaddress", "MACAddress": "macaddress",
    "HostName": "hostname", "VMware.MoRefId": "vmware_morefid", "VMware.VCenterId": "vmware_vcenterid",
    "CPU.NumberOfProcessors": "cpu_numberofprocessors", "CPU.NumberOfCores": "cpu_numberofcores",
    "CPU.NumberOfLogicalCores": "cpu_numberoflogicalcores", "OS.Name": "os_name", "OS.Version": "os_version",
    "VMware.VMName": "vmware_vmname", "RAM.TotalSizeInMB": "ram_totalsizeinmb",
    "RAM.UsedSizeInMB.Avg": "ram_usedsizeinmb_avg", "RAM.UsedSizeInMB.Max": "ram_usedsizeinmb_max",
    "CPU.UsagePct.Avg": "cpu_usagepct_avg", "CPU.UsagePct.Max": "cpu_usagepct_max",
    "DiskReadsPerSecondInKB.Avg": "diskreadspersecondinkb_avg",
    "DiskWritesPerSecondInKB.Avg": "diskwritespersecondinkb_avg",
    "DiskReadsPerSecondInKB.Max": "diskreadspersecondinkb_max",
    "DiskWritesPerSecondInKB.Max": "diskwritespersecondinkb_max",
    "DiskReadsOpsPerSecond.Avg": "diskreadsopspersecond_avg",
    "DiskWritesOpsPerSecond.Avg": "diskwritesopspersecond_avg",
    "DiskReadsOpsPerSecond.Max": "diskreadsopspersecond_max",
    "DiskWritesOpsPerSecond.Max": "diskwritesopspersecond_max",
    "NetworkReadsPerSecondInKB.Avg": "networkreadspersecondinkb_avg",
    "NetworkWritesPerSecondInKB.Avg": "networkwritespersecondinkb_avg",
    "NetworkReadsPerSecondInKB.Max": "networkreadspersecondinkb_max",
    "NetworkWritesPerSecondInKB.Max": "networkwritespersecondinkb_max",
    "Applications": "applications", "ApplicationWave": "applicationwave", "Tags": "tags", "ServerId": "serverid",
}
AWS_HEADER = tuple(AWS_EXTRAS)  # the sample's header, in its order


def expected_mapping(header: tuple[str, ...], mapped: dict[str, str], extras: dict[str, str]
                     ) -> tuple[dict[str, str], list[str]]:
    """(full column mapping, extras in header order) for a header whose ``mapped`` columns are canonical."""
    columns = {column: mapped.get(column) or extras[column] for column in header}
    return columns, [column for column in header if column not in mapped]


def test_aws_migration_hub_cmdb_then_infrastructure(client: TributaryClient, database_url: str,
                                                    tenant: Tenant) -> None:
    # --- CMDB ---
    receipt = upload_sample(client, "aws_migration_hub.csv", "cmdb_export")
    assert (receipt["file_format"], receipt["record_count"]) == ("csv", 8)
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "aws_migration_hub"
    columns, extras = expected_mapping(AWS_HEADER, AWS_CMDB_MAPPED, AWS_EXTRAS)
    assert validation["field_mapping"] == columns
    assert flow["child"]["agent_state"]["validation"]["extra_columns"] == extras
    assert extras == [
        "SMBiosId", "VMware.MoRefId", "VMware.VCenterId", "CPU.NumberOfProcessors", "CPU.NumberOfLogicalCores",
        "RAM.UsedSizeInMB.Avg", "RAM.UsedSizeInMB.Max", "CPU.UsagePct.Avg", "CPU.UsagePct.Max",
        *AWS_HEADER[18:30], "ApplicationWave", "Tags", "ServerId"]

    report = validation_report(client, receipt["import_id"])
    assert report["field_mapping"] == columns
    assert report["mapping"] == {
        "template": "aws_migration_hub", "columns": columns, "extras": extras, "units": {"memory_gb": "MB"},
        "unmapped_canonical": ["fqdn", "serial_number", "asset_type", "environment", "criticality", "storage_gb",
                               "location", "owner", "source"],
        "conflicts": [],
    }

    # Row 3 lists two valid addresses in IPAddress, as Migration Hub writes them: a warning, not an
    # error; the first is the asset's address, all of them are kept.
    assert findings(client, receipt["import_id"]) == [
        (3, "IPAddress", "multiple_ip_addresses", "format", "warning", "10.20.2.21, 10.20.9.21")]
    assert messages(client, receipt["import_id"]) == {
        (3, "multiple_ip_addresses"): "IPAddress holds 2 addresses; the first, 10.20.2.21, is the asset's address "
                                      "and all are kept in ip_addresses"}
    assert flow["child"]["status"] == "completed"
    assert validation["verdict"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (8, 8, 0, 0, 1)
    assert counts(flow, "enrichment", "rows_applied", "assets_created", "assets_updated") == (8, 8, 0)

    assets = inventory(database_url, tenant)
    # Identity is the host name; INV-1005 has none (nor a VM name), so its IP address.
    assert {key: a.columns() for key, a in assets.items()} == {
        "web-01.corp.example": asset("web-01", hostname="web-01.corp.example", ip_address="10.20.1.11",
                                     mac_address="00:50:56:9a:10:01", external_id="INV-1001",
                                     operating_system="Linux"),
        "web-02.corp.example": asset("web-02", hostname="web-02.corp.example", ip_address="10.20.1.12",
                                     mac_address="00:50:56:9a:10:02", external_id="INV-1002",
                                     operating_system="linux"),
        # APP-01.CORP.EXAMPLE lower-cased; the first of its two addresses.
        "app-01.corp.example": asset("app-01", hostname="app-01.corp.example", ip_address="10.20.2.21",
                                     mac_address="00:50:56:9a:20:01", external_id="INV-1003",
                                     operating_system="Windows"),
        "db-01.corp.example": asset("db-01", hostname="db-01.corp.example", ip_address="10.20.3.31",
                                    mac_address="00:50:56:9a:30:01", external_id="INV-1004",
                                    operating_system="Windows"),
        "10.20.4.41": asset("10.20.4.41", ip_address="10.20.4.41", external_id="INV-1005", operating_system="LINUX"),
        "batch-01.corp.example": asset("batch-01", hostname="batch-01.corp.example", mac_address="00:50:56:9a:40:02",
                                       external_id="INV-1006", operating_system="Linux"),
        "legacy-ftp.corp.example": asset("legacy-ftp", hostname="legacy-ftp.corp.example", ip_address="10.20.5.51",
                                         mac_address="00:50:56:9a:50:01", external_id="INV-1007",
                                         operating_system="Windows"),
        "k8s-node-01.corp.example": asset("k8s-node-01", hostname="k8s-node-01.corp.example",
                                          ip_address="10.20.6.61", mac_address="00:50:56:9a:60:01",
                                          external_id="INV-1008", operating_system="Linux"),
    }
    # Canonical columns without an asset column of their own; memory from MB to GB.
    wanted = ("cpu_cores", "memory_gb", "os_version", "application")
    canonical = {key: dict(zip(wanted, a.get(*wanted), strict=True)) for key, a in assets.items()}
    assert canonical == {
        "web-01.corp.example": {"cpu_cores": "2", "memory_gb": "8", "os_version": "RHEL 8.9",
                                "application": "Storefront"},
        "web-02.corp.example": {"cpu_cores": "2", "memory_gb": "8", "os_version": "RHEL 8.9",
                                "application": "Storefront"},
        "app-01.corp.example": {"cpu_cores": "8", "memory_gb": "32", "os_version": "Server 2019 Datacenter",
                                "application": "Storefront,Payments"},
        "db-01.corp.example": {"cpu_cores": "16", "memory_gb": "128", "os_version": "Server 2016 Standard",
                               "application": "Payments"},
        "10.20.4.41": {"cpu_cores": "4", "memory_gb": "16", "os_version": "Ubuntu 22.04", "application": "Reporting"},
        "batch-01.corp.example": {"cpu_cores": "4", "memory_gb": "16", "os_version": None, "application": None},
        "legacy-ftp.corp.example": {"cpu_cores": "1", "memory_gb": "2", "os_version": "Server 2008 R2",
                                    "application": "File Transfer"},
        "k8s-node-01.corp.example": {"cpu_cores": "8", "memory_gb": "64", "os_version": "Ubuntu 22.04",
                                     "application": "Platform"},
    }
    # Every non-empty cell is kept: the vendor's unmapped columns under their extra names.
    assert assets["web-01.corp.example"].attributes() == {
        "cpu_cores": "2", "memory_gb": "8", "os_version": "RHEL 8.9", "application": "Storefront",
        "smbiosid": "4203a1b2-0001-4c5d-8e9f-000000000001", "vmware_morefid": "vm-2101",
        "vmware_vcenterid": "6f3b1c2e-8a4d-4e5f-9b7a-1c2d3e4f5a6b", "cpu_numberofprocessors": "1",
        "cpu_numberoflogicalcores": "4", "ram_usedsizeinmb_avg": "3120", "ram_usedsizeinmb_max": "6900",
        "cpu_usagepct_avg": "18.5", "cpu_usagepct_max": "71.2",
        "diskreadspersecondinkb_avg": "1159", "diskwritespersecondinkb_avg": "199",
        "diskreadspersecondinkb_max": "37892", "diskwritespersecondinkb_max": "18436",
        "diskreadsopspersecond_avg": "45", "diskwritesopspersecond_avg": "8",
        "diskreadsopspersecond_max": "1083", "diskwritesopspersecond_max": "535",
        "networkreadspersecondinkb_avg": "320", "networkwritespersecondinkb_avg": "410",
        "networkreadspersecondinkb_max": "2250", "networkwritespersecondinkb_max": "3100",
        "applicationwave": "Wave 1", "tags": "env:prod, tier:web",
    }
    assert assets["10.20.4.41"].attributes() == {
        "cpu_cores": "4", "memory_gb": "16", "os_version": "Ubuntu 22.04", "application": "Reporting",
        "cpu_numberofprocessors": "1", "cpu_numberoflogicalcores": "4", "applicationwave": "Wave 2",
    }
    # Every address of the multi-address cell, normalised and comma-joined, as an attribute.
    assert assets["app-01.corp.example"].attributes() == {
        "cpu_cores": "8", "memory_gb": "32", "os_version": "Server 2019 Datacenter",
        "application": "Storefront,Payments", "ip_addresses": "10.20.2.21,10.20.9.21",
        "vmware_morefid": "vm-2201", "vmware_vcenterid": "6f3b1c2e-8a4d-4e5f-9b7a-1c2d3e4f5a6b",
        "cpu_numberofprocessors": "2", "cpu_numberoflogicalcores": "16", "ram_usedsizeinmb_avg": "20480",
        "ram_usedsizeinmb_max": "28110", "cpu_usagepct_avg": "34.0", "cpu_usagepct_max": "88.4",
        "diskreadspersecondinkb_avg": "4021", "diskwritespersecondinkb_avg": "1877",
        "diskreadspersecondinkb_max": "90211", "diskwritespersecondinkb_max": "44120",
        "diskreadsopspersecond_avg": "120", "diskwritesopspersecond_avg": "64",
        "diskreadsopspersecond_max": "2210", "diskwritesopspersecond_max": "1380",
        "networkreadspersecondinkb_avg": "1200", "networkwritespersecondinkb_avg": "980",
        "networkreadspersecondinkb_max": "8800", "networkwritespersecondinkb_max": "7400",
        "applicationwave": "Wave 2", "tags": "env:prod, tier:app",
    }
    assert {key for key, a in assets.items() if "ip_addresses" in a.values} == {"app-01.corp.example"}
    assert all(a.performance == {} for a in assets.values())

    # --- infrastructure: the same file's utilisation columns, onto the assets just created ---
    receipt = upload_sample(client, "aws_migration_hub.csv", "infrastructure")
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "aws_migration_hub"
    columns, extras = expected_mapping(AWS_HEADER, AWS_INFRA_MAPPED, AWS_EXTRAS)
    assert validation["field_mapping"] == columns
    report = validation_report(client, receipt["import_id"])
    assert report["mapping"] == {
        "template": "aws_migration_hub", "columns": columns, "extras": extras, "units": {"memory_total": "MB"},
        "unmapped_canonical": ["memory_avg_pct", "memory_peak_pct", "disk_avg_pct", "disk_peak_pct", "disk_total",
                               "network_avg_mbps", "network_peak_mbps", "collected_at"],
        "conflicts": [],
    }
    # The same warning from the infrastructure rules (schema agent): the first address identifies the host.
    assert findings(client, receipt["import_id"]) == [
        (3, "IPAddress", "multiple_ip_addresses", "schema", "warning", "10.20.2.21, 10.20.9.21")]
    assert messages(client, receipt["import_id"])[(3, "multiple_ip_addresses")] == (
        "IPAddress holds 2 addresses; the first, 10.20.2.21, is the asset's address and identifies the host")
    assert flow["child"]["status"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (8, 8, 0, 0, 1)
    # Rows 1-4 and 6-8 name a host the inventory has; row 5 has no host name but its IP
    # address identifies the asset the CMDB import filed under it.
    assert counts(flow, "enrichment", *INFRA_COUNTS) == (8, 8, 0, 0)

    after = inventory(database_url, tenant)
    assert set(after) == set(assets)  # an infrastructure file creates no assets
    assert {key: a.performance for key, a in after.items()} == {
        "web-01.corp.example": {"cpu_avg_pct": 18.5, "cpu_peak_pct": 71.2, "memory_total": 8},
        "web-02.corp.example": {"cpu_avg_pct": 17.9, "cpu_peak_pct": 69, "memory_total": 8},
        "app-01.corp.example": {"cpu_avg_pct": 34, "cpu_peak_pct": 88.4, "memory_total": 32},
        "db-01.corp.example": {"cpu_avg_pct": 41.2, "cpu_peak_pct": 93.7, "memory_total": 128},
        "10.20.4.41": {"memory_total": 16},
        "batch-01.corp.example": {"cpu_avg_pct": 9.1, "cpu_peak_pct": 99, "memory_total": 16},
        "legacy-ftp.corp.example": {"cpu_avg_pct": 2.5, "cpu_peak_pct": 14, "memory_total": 2},
        "k8s-node-01.corp.example": {"cpu_avg_pct": 55, "cpu_peak_pct": 97.5, "memory_total": 64},
    }
    # Nothing but performance changed.
    assert {k: a.values for k, a in after.items()} == {k: a.values for k, a in assets.items()}


def test_aws_ip_only_performance_row_reaches_its_asset(client: TributaryClient, database_url: str,
                                                       tenant: Tenant) -> None:
    # INV-1005 (row 5) has no HostName in either import: the CMDB import files it under its IP
    # address, and the infrastructure rules accept ip_address as the row's identifier.
    completed_flow(client, upload_sample(client, "aws_migration_hub.csv", "cmdb_export"))
    flow = completed_flow(client, upload_sample(client, "aws_migration_hub.csv", "infrastructure"))
    assert inventory(database_url, tenant)["10.20.4.41"].performance == {"memory_total": 16}
    assert counts(flow, "enrichment", *INFRA_COUNTS) == (8, 8, 0, 0)


# --- Azure Migrate CSV import template -----------------------------------------------------

AZURE_CMDB_MAPPED = {
    "*Server name": "hostname", "IP addresses": "ip_address", "*Cores": "cpu_cores", "*Memory (In MB)": "memory_gb",
    "*OS name": "operating_system", "OS version": "os_version", "MAC Address": "mac_address",
}
AZURE_INFRA_MAPPED = {
    "*Server name": "hostname", "IP addresses": "ip_address", "*Memory (In MB)": "memory_total",
    "CPU utilization percentage": "cpu_avg_pct", "Memory utilization percentage": "memory_avg_pct",
}
AZURE_EXTRAS = {
    "*Server name": "server_name", "IP addresses": "ip_addresses", "*Cores": "cores",
    "*Memory (In MB)": "memory_in_mb", "*OS name": "os_name", "OS version": "os_version",
    "OS architecture": "os_architecture", "Server type": "server_type", "Hypervisor": "hypervisor",
    "CPU utilization percentage": "cpu_utilization_percentage",
    "Memory utilization percentage": "memory_utilization_percentage", "Network adapters": "network_adapters",
    "Network In throughput": "network_in_throughput", "Network Out throughput": "network_out_throughput",
    "Boot type": "boot_type", "Number of disks": "number_of_disks", "Storage in use (In GB)": "storage_in_use_in_gb",
    "Disk 1 size (In GB)": "disk_1_size_in_gb",
    "Disk 1 read throughput (MB per second)": "disk_1_read_throughput_mb_per_second",
    "Disk 1 write throughput (MB per second)": "disk_1_write_throughput_mb_per_second",
    "Disk 1 read ops (operations per second)": "disk_1_read_ops_operations_per_second",
    "Disk 1 write ops (operations per second)": "disk_1_write_ops_operations_per_second",
    "Disk 2 size (In GB)": "disk_2_size_in_gb",
    "Disk 2 read throughput (MB per second)": "disk_2_read_throughput_mb_per_second",
    "Disk 2 write throughput (MB per second)": "disk_2_write_throughput_mb_per_second",
    "Disk 2 read ops (operations per second)": "disk_2_read_ops_operations_per_second",
    "Disk 2 write ops (operations per second)": "disk_2_write_ops_operations_per_second",
    "Virtual Machine ID": "virtual_machine_id", "Virtual Machine Manager ID": "virtual_machine_manager_id",
    "MAC Address": "mac_address",
}
AZURE_HEADER = tuple(AZURE_EXTRAS)


def test_azure_migrate_cmdb_then_infrastructure(client: TributaryClient, database_url: str,
                                                tenant: Tenant) -> None:
    receipt = upload_sample(client, "azure_migrate.csv", "cmdb_export")
    assert (receipt["file_format"], receipt["record_count"]) == ("csv", 7)
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "azure_migrate"
    columns, extras = expected_mapping(AZURE_HEADER, AZURE_CMDB_MAPPED, AZURE_EXTRAS)
    # The asterisks of mandatory columns are ignored; "Server type" is the vendor's column, not asset_type.
    assert {c: columns[c] for c in ("*Server name", "*Memory (In MB)", "Server type", "Storage in use (In GB)")} == {
        "*Server name": "hostname", "*Memory (In MB)": "memory_gb", "Server type": "server_type",
        "Storage in use (In GB)": "storage_in_use_in_gb"}
    assert validation["field_mapping"] == columns
    assert flow["child"]["agent_state"]["validation"]["extra_columns"] == extras
    report = validation_report(client, receipt["import_id"])
    assert report["mapping"] == {
        "template": "azure_migrate", "columns": columns, "extras": extras, "units": {"memory_gb": "MB"},
        "unmapped_canonical": ["external_id", "fqdn", "serial_number", "name", "asset_type", "environment",
                               "criticality", "storage_gb", "location", "owner", "application", "source"],
        "conflicts": [],
    }

    # Row 3 (APP-01) has two addresses in "IP addresses": a warning; the first is the asset's address.
    assert findings(client, receipt["import_id"]) == [
        (3, "IP addresses", "multiple_ip_addresses", "format", "warning", "10.30.2.21,10.30.9.21")]
    assert messages(client, receipt["import_id"]) == {
        (3, "multiple_ip_addresses"): "IP addresses holds 2 addresses; the first, 10.30.2.21, is the asset's "
                                      "address and all are kept in ip_addresses"}
    assert flow["child"]["status"] == "completed"
    assert validation["verdict"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (7, 7, 0, 0, 1)
    assert counts(flow, "enrichment", "rows_applied", "assets_created", "assets_updated") == (7, 7, 0)

    assets = inventory(database_url, tenant)
    assert {key: a.columns() for key, a in assets.items()} == {
        "web-01.contoso.local": asset("web-01.contoso.local", hostname="web-01.contoso.local",
                                      ip_address="10.30.1.11", mac_address="00:50:56:a1:01:11",
                                      operating_system="Red Hat Enterprise Linux 8"),
        "web-02.contoso.local": asset("web-02.contoso.local", hostname="web-02.contoso.local",
                                      ip_address="10.30.1.12", mac_address="00:50:56:a1:01:12",
                                      operating_system="Red Hat Enterprise Linux 8"),
        "app-01.contoso.local": asset("app-01.contoso.local", hostname="app-01.contoso.local",
                                      ip_address="10.30.2.21", mac_address="00:50:56:a1:02:21",
                                      operating_system="Windows Server 2019 Datacenter"),
        "sql-01.contoso.local": asset("sql-01.contoso.local", hostname="sql-01.contoso.local",
                                      ip_address="10.30.3.31", mac_address="3c:ec:ef:10:33:01",
                                      operating_system="Windows Server 2016 Standard"),
        "legacy-ftp": asset("legacy-ftp", hostname="legacy-ftp", ip_address="10.30.5.51",
                            operating_system="windows server 2008 r2"),
        "k8s-node-01.contoso.local": asset("k8s-node-01.contoso.local", hostname="k8s-node-01.contoso.local",
                                           mac_address="00:50:56:a1:06:61", operating_system="Ubuntu Linux"),
        "batch-01.contoso.local": asset("batch-01.contoso.local", hostname="batch-01.contoso.local",
                                        ip_address="10.30.2.41", mac_address="00:50:56:a1:04:41",
                                        operating_system="CentOS"),
    }
    wanted = ("cpu_cores", "memory_gb", "os_version")
    assert {key: dict(zip(wanted, a.get(*wanted), strict=True)) for key, a in assets.items()} == {
        "web-01.contoso.local": {"cpu_cores": "2", "memory_gb": "8", "os_version": "8.9"},
        "web-02.contoso.local": {"cpu_cores": "2", "memory_gb": "8", "os_version": "8.9"},
        "app-01.contoso.local": {"cpu_cores": "4", "memory_gb": "16", "os_version": "1809"},
        "sql-01.contoso.local": {"cpu_cores": "16", "memory_gb": "128", "os_version": "1607"},
        "legacy-ftp": {"cpu_cores": "1", "memory_gb": "2", "os_version": None},
        "k8s-node-01.contoso.local": {"cpu_cores": "8", "memory_gb": "64", "os_version": "22.04"},
        "batch-01.contoso.local": {"cpu_cores": "4", "memory_gb": "16", "os_version": "7.9"},
    }
    assert assets["legacy-ftp"].attributes() == {
        "cpu_cores": "1", "memory_gb": "2", "os_architecture": "x64", "server_type": "Virtual",
        "hypervisor": "Hyper-V", "cpu_utilization_percentage": "3", "memory_utilization_percentage": "80",
        "network_adapters": "1", "network_in_throughput": "0.2", "network_out_throughput": "0.1",
        "boot_type": "BIOS", "number_of_disks": "1", "storage_in_use_in_gb": "55", "disk_1_size_in_gb": "60",
        "disk_1_read_throughput_mb_per_second": "0.3", "disk_1_write_throughput_mb_per_second": "0.1",
        "disk_1_read_ops_operations_per_second": "8", "disk_1_write_ops_operations_per_second": "3",
        "virtual_machine_id": "9b1f0e2d-4c3b-4a59-8e7d-6f5a4b3c2d01",
    }
    assert assets["sql-01.contoso.local"].values["disk_2_size_in_gb"] == "2048"
    assert assets["app-01.contoso.local"].attributes() == {
        "cpu_cores": "4", "memory_gb": "16", "os_version": "1809", "ip_addresses": "10.30.2.21,10.30.9.21",
        "os_architecture": "x64", "server_type": "Virtual", "hypervisor": "VMware",
        "cpu_utilization_percentage": "35", "memory_utilization_percentage": "72", "network_adapters": "2",
        "network_in_throughput": "6.5", "network_out_throughput": "4.9", "boot_type": "UEFI",
        "number_of_disks": "2", "storage_in_use_in_gb": "140", "disk_1_size_in_gb": "128",
        "disk_1_read_throughput_mb_per_second": "4.2", "disk_1_write_throughput_mb_per_second": "2.0",
        "disk_1_read_ops_operations_per_second": "120", "disk_1_write_ops_operations_per_second": "64",
        "disk_2_size_in_gb": "256", "disk_2_read_throughput_mb_per_second": "1.2",
        "disk_2_write_throughput_mb_per_second": "0.8", "disk_2_read_ops_operations_per_second": "30",
        "disk_2_write_ops_operations_per_second": "22",
        "virtual_machine_id": "502e71fa-1a53-4c1f-9e0a-7c1d9f0b1a03",
        "virtual_machine_manager_id": "a2f5c7e1-3b4d-4f6a-8c9e-0d1f2a3b4c5d",
    }
    assert {key for key, a in assets.items() if "ip_addresses" in a.values} == {"app-01.contoso.local"}

    # --- infrastructure ---
    receipt = upload_sample(client, "azure_migrate.csv", "infrastructure")
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "azure_migrate"
    columns, extras = expected_mapping(AZURE_HEADER, AZURE_INFRA_MAPPED, AZURE_EXTRAS)
    assert validation["field_mapping"] == columns
    report = validation_report(client, receipt["import_id"])
    assert report["mapping"] == {
        "template": "azure_migrate", "columns": columns, "extras": extras, "units": {"memory_total": "MB"},
        "unmapped_canonical": ["cpu_peak_pct", "memory_peak_pct", "disk_avg_pct", "disk_peak_pct", "disk_total",
                               "network_avg_mbps", "network_peak_mbps", "collected_at"],
        "conflicts": [],
    }
    assert findings(client, receipt["import_id"]) == [
        (3, "IP addresses", "multiple_ip_addresses", "schema", "warning", "10.30.2.21,10.30.9.21")]
    assert messages(client, receipt["import_id"])[(3, "multiple_ip_addresses")] == (
        "IP addresses holds 2 addresses; the first, 10.30.2.21, is the asset's address and identifies the host")
    assert flow["child"]["status"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (7, 7, 0, 0, 1)
    assert counts(flow, "enrichment", *INFRA_COUNTS) == (7, 7, 0, 0)

    after = inventory(database_url, tenant)
    assert {key: a.performance for key, a in after.items()} == {
        "web-01.contoso.local": {"cpu_avg_pct": 22, "memory_avg_pct": 61, "memory_total": 8},
        "web-02.contoso.local": {"cpu_avg_pct": 19, "memory_avg_pct": 58, "memory_total": 8},
        "app-01.contoso.local": {"cpu_avg_pct": 35, "memory_avg_pct": 72, "memory_total": 16},
        "sql-01.contoso.local": {"cpu_avg_pct": 48, "memory_avg_pct": 87, "memory_total": 128},
        "legacy-ftp": {"cpu_avg_pct": 3, "memory_avg_pct": 80, "memory_total": 2},
        "k8s-node-01.contoso.local": {"cpu_avg_pct": 57, "memory_avg_pct": 90, "memory_total": 64},
        "batch-01.contoso.local": {"memory_total": 16},  # no utilisation collected
    }
    assert {k: a.values for k, a in after.items()} == {k: a.values for k, a in assets.items()}


# --- ServiceNow CMDB export ------------------------------------------------------------------

SERVICENOW_MAPPING = {
    "sys_id": "external_id", "name": "name", "sys_class_name": "asset_type", "host_name": "hostname",
    "fqdn": "fqdn", "ip_address": "ip_address", "mac_address": "mac_address", "serial_number": "serial_number",
    "asset_tag": "asset_tag", "manufacturer": "manufacturer", "model_id": "model_id", "os": "operating_system",
    "os_version": "os_version", "os_service_pack": "os_service_pack", "cpu_count": "cpu_cores",
    "cpu_core_count": "cpu_core_count", "cpu_type": "cpu_type", "cpu_speed": "cpu_speed", "ram": "memory_gb",
    "disk_space": "storage_gb", "virtual": "virtual", "used_for": "environment", "busines_criticality": "criticality",
    "install_status": "install_status", "operational_status": "operational_status", "location": "location",
    "owned_by": "owner", "managed_by": "managed_by", "support_group": "support_group",
    "discovery_source": "source", "sys_created_on": "sys_created_on", "sys_updated_on": "sys_updated_on",
    # A custom field: the u_ prefix is dropped before lookup, so u_application is the application.
    "u_application": "application", "u_rack_position": "u_rack_position",
}
SERVICENOW_EXTRAS = [
    "asset_tag", "manufacturer", "model_id", "os_service_pack", "cpu_core_count", "cpu_type", "cpu_speed", "virtual",
    "install_status", "operational_status", "managed_by", "support_group", "sys_created_on", "sys_updated_on",
    "u_rack_position",
]

SYS_ID = "0a1b2c3d4e5f60718293a4b5c6d7e80"


def test_servicenow_cmdb_export(client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    receipt = upload_sample(client, "servicenow_cmdb.csv", "cmdb_export")
    assert receipt["record_count"] == 8
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "servicenow_cmdb"
    assert validation["field_mapping"] == SERVICENOW_MAPPING
    assert flow["child"]["agent_state"]["validation"]["extra_columns"] == SERVICENOW_EXTRAS
    report = validation_report(client, receipt["import_id"])
    assert report["mapping"] == {
        "template": "servicenow_cmdb", "columns": SERVICENOW_MAPPING, "extras": SERVICENOW_EXTRAS,
        "units": {"memory_gb": "MB", "storage_gb": "GB"}, "unmapped_canonical": [],
        # Two vendor columns for one meaning: the template's order of preference decides.
        "conflicts": [
            {"column": "cpu_core_count", "canonical": "cpu_cores", "winner": "cpu_count", "kept_as": "cpu_core_count"},
            {"column": "managed_by", "canonical": "owner", "winner": "owned_by", "kept_as": "managed_by"},
        ],
    }

    # Messy but valid: "production" in lower case, ServiceNow's "N - ..." criticalities,
    # cmdb_ci_* classes, "APP-01" as name, "london dc1": nothing to report.
    assert findings(client, receipt["import_id"]) == []
    assert flow["child"]["status"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (8, 8, 0, 0, 0)
    assert counts(flow, "enrichment", "rows_applied", "assets_created", "assets_updated") == (8, 8, 0)

    assets = inventory(database_url, tenant)
    server = {"asset_type": "server"}
    assert {key: a.columns() for key, a in assets.items()} == {
        "web-01": asset("web-01", hostname="web-01", fqdn="web-01.corp.example", ip_address="10.40.1.11",
                        mac_address="00:50:56:b2:01:11", serial_number="VMware-42 1a 2b 3c", external_id=f"{SYS_ID}1",
                        environment="production", criticality="high", operating_system="Linux Red Hat", **server),
        "web-02": asset("web-02", hostname="web-02", fqdn="web-02.corp.example", ip_address="10.40.1.12",
                        mac_address="00:50:56:b2:01:12", serial_number="VMware-42 1a 2b 3d", external_id=f"{SYS_ID}2",
                        environment="production", criticality="high", operating_system="Linux Red Hat", **server),
        "app-01": asset("APP-01", hostname="app-01", fqdn="app-01.corp.example", ip_address="10.40.2.21",
                        mac_address="00:50:56:b2:02:21", serial_number="VMware-42 1a 2b 3e", external_id=f"{SYS_ID}3",
                        environment="production", criticality="critical", operating_system="Windows 2019 Datacenter",
                        **server),
        "sqlprod01": asset("sqlprod01", hostname="sqlprod01", fqdn="sqlprod01.corp.example", ip_address="10.40.3.31",
                           mac_address="3c:ec:ef:20:33:01", serial_number="CZJ12345XY", external_id=f"{SYS_ID}4",
                           environment="production", criticality="critical", operating_system="Windows 2016 Standard",
                           **server),
        "legacy-ftp": asset("legacy-ftp", hostname="legacy-ftp", ip_address="10.40.5.51", external_id=f"{SYS_ID}5",
                            environment="production", criticality="medium",
                            operating_system="Windows 2008 R2 Standard", **server),
        "batch-01": asset("batch-01", hostname="batch-01", fqdn="batch-01.corp.example", ip_address="10.40.2.41",
                          mac_address="00:50:56:b2:04:41", serial_number="VMware-42 1a 2b 41",
                          external_id=f"{SYS_ID}6", environment="test", criticality="medium",
                          operating_system="Linux Ubuntu", **server),
        "k8s-node-01": asset("k8s-node-01", hostname="k8s-node-01", fqdn="k8s-node-01.corp.example",
                             ip_address="10.40.6.61", mac_address="00:50:56:b2:06:61",
                             serial_number="VMware-42 1a 2b 61",
                             external_id=f"{SYS_ID}7", environment="production", criticality="high",
                             operating_system="Linux Ubuntu", **server),
        "dev-tools-01": asset("dev-tools-01", hostname="dev-tools-01", fqdn="dev-tools-01.corp.example",
                              ip_address="10.40.7.71", mac_address="00:50:56:b2:07:71",
                              serial_number="VMware-42 1a 2b 71", external_id=f"{SYS_ID}8",
                              environment="development", criticality="low", operating_system="Linux CentOS",
                              **server),
    }
    wanted = ("os_version", "cpu_cores", "memory_gb", "storage_gb", "location", "owner", "source", "application")
    assert {key: a.get(*wanted) for key, a in assets.items()} == {
        "web-01": ("8.9", "2", "8", "80", "London DC1", "Alice Smith", "ServiceNow", "Storefront"),
        "web-02": ("8.9", "2", "8", "80", "London DC1", "Alice Smith", "ServiceNow", "Storefront"),
        "app-01": ("10.0.17763", "4", "16", "160", "London DC1", "Carol White", "ServiceNow", "Payments"),
        # cpu_count wins over cpu_core_count (cores per CPU), so a 2-socket, 16-core-per-socket
        # server has cpu_cores 2 (see the report: a template rule, not a total core count).
        "sqlprod01": ("10.0.14393", "2", "256", "4096", "London DC1", "Carol White", "SCCM", "Payments"),
        "legacy-ftp": ("6.1.7601", "1", "2", "60", "Manchester DC2", "Dave Brown", "Manual Entry", "File Transfer"),
        "batch-01": ("22.04", "4", "16", "100", "london dc1", "Eve Taylor", "ServiceNow", "Billing"),
        "k8s-node-01": ("22.04", "8", "64", "200", "London DC1", "Frank Green", "ServiceNow", "Platform"),
        "dev-tools-01": ("7.9", "2", "4", "50", None, "Eve Taylor", "ServiceNow", None),
    }
    assert assets["sqlprod01"].attributes() == {
        "os_version": "10.0.14393", "cpu_cores": "2", "memory_gb": "256", "storage_gb": "4096",
        "location": "London DC1", "owner": "Carol White", "source": "SCCM", "application": "Payments",
        "asset_tag": "P1000104", "manufacturer": "HPE", "model_id": "ProLiant DL380 Gen10", "cpu_core_count": "16",
        "cpu_type": "Intel(R) Xeon(R) Gold 6248", "cpu_speed": "2500", "virtual": "false",
        "install_status": "Installed", "operational_status": "Operational", "support_group": "DBA Team",
        "sys_created_on": "2019-11-20 09:44:00", "sys_updated_on": "2024-05-30 18:12:40",
        "u_rack_position": "R12-U20",
    }
    assert assets["legacy-ftp"].attributes() == {
        "os_version": "6.1.7601", "os_service_pack": "Service Pack 1", "cpu_cores": "1", "cpu_core_count": "1",
        "memory_gb": "2", "storage_gb": "60", "virtual": "true", "location": "Manchester DC2", "owner": "Dave Brown",
        "source": "Manual Entry", "application": "File Transfer", "manufacturer": "VMware, Inc.",
        "model_id": "VMware Virtual Platform", "install_status": "Installed", "operational_status": "Non-Operational",
        "support_group": "Windows Ops", "sys_created_on": "2014-07-08 12:00:00",
        "sys_updated_on": "2023-12-19 16:45:10",
    }
    # The losing owner column is kept, not dropped.
    assert {k: a.values.get("managed_by") for k, a in assets.items()} == {
        "web-01": "Bob Jones", "web-02": "Bob Jones", "app-01": "Bob Jones", "sqlprod01": None, "legacy-ftp": None,
        "batch-01": "Bob Jones", "k8s-node-01": "Frank Green", "dev-tools-01": None}


# --- RVTools workbook ------------------------------------------------------------------------

RVTOOLS_MAPPED = {
    "VM": "hostname", "DNS Name": "fqdn", "CPUs": "cpu_cores", "Memory": "memory_gb",
    "Primary IP Address": "ip_address", "Provisioned MiB": "storage_gb",
    "OS according to the VMware Tools": "operating_system", "VM UUID": "external_id",
}
_RHEL = "Red Hat Enterprise Linux 8 (64-bit)"
_WIN19 = "Microsoft Windows Server 2019 (64-bit)"
_WIN08 = "Microsoft Windows Server 2008 R2 (64-bit)"
_UBUNTU = "Ubuntu Linux (64-bit)"


def vm_uuid(index: int) -> str:
    return f"5003{index:04x}-6c1e-4b7a-9d2f-0a1b2c3d{index:04x}"


def test_rvtools_workbook_imports_the_vinfo_sheet(client: TributaryClient, database_url: str,
                                                  tenant: Tenant) -> None:
    response = client.upload_bytes(rvtools_xlsx_bytes(), "RVTools_export_all_2024-06-03.xlsx", "cmdb_export")
    assert response.status_code == 202, response.text
    receipt = response.json()
    # vInfo is the third sheet; vCPU and vMemory come first (8 rows each), vDisk has 12, vHost 4.
    assert (receipt["file_format"], receipt["record_count"]) == ("xlsx", 8)
    flow = completed_flow(client, receipt)
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["mapping_template"] == "rvtools_vinfo"

    field_mapping = validation["field_mapping"]
    # The vInfo header, not another sheet's (the projection's jsonb doesn't keep key order).
    assert sorted(field_mapping) == sorted(VINFO_HEADER)
    assert {c: n for c, n in field_mapping.items() if c in RVTOOLS_MAPPED} == RVTOOLS_MAPPED
    extras = [c for c in VINFO_HEADER if c not in RVTOOLS_MAPPED]
    assert flow["child"]["agent_state"]["validation"]["extra_columns"] == extras
    assert {c: field_mapping[c] for c in extras} == {c: snake(c) for c in extras}
    # The ESXi host is never the hostname, Datacenter never the location; the lesser of two
    # sources of one meaning is kept under its own name.
    assert {c: field_mapping[c] for c in ("Host", "Datacenter", "Network #1", "Cluster rule(s)", "FT Sec. Latency",
                                          "Total disk capacity MiB", "OS according to the configuration file",
                                          "VM ID")} == {
        "Host": "host", "Datacenter": "datacenter", "Network #1": "network_1", "Cluster rule(s)": "cluster_rule_s",
        "FT Sec. Latency": "ft_sec_latency", "Total disk capacity MiB": "total_disk_capacity_mib",
        "OS according to the configuration file": "os_according_to_the_configuration_file", "VM ID": "vm_id"}

    report = validation_report(client, receipt["import_id"])
    assert report["mapping"] == {
        "template": "rvtools_vinfo", "columns": field_mapping, "extras": extras,
        "units": {"memory_gb": "MB", "storage_gb": "MiB"},
        "unmapped_canonical": ["mac_address", "serial_number", "name", "asset_type", "environment", "criticality",
                               "os_version", "location", "owner", "application", "source"],
        "conflicts": [
            {"column": "OS according to the configuration file", "canonical": "operating_system",
             "winner": "OS according to the VMware Tools", "kept_as": "os_according_to_the_configuration_file"},
            {"column": "VM ID", "canonical": "external_id", "winner": "VM UUID", "kept_as": "vm_id"},
        ],
    }

    # Powered-off VMs without an IP or DNS name, a template, an upper-case VM name, an empty
    # annotation: all valid.
    assert findings(client, receipt["import_id"]) == []
    assert flow["child"]["status"] == "completed"
    assert counts(flow, "validation", *VALIDATION_COUNTS) == (8, 8, 0, 0, 0)
    assert counts(flow, "enrichment", "rows_applied", "assets_created", "assets_updated") == (8, 8, 0)

    assets = inventory(database_url, tenant)
    assert {key: a.columns() for key, a in assets.items()} == {
        "web-01": asset("web-01", hostname="web-01", fqdn="web-01.corp.local", ip_address="10.10.1.11",
                        external_id=vm_uuid(0), operating_system=_RHEL),
        "web-02": asset("web-02", hostname="web-02", fqdn="web-02.corp.local", ip_address="10.10.1.12",
                        external_id=vm_uuid(1), operating_system=_RHEL),
        "app-01": asset("app-01", hostname="app-01", fqdn="app-01.corp.local", ip_address="10.10.2.21",
                        external_id=vm_uuid(2), operating_system=_WIN19),
        # VM "DB-01": the host name lower-cased; its DNS name differs and stays the fqdn.
        "db-01": asset("db-01", hostname="db-01", fqdn="sqlprod01.corp.local", ip_address="10.10.3.31",
                       external_id=vm_uuid(3), operating_system=_WIN19),
        # Powered off / a template: no guest data, so no VMware Tools OS (the configured one is an attribute).
        "legacy-ftp": asset("legacy-ftp", hostname="legacy-ftp", external_id=vm_uuid(4)),
        "tpl-rhel8": asset("tpl-rhel8", hostname="tpl-rhel8", external_id=vm_uuid(5)),
        "batch-01": asset("batch-01", hostname="batch-01", fqdn="batch-01.corp.local", ip_address="10.10.2.41",
                          external_id=vm_uuid(6), operating_system=_UBUNTU),
        "k8s-node-01": asset("k8s-node-01", hostname="k8s-node-01", fqdn="k8s-node-01.corp.local",
                             ip_address="10.10.4.51", external_id=vm_uuid(7), operating_system=_UBUNTU),
    }
    # Memory in MiB to GB; storage is Provisioned MiB (disks plus swap) to GB; the ESXi host an attribute.
    wanted = ("cpu_cores", "memory_gb", "storage_gb", "host", "cluster", "vm_id",
              "os_according_to_the_configuration_file")
    assert {key: a.get(*wanted) for key, a in assets.items()} == {
        "web-01": ("2", "4", "44", "esx01.corp.local", "CL-PROD-01", "vm-1001", _RHEL),
        "web-02": ("2", "4", "44", "esx02.corp.local", "CL-PROD-01", "vm-1002", _RHEL),
        "app-01": ("4", "16", "176", "esx01.corp.local", "CL-PROD-01", "vm-1003", _WIN19),
        "db-01": ("8", "64", "1088", "esx03.corp.local", "CL-PROD-02", "vm-1004", _WIN19),
        "legacy-ftp": ("1", "2", "62", "esx03.corp.local", "CL-PROD-02", "vm-1005", _WIN08),
        "tpl-rhel8": ("2", "4", "24", "esx02.corp.local", "CL-PROD-01", "vm-1006", _RHEL),
        "batch-01": ("4", "8", "108", "esx04.corp.local", "CL-PROD-02", "vm-1007", _UBUNTU),
        "k8s-node-01": ("8", "32", "232", "esx04.corp.local", "CL-PROD-02", "vm-1008", _UBUNTU),
    }
    esxi = {f"esx0{i}.corp.local" for i in range(1, 5)}
    assert not esxi & {a.values.get("hostname") for a in assets.values()}
    assert not esxi & set(assets)
    # Per-VM vInfo values, not another sheet's columns (vCPU's "Sockets", vMemory's "Size MiB", vHost's "# Cores").
    web = assets["web-01"].values
    assert (web["powerstate"], web["template"], web["datacenter"], web["annotation"], web["folder"],
            web["total_disk_capacity_mib"], web["in_use_mib"], web["network_1"]) == (
        "poweredOn", "False", "DC-LONDON", "Public web front end", "/Prod/Web", "40960", "30211", "VLAN110-Web")
    assert not {"sockets", "size_mib", "cores", "capacity_mib", "esx_version"} & set(web)
    assert assets["tpl-rhel8"].values["template"] == "True"
    assert "annotation" not in assets["legacy-ftp"].values  # empty cell: nothing stored
    assert assets["batch-01"].values["powerstate"] == "suspended"
