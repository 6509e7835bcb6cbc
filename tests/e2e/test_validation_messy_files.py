"""Realistic, messy files of every category through the real pipeline, with the exact findings expected.

Each file in ``data/messy/`` is what people actually upload: renamed headers in mixed
case, a BOM and ``;`` delimiter from a European Excel, blank lines and cells, unit
suffixes, vendor spellings, and a handful of genuinely wrong values. Every expectation
below was derived from the rules (``validator.rules``), not copied from a run: the
finding list is exact, findings name columns as the uploaded file does, the counts and
verdict match the findings, and only the valid rows reach the inventory, normalised.

Each file also runs as an XLSX twin (the same table written with openpyxl, numbers as
numeric cells) and must give the very same findings and inventory.

The tests at the end pin down defects these files brought up, now fixed: they stay as
regression tests, each naming the input and what a user should get.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent / "data" / "messy"
COUNT_KEYS = ("record_count", "valid_count", "invalid_count", "error_count", "warning_count")

Issue = tuple[int | None, str | None, str, str, str | None]


# --------------------------------------------------------------------------- helpers


def _issue_key(t: Issue) -> tuple[Any, ...]:
    row, column, rule, severity, value = t
    return (row is not None, row or 0, column is not None, column or "", rule, severity, value or "")


def issue_tuples(issues: list[dict[str, Any]]) -> list[Issue]:
    return sorted(((i["row_number"], i["column"], i["rule_id"], i["severity"], i["value"]) for i in issues),
                  key=_issue_key)


async def _fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def fetch(database_url: str, sql: str, *args: object) -> list[dict[str, Any]]:
    rows = asyncio.run(_fetch(database_url, sql, *args))
    out = []
    for r in rows:
        d = dict(r)
        for key, value in d.items():
            if key in ("attributes", "performance", "classification") and isinstance(value, str):
                d[key] = json.loads(value)
        out.append(d)
    return out


def assets(database_url: str, tenant: Tenant, columns: str, key: str = "hostname") -> dict[str, dict[str, Any]]:
    """{hostname (or ``key``): row} of the tenant's assets; one asset per key."""
    rows = fetch(database_url, f"SELECT {key} AS asset_key, {columns} FROM enricher.assets"
                 " WHERE client_account_id = $1 AND engagement_id = $2", tenant.client_account_id,
                 tenant.engagement_id)
    out = {r.pop("asset_key"): r for r in rows}
    assert len(out) == len(rows), f"several assets share a {key}: {sorted(r for r in out)}"
    return out


def upload(client: TributaryClient, content: bytes, filename: str, category: str) -> tuple[dict, dict]:
    response = client.upload_bytes(content, filename, category)
    assert response.status_code == 202, response.text
    receipt = response.json()
    return receipt, client.wait_for_flow(receipt["flow_id"])


def load_baseline(client: TributaryClient) -> None:
    """The hosts the infrastructure and sensitive-data files refer to (a clean CMDB export)."""
    _, flow = upload(client, (DATA / "baseline_inventory.csv").read_bytes(), "baseline.csv", "cmdb_export")
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    assert flow["child"]["phase_state"]["enrichment"]["assets_created"] == 29


_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"-?\d+\.\d+")


def _typed(cell: str) -> Any:
    """A CSV cell as a spreadsheet would hold it: numbers as numbers, blanks as empty cells."""
    if cell == "":
        return None
    if _INT.fullmatch(cell):
        return int(cell)
    if _FLOAT.fullmatch(cell) and repr(float(cell)) == cell:
        return float(cell)
    return cell


def xlsx_twin(csv_path: Path) -> bytes:
    """The CSV's table as an XLSX workbook: same rows (blank lines as empty rows), numeric cells typed."""
    from openpyxl import Workbook

    text = csv_path.read_bytes().decode("utf-8-sig")
    delimiter = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    book = Workbook()
    sheet = book.active
    sheet.title = "Export"
    numeric = 0
    for index, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)):
        cells = row if index == 0 else [_typed(c) for c in row]
        numeric += sum(isinstance(c, (int, float)) for c in cells)
        sheet.append(cells)
    assert numeric, "the twin should hold real numeric cells, not only text"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------ expectations


@dataclass
class Case:
    category: str
    file: str
    field_mapping: dict[str, str]
    issues: list[Issue]
    counts: dict[str, int]
    enrichment: dict[str, int]
    # (row, rule) -> the exact message. "{col}" stands for the finding's column, "{<canonical>}" for another
    # column, each as the file names it or by its canonical name (see the test on message names);
    # a trailing "(*)" stands for a parenthesised part that varies per run (the upload time).
    messages: dict[tuple[int | None, str], str]
    inventory: Callable[[str, Tenant], None]
    needs_baseline: bool = False
    sensitive: bool = False

    @property
    def findings_by_rule(self) -> dict[str, int]:
        return dict(Counter(rule for _, _, rule, _, _ in self.issues))


# ---- cmdb_export: BOM, ';', CRLF, renamed headers, a blank line (row 9), an unknown extra column.

CMDB_MAPPING = {
    "Host Name": "hostname", "IP-Address": "ip_address", "MAC": "mac_address", "Serial No": "serial_number",
    "Type": "asset_type", "Env": "environment", "Business Criticality": "criticality", "CPU Cores": "cpu_cores",
    "RAM": "memory_gb", "OS": "operating_system", "Rack Unit": "rack_unit",
}

CMDB_ISSUES: list[Issue] = [
    (5, None, "missing_identifier", "error", None),
    (6, "IP-Address", "invalid_ip_address", "error", "10.20.300.5"),
    (7, "MAC", "invalid_mac_address", "error", "00:50:56:zz:04:06"),
    (8, "Type", "unknown_asset_type", "error", "Firewall Appliance"),
    (10, "Env", "unknown_environment", "warning", "Lab"),
    (11, "CPU Cores", "out_of_range", "error", "0"),
    (12, "CPU Cores", "out_of_range", "error", "5000"),
    # Same host as row 1 but for case: the later row is rejected and names the first.
    (13, "Host Name", "duplicate_hostname", "error", "Web-Prd-01"),
    (14, "IP-Address", "duplicate_ip_address", "warning", "10.20.1.12"),
    # Serials compare case-insensitively: "vmw-4211-aa03" is row 14's "VMW-4211-AA03".
    (15, "Serial No", "duplicate_serial_number", "warning", "vmw-4211-aa03"),
    (17, "Business Criticality", "unknown_criticality", "warning", "Gold"),
    (19, "Host Name", "hostname_underscore", "warning", "FILE_SRV_01"),
    (20, "RAM", "invalid_number", "error", "lots"),
]

CMDB_MESSAGES = {
    (5, "missing_identifier"): "the row has no identifier: one of external_id, hostname, fqdn, name, ip_address, "
                               "mac_address or serial_number is required",
    (6, "invalid_ip_address"): "{col} '10.20.300.5' is not an IP address: expected IPv4 (10.0.0.5, no leading "
                               "zeros) or IPv6 (2001:db8::5)",
    (7, "invalid_mac_address"): "{col} '00:50:56:zz:04:06' is not a MAC address: expected aa:bb:cc:dd:ee:ff, "
                                "AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or aabbccddeeff",
    (8, "unknown_asset_type"): "{col} 'Firewall Appliance' is not a known asset type: expected one of server, "
                               "virtual_machine, application, database, network_device, storage, load_balancer, "
                               "container (or an alias such as VM, Physical Server, cmdb_ci_server)",
    (10, "unknown_environment"): "{col} 'Lab' is not a known environment: expected one of production, staging, "
                                 "test, development, disaster_recovery (or prod, uat, qa, dev, dr…); kept as given",
    (11, "out_of_range"): "{col} '0' is out of range: must be a whole number from 1 to 1024",
    (12, "out_of_range"): "{col} '5000' is out of range: must be a whole number from 1 to 1024",
    (13, "duplicate_hostname"): "Host Name Web-Prd-01 also appears in row 1",
    (14, "duplicate_ip_address"): "IP-Address 10.20.1.12 also appears in row 2",
    (15, "duplicate_serial_number"): "Serial No vmw-4211-aa03 also appears in row 14",
    (17, "unknown_criticality"): "{col} 'Gold' is not a known criticality: expected one of critical, high, medium, "
                                 "low (or Tier 0–4, P1–P5, '1 - most critical'…); kept as given",
    (19, "hostname_underscore"): "{col} 'FILE_SRV_01' contains an underscore, which DNS host names do not allow; "
                                 "kept as given (lower-cased)",
    (20, "invalid_number"): "{col} 'lots' is not a size: expected a number with an optional unit (B, KB, MB, GB, "
                            "TB, PB or KiB…PiB; binary, 1 TB = 1024 GB)",
}


def _cmdb_inventory(database_url: str, tenant: Tenant) -> None:
    got = assets(database_url, tenant, "name, hostname, ip_address, mac_address, serial_number, asset_type, "
                                       "environment, criticality, operating_system, attributes")
    vm, prod = "virtual_machine", "production"

    def asset(host: str, ip: str, mac: str | None, serial: str | None, kind: str, env: str, crit: str | None,
              os: str | None, **attributes: str) -> tuple[str, dict[str, Any]]:
        return host, {"name": host, "hostname": host, "ip_address": ip, "mac_address": mac,
                      "serial_number": serial, "asset_type": kind, "environment": env, "criticality": crit,
                      "operating_system": os, "attributes": attributes}

    expected = dict([
        asset("web-prd-01", "10.20.1.11", "00:50:56:ab:01:11", "VMW-4211-AA01", vm, prod, "high", "RHEL 8.6",
              cpu_cores="4", memory_gb="16", rack_unit="U12"),
        # "16384 MB" is 16 GB; the hyphenated MAC is written with colons.
        asset("web-prd-02", "10.20.1.12", "00:50:56:ab:01:12", "VMW-4211-AA02", vm, prod, "high", "RHEL 8.6",
              cpu_cores="4", memory_gb="16", rack_unit="U13"),
        asset("app-prd-01", "10.20.2.21", "00:50:56:ab:02:21", "VMW-4211-AB21", vm, prod, "critical",
              "Windows Server 2019", cpu_cores="8", memory_gb="32"),
        asset("db-prd-01", "10.20.3.31", None, "CZ2134A0BX", "server", prod, "critical", "Oracle Linux 7.9",
              cpu_cores="32", memory_gb="256", rack_unit="U20"),
        # An unknown environment is only a warning: the row is imported with the value as given.
        asset("build-01", "10.20.5.9", None, "VMW-4211-AD09", vm, "Lab", "low", "Ubuntu 20.04",
              cpu_cores="4", memory_gb="16"),
        # Warnings only (duplicate IP, duplicate serial): imported.
        asset("web-prd-03", "10.20.1.12", "00:50:56:ab:01:13", "VMW-4211-AA03", vm, prod, "high", "RHEL 8.6",
              cpu_cores="4", memory_gb="16", rack_unit="U15"),
        asset("web-prd-04", "10.20.1.14", "00:50:56:ab:01:14", "vmw-4211-aa03", vm, prod, "high", "RHEL 8.6",
              cpu_cores="4", memory_gb="16", rack_unit="U16"),
        asset("mq-prd-01", "10.20.7.15", None, "VMW-4211-AE15", vm, prod, "high", "RHEL 8.6",
              cpu_cores="4", memory_gb="24", rack_unit="U17"),
        asset("lb-prd-01", "10.20.0.10", None, None, "load_balancer", prod, "Gold", None, rack_unit="U02"),
        asset("db-prd-02.corp.example.com", "10.20.3.32", None, "CZ2134A0BY", "database", prod, "critical",
              "Oracle Linux 7.9", cpu_cores="16", memory_gb="128", rack_unit="U21"),
        asset("file_srv_01", "10.20.8.19", None, "VMW-4211-AF19", "server", prod, "medium", "Windows Server 2016",
              cpu_cores="4", memory_gb="16", rack_unit="U22"),
        asset("jump-01", "10.20.0.21", "00:50:56:ab:00:21", "VMW-4211-AH21", vm, "disaster_recovery", "low",
              "Windows Server 2022", cpu_cores="2", memory_gb="4", rack_unit="U03"),
        asset("mon-01", "10.20.0.22", None, "VMW-4211-AH22", vm, "staging", "medium", "Ubuntu 22.04",
              cpu_cores="2", memory_gb="8"),
        asset("nas-01", "10.20.10.23", None, "NAS-4F-0023", "storage", prod, "medium", "ONTAP 9.12",
              rack_unit="U40"),
    ])
    assert got == expected


CMDB = Case(
    category="cmdb_export", file="cmdb_export.csv", field_mapping=CMDB_MAPPING, issues=CMDB_ISSUES,
    counts={"record_count": 22, "valid_count": 14, "invalid_count": 8, "error_count": 8, "warning_count": 5},
    enrichment={"assets_created": 14, "assets_updated": 0, "assets_unchanged": 0},
    messages=CMDB_MESSAGES, inventory=_cmdb_inventory,
)

# ---- app_discovery: one row per dependency edge.

APP_MAPPING = {"Source Application": "source", "Destination": "target", "Port": "port", "Protocol": "protocol",
               "Criticality": "criticality", "Confidence": "confidence"}

BILLING_CYCLE = "Billing → Ledger → Payments → Billing"
AUTH_CYCLE = "Auth Service → User Directory → Auth Service"

APP_ISSUES: list[Issue] = [
    # Each cycle once, rotated to its alphabetically first application, on the row closing it.
    (6, "Destination", "circular_dependency", "warning", BILLING_CYCLE),
    (8, "Destination", "circular_dependency", "warning", AUTH_CYCLE),
    (9, "Destination", "self_dependency", "error", "reporting"),
    # Session Cache appears only in row 11, which is rejected.
    (11, "Destination", "orphaned_application", "warning", "Session Cache"),
    (11, "Port", "invalid_port", "error", "0"),
    (12, "Port", "invalid_port", "error", "70000"),
    (13, "Port", "invalid_port", "error", "https"),
    (14, "Protocol", "unknown_protocol", "error", "SQLNet"),
    (15, None, "duplicate_edge", "warning", None),
    (16, None, "duplicate_edge", "warning", None),
    (17, "Criticality", "unknown_criticality", "warning", "Gold"),
    (18, "Confidence", "invalid_confidence", "error", "high"),
    (19, "Protocol", "conflicting_protocol", "error", "TCP"),
    (21, "Source Application", "required_value", "error", None),
]

APP_MESSAGES = {
    (6, "circular_dependency"): f"circular dependency: {BILLING_CYCLE}",
    (8, "circular_dependency"): f"circular dependency: {AUTH_CYCLE}",
    (9, "self_dependency"): "{col} 'reporting' is the source itself: an application cannot depend on itself",
    (11, "orphaned_application"): "application 'Session Cache' takes part in no valid dependency: every row naming "
                                  "it has an error",
    (11, "invalid_port"): "{col} '0' is not a port: expected a whole number from 1 to 65535, optionally with /tcp "
                          "or /udp (e.g. 443 or 443/tcp)",
    (13, "invalid_port"): "{col} 'https' is not a port: expected a whole number from 1 to 65535, optionally with "
                          "/tcp or /udp (e.g. 443 or 443/tcp)",
    (14, "unknown_protocol"): "{col} 'SQLNet' is not a known protocol: expected one of TCP, UDP, HTTP, HTTPS, GRPC, "
                              "ICMP (or an alias such as tcp/ip, http/1.1, tls, h2)",
    # Compared case-insensitively, after normalisation ("Https" is HTTPS, "443/tcp" is 443 over TCP).
    (15, "duplicate_edge"): "duplicate dependency order portal → ORDER API (port 443, protocol HTTPS): row 1 "
                            "already has it",
    (16, "duplicate_edge"): "duplicate dependency Payments → Billing (port 443, protocol TCP): row 6 already has it",
    (17, "unknown_criticality"): "{col} 'Gold' is not a known criticality: expected one of critical, high, medium, "
                                 "low (or Tier 0–4, P1–P5, '1 - most critical'…); kept as given",
    (18, "invalid_confidence"): "{col} 'high' is not a confidence: expected a fraction from 0 to 1 or a percentage "
                                "from 0 to 100 (e.g. 0.85, 85, 85%)",
    (19, "conflicting_protocol"): "{col} 'TCP' (TCP) does not run over UDP, which the port column gives (53/udp)",
    (21, "required_value"): "{col} is required: name the application that depends on the target",
}


def _app_inventory(database_url: str, tenant: Tenant) -> None:
    apps = assets(database_url, tenant, "asset_type", key="name")
    # Only applications of valid rows; each spelled as first seen in the file. No "Session Cache".
    names = ["Order Portal", "Order API", "Inventory Service", "Order DB", "Billing", "Ledger", "Payments",
             "Auth Service", "User Directory", "Reporting", "Backup Vault", "DNS Resolver"]
    assert apps == {n: {"asset_type": "application"} for n in names}
    rows = fetch(database_url,
                 "SELECT s.name AS source, t.name AS target, d.port, d.protocol, d.criticality,"
                 " d.confidence::text AS confidence"
                 " FROM enricher.asset_dependencies d JOIN enricher.assets s ON s.asset_id = d.source_asset_id"
                 " JOIN enricher.assets t ON t.asset_id = d.target_asset_id"
                 " WHERE d.client_account_id = $1 AND d.engagement_id = $2",
                 tenant.client_account_id, tenant.engagement_id)
    got = sorted((r["source"], r["target"], r["port"], r["protocol"], r["criticality"], r["confidence"])
                 for r in rows)
    assert got == sorted([
        ("Order Portal", "Order API", 443, "HTTPS", "high", "0.95"),
        ("Order API", "Inventory Service", 8080, "TCP", "medium", "0.9"),  # "90%"
        ("Inventory Service", "Order DB", 1521, "TCP", "critical", "0.8"),  # "TCP/IP"
        ("Billing", "Ledger", 443, "HTTPS", "high", "0.85"),  # "Https", 85
        ("Ledger", "Payments", 50051, "GRPC", "high", "0.7"),  # "grpc"
        ("Payments", "Billing", 443, "TCP", "high", "0.9"),  # "443/tcp" with no protocol
        ("Auth Service", "User Directory", 636, "TCP", "critical", "1"),
        ("User Directory", "Auth Service", 443, "HTTPS", "critical", "0.6"),
        ("Reporting", "Order DB", 5432, "TCP", "medium", "0.75"),
        ("Order DB", "Backup Vault", None, None, "Gold", "0.5"),  # "50%"; unknown criticality kept
        ("Inventory Service", "DNS Resolver", 53, "UDP", "low", "0.9"),  # "53/udp"
        ("Order API", "Payments", 8443, "HTTPS", "high", "0.85"),  # "SSL"
    ])


APP = Case(
    category="app_discovery", file="app_discovery.csv", field_mapping=APP_MAPPING, issues=APP_ISSUES,
    counts={"record_count": 22, "valid_count": 14, "invalid_count": 8, "error_count": 8, "warning_count": 6},
    enrichment={"assets_created": 12, "dependencies_created": 12, "dependencies_updated": 0,
                "dependencies_unchanged": 0},
    messages=APP_MESSAGES, inventory=_app_inventory,
)

# ---- infrastructure: utilisation, capacity, collection time.

INFRA_MAPPING = {
    "Server": "hostname", "IP Address": "ip_address", "CPU Utilization (%)": "cpu_avg_pct",
    "Peak CPU %": "cpu_peak_pct", "Memory Used %": "memory_avg_pct", "Mem Peak %": "memory_peak_pct",
    "Total RAM": "memory_total", "Disk Used %": "disk_avg_pct", "Disk Size": "disk_total",
    "Net Avg (Mbps)": "network_avg_mbps", "Net Peak (Mbps)": "network_peak_mbps", "Timestamp": "collected_at",
}

INFRA_ISSUES: list[Issue] = [
    (3, "CPU Utilization (%)", "out_of_range", "error", "120"),
    (4, "CPU Utilization (%)", "out_of_range", "error", "-5"),
    (5, "Peak CPU %", "peak_below_average", "error", "30"),
    (6, "Timestamp", "implausible_timestamp", "error", "1999-12-31T23:59:59Z"),
    (7, "Timestamp", "implausible_timestamp", "error", "2099-01-01 00:00:00"),
    (8, None, "missing_identifier", "error", None),
    (10, "Mem Peak %", "peak_below_average", "error", "65"),
    (10, "Net Peak (Mbps)", "peak_below_average", "error", "4"),
    (14, "CPU Utilization (%)", "invalid_number", "error", "n/a"),
    (16, "Server", "hostname_underscore", "warning", "file_srv_01"),
]

INFRA_MESSAGES = {
    (3, "out_of_range"): "{col} '120' is out of range: a percentage must be from 0 to 100",
    (4, "out_of_range"): "{col} '-5' is out of range: a percentage must be from 0 to 100",
    (5, "peak_below_average"): "{col} 30 is below {cpu_avg_pct} 50: a peak cannot be lower than the average",
    (7, "implausible_timestamp"): "{col} '2099-01-01 00:00:00' (2099-01-01T00:00:00+00:00) is more than one day "
                                  "after the import's reference time (*)",
    (6, "implausible_timestamp"): "{col} '1999-12-31T23:59:59Z' (1999-12-31T23:59:59+00:00) is before 2000-01-01, "
                                  "too early to be a collection time",
    (8, "missing_identifier"): "the row has no identifier: hostname or ip_address is required",
    (14, "invalid_number"): "{col} 'n/a' is not a percentage: expected a number from 0 to 100, optionally followed "
                            "by % (e.g. 45, 45.5%)",
    (16, "hostname_underscore"): "{col} 'file_srv_01' contains an underscore, which DNS host names do not allow; "
                                 "kept as given (lower-cased)",
}


def _perf(cpu: float, cpu_peak: float, mem: float, mem_peak: float, mem_total: float, disk: float,
          disk_total: float, net: float, net_peak: float) -> dict[str, float]:
    return {"cpu_avg_pct": cpu, "cpu_peak_pct": cpu_peak, "memory_avg_pct": mem, "memory_peak_pct": mem_peak,
            "memory_total": mem_total, "disk_avg_pct": disk, "disk_total": disk_total, "network_avg_mbps": net,
            "network_peak_mbps": net_peak}


def _infra_inventory(database_url: str, tenant: Tenant) -> None:
    # The collection time is checked on its own (test_performance_keeps_the_collection_time).
    got = {host: {k: v for k, v in row["performance"].items() if k != "collected_at"}
           for host, row in assets(database_url, tenant, "performance").items()}
    expected = dict.fromkeys(
        # Baseline hosts whose rows were rejected (or that have no row) keep no performance data.
        ["db-prd-01", "app-prd-01", "app-prd-02", "legacy-01", "batch-01", "cache-01", "build-01", "pay-prd-01",
         "pay-prd-02", "hr-prd-01", "hr-prd-02", "ehr-prd-01", "ehr-prd-02", "fin-prd-01", "crm-prd-01",
         "crm-prd-02", "mkt-prd-01", "bi-prd-01", "ops-prd-01"], {})
    expected |= {
        "web-prd-01": _perf(35, 78, 60, 72, 16, 40, 100, 12.5, 80),
        # "45%", "55 %", "16384MB" (= 16 GB), a bare 200 is GB.
        "web-prd-02": _perf(45, 90, 55, 70, 16, 35, 200, 15, 120),
        "mq-prd-01": _perf(22.5, 61.25, 48, 66, 24, 55.5, 300, 8.5, 40.25),
        # The host name is matched case-insensitively; "2048 GB" stays 2048.
        "db-prd-02.corp.example.com": _perf(55, 85, 75, 88, 128, 60, 2048, 150, 900),
        "jump-01": _perf(5, 12, 20, 25, 4, 15, 60, 0.5, 2),  # "4096 MB"
        "nas-01": _perf(8, 20, 30, 35, 64, 88, 1048576, 400, 1200),  # "1 PB" = 1024 * 1024 GB
        "mon-01": _perf(12, 30, 40, 55, 8, 35, 100, 2, 10),
        "file_srv_01": _perf(25, 60, 50, 75, 16, 45, 250, 20, 100),
        "web-prd-03": _perf(28, 66, 58, 71, 16, 38, 100, 11, 75),
        "web-prd-04": _perf(31, 70, 57, 69, 16, 39, 100, 10.75, 78.5),
    }
    assert got == expected


INFRA = Case(
    category="infrastructure", file="infrastructure.csv", field_mapping=INFRA_MAPPING, issues=INFRA_ISSUES,
    counts={"record_count": 19, "valid_count": 11, "invalid_count": 8, "error_count": 9, "warning_count": 1},
    # ghost-01 is valid but not in the inventory.
    enrichment={"assets_updated": 10, "assets_unchanged": 0, "unmatched_rows": 1},
    messages=INFRA_MESSAGES, inventory=_infra_inventory, needs_baseline=True,
)

# ---- sensitive_data: every shown value masked.

SENSITIVE_MAPPING = {"Server": "hostname", "Database": "data_store", "Data Classification": "classification",
                     "Compliance": "regulation", "Data Owner": "data_owner", "Records": "record_count"}

SENSITIVE_ISSUES: list[Issue] = [
    (6, "Data Classification", "unknown_classification", "error", "T******* (10 chars)"),  # Top Secret
    (7, "Data Classification", "required_value", "error", None),
    (8, "Compliance", "unknown_regulation", "warning", "C*** (4 chars)"),  # CASL
    (9, "Records", "invalid_number", "error", "-* (2 chars)"),  # -3
    (10, "Server", "required_value", "error", None),
    (12, "Data Classification", "unknown_classification", "error", "P******* (19 chars)"),  # PCI;Payments Secret
    (14, "Compliance", "unknown_regulation", "warning", "P******* (20 chars)"),  # PCI, GLBA, Basel III
    (15, "Records", "invalid_number", "error", "1**** (5 chars)"),  # 12,34
]

_CLASSES = "PII, PCI, PHI, confidential, internal, public"
_REGULATIONS = "GDPR, HIPAA, PCI-DSS, SOX, CCPA, GLBA, FERPA, LGPD, PIPEDA"
SENSITIVE_MESSAGES = {
    (6, "unknown_classification"): f"{{col}} has 1 value not recognised: expected {_CLASSES} (several may be "
                                   "given, separated by , ; / or |)",
    (7, "required_value"): f"{{col}} is required: one of {_CLASSES}",
    (8, "unknown_regulation"): f"{{col}} has 1 value not recognised: expected {_REGULATIONS} (several may be "
                               "given, separated by , ; / or |); kept as given",
    (9, "invalid_number"): "{col} is not a non-negative whole number (digits, optionally with comma thousands "
                           "separators such as 1,234)",
    (10, "required_value"): "{col} is required: name the host that holds the data",
}

# The raw cells behind the findings: none may show up in a finding, its message or the issues download.
SENSITIVE_RAW = ["Top Secret", "Top", "Secret", "CASL", "-3", "PCI;Payments Secret", "Payments Secret",
                 "PCI, GLBA, Basel III", "Basel III", "Basel", "12,34"]


def _classification(store: str, classes: str, regulation: str | None, owner: str, count: str) -> dict[str, str]:
    out = {"data_store": store, "classification": classes, "data_owner": owner, "record_count": count}
    return out | ({"regulation": regulation} if regulation is not None else {})


def _sensitive_inventory(database_url: str, tenant: Tenant) -> None:
    got = {host: row["classification"] for host, row in assets(database_url, tenant, "classification").items()}
    expected = dict.fromkeys(
        ["web-prd-01", "web-prd-02", "web-prd-03", "web-prd-04", "db-prd-02.corp.example.com", "app-prd-01",
         "app-prd-02", "legacy-01", "batch-01", "mq-prd-01", "cache-01", "jump-01", "nas-01", "build-01", "mon-01",
         "file_srv_01",
         # rows rejected: crm-prd-01 (row 6), web-prd-01 (7), bi-prd-01 (9), pay-prd-02 (12), ops-prd-01 (15)
         "crm-prd-01", "bi-prd-01", "pay-prd-02", "ops-prd-01"], {})
    expected |= {
        "db-prd-01": _classification("customers", "PII", "GDPR", "Jane Smith", "1234"),
        "pay-prd-01": _classification("card_vault", "PII,PCI", "PCI-DSS", "Finance Ops", "250000"),
        "hr-prd-01": _classification("employees", "PII", "GDPR", "HR Systems", "5400"),
        "ehr-prd-01": _classification("patients", "PHI", "HIPAA", "Clinical Systems", "98000"),
        "fin-prd-01": _classification("general_ledger", "confidential", "SOX", "Finance", "12500000"),
        # An unknown regulation is a warning: the cell is kept as given.
        "mkt-prd-01": _classification("campaigns", "PII", "CASL", "Marketing", "1234"),
        "ehr-prd-02": _classification("imaging", "PII,PHI", "GDPR,HIPAA", "Clinical Systems", "45000"),
        "crm-prd-02": _classification("leads", "PII", "GDPR,CCPA,LGPD", "Sales Ops", "1234567"),
        "hr-prd-02": _classification("payroll", "PII,PCI", "SOX", "HR Systems", "3100"),
    }
    assert got == expected


SENSITIVE = Case(
    category="sensitive_data", file="sensitive_data.csv", field_mapping=SENSITIVE_MAPPING, issues=SENSITIVE_ISSUES,
    counts={"record_count": 16, "valid_count": 10, "invalid_count": 6, "error_count": 6, "warning_count": 2},
    # bank-prd-01 is valid but not in the inventory.
    enrichment={"assets_updated": 9, "assets_unchanged": 0, "unmatched_rows": 1},
    messages=SENSITIVE_MESSAGES, inventory=_sensitive_inventory, needs_baseline=True, sensitive=True,
)

CASES = {case.category: case for case in (CMDB, APP, INFRA, SENSITIVE)}


def expected_message(case: Case, template: str, issue: dict[str, Any]) -> str:
    """The template with every column named as the uploaded file names it."""
    uploaded = {canonical: column for column, canonical in case.field_mapping.items()}
    return template.format(col=issue["column"], **uploaded)


def message_matches(case: Case, template: str, issue: dict[str, Any]) -> bool:
    expected, message = expected_message(case, template, issue), issue["message"]
    if expected.endswith("(*)"):  # a parenthesised tail that varies per run
        head = expected[:-3]
        return message.startswith(head + "(") and message.endswith(")") and ")" not in message[len(head):-1]
    return message == expected


def names_a_column_twice(case: Case, template: str, issue: dict[str, Any]) -> bool:
    """The message mentions a column besides its subject: its own name as a plain word ("is not a known
    environment"), or another column. Those are the messages of test_messages_rename_only_the_column."""
    body = template.replace("{col}", "", 1)
    column = issue["column"]
    canonical = case.field_mapping.get(column) if column else None
    return "{" in body or (canonical is not None and re.search(rf"\b{re.escape(canonical)}\b", body) is not None)


# ------------------------------------------------------------------------------ tests


def check_import(client: TributaryClient, database_url: str, tenant: Tenant, case: Case, content: bytes,
                 filename: str, file_format: str) -> list[dict[str, Any]]:
    if case.needs_baseline:
        load_baseline(client)
    receipt, flow = upload(client, content, filename, case.category)
    assert receipt["file_format"] == file_format
    assert receipt["record_count"] == case.counts["record_count"]
    import_id = receipt["import_id"]

    # The exact findings.
    issues = client.all_issues(import_id)
    assert issue_tuples(issues) == sorted(case.issues, key=_issue_key)
    by_key = {(i["row_number"], i["rule_id"]): i for i in issues}
    for (row, rule), template in case.messages.items():
        issue = by_key[(row, rule)]
        if not names_a_column_twice(case, template, issue):
            assert message_matches(case, template, issue), (row, rule, issue["message"])
    # The filters of the issues API agree with the list.
    assert {(i["row_number"], i["rule_id"]) for i in client.all_issues(import_id, severity="warning")} == {
        (row, rule) for row, _, rule, severity, _ in case.issues if severity == "warning"}
    some_column = next(column for _, column, _, _, _ in case.issues if column is not None)
    assert {(i["row_number"], i["rule_id"]) for i in client.all_issues(import_id, column=some_column)} == {
        (row, rule) for row, column, rule, _, _ in case.issues if column == some_column}

    # Verdict and counts, in the flow and from the validator.
    master, child = flow["master"], flow["child"]
    assert master["status"] == "completed", child["error_message"]
    assert child["status"] == "completed_with_errors"
    assert child["current_phase"] == "complete" and child["error_message"] is None
    assert child["data_validation_completed"] and child["asset_enrichment_completed"]
    validation = child["phase_state"]["validation"]
    assert validation["verdict"] == "completed_with_errors"
    assert {k: validation[k] for k in COUNT_KEYS} == case.counts
    assert validation["error_count"] == sum(1 for i in case.issues if i[3] == "error")
    assert validation["warning_count"] == sum(1 for i in case.issues if i[3] == "warning")
    assert validation["invalid_count"] == len({i[0] for i in case.issues if i[3] == "error"})
    assert validation["findings_by_rule"] == case.findings_by_rule
    assert validation["field_mapping"] == case.field_mapping
    assert child["field_mapping_completed"] is True
    report = client.get_validation(import_id).json()
    assert report["verdict"] == "completed_with_errors"
    assert {k: report[k] for k in COUNT_KEYS} == case.counts
    assert report["field_mapping"] == case.field_mapping

    # Processing steps.
    steps = {s["step_name"]: s for s in flow["steps"]}
    assert [s["step_name"] for s in flow["steps"]] == ["upload", "validation", "enrichment"]
    assert {name: (s["status"], s["records_processed"]) for name, s in steps.items()} == {
        "upload": ("completed", case.counts["record_count"]),
        "validation": ("completed", case.counts["record_count"]),
        "enrichment": ("completed", case.counts["valid_count"]),
    }
    assert steps["validation"]["output"]["findings_by_rule"] == case.findings_by_rule

    # The inventory got the valid rows only, normalised.
    enrichment = child["phase_state"]["enrichment"]
    assert {k: enrichment[k] for k in case.enrichment} == case.enrichment
    assert enrichment["rows_applied"] == case.counts["valid_count"]
    case.inventory(database_url, tenant)

    if case.sensitive:
        check_masked(client, import_id, issues, case)
    return issues


def check_masked(client: TributaryClient, import_id: str, issues: list[dict[str, Any]], case: Case) -> None:
    """No finding of a sensitive-data import shows a raw cell: not as value, not in its message."""
    # The file has no blank lines, so row N is the N-th data line.
    rows = dict(enumerate(csv.DictReader(io.StringIO((DATA / case.file).read_text())), start=1))
    for issue in issues:
        raw = rows[issue["row_number"]].get(issue["column"]) if issue["column"] else None
        if raw:
            assert issue["value"] != raw and raw not in (issue["value"] or ""), issue
            assert raw not in issue["message"], issue
        for raw in SENSITIVE_RAW:
            assert raw not in issue["message"], (issue, raw)
            assert issue["value"] is None or raw not in issue["value"], (issue, raw)
        if issue["value"] is not None:
            assert re.fullmatch(r".\*{1,7} \(\d+ chars\)|\*", issue["value"]), issue
    download = client.download_issues(import_id)
    assert download.status_code == 200
    for raw in SENSITIVE_RAW:
        assert raw not in download.text, raw


@pytest.mark.parametrize("category", list(CASES))
def test_messy_csv(client: TributaryClient, database_url: str, tenant: Tenant, category: str) -> None:
    case = CASES[category]
    check_import(client, database_url, tenant, case, (DATA / case.file).read_bytes(), case.file, "csv")


@pytest.mark.parametrize("category", list(CASES))
def test_messy_xlsx_twin_gives_the_same_findings(client: TributaryClient, database_url: str, tenant: Tenant,
                                                 category: str) -> None:
    case = CASES[category]
    filename = case.file.replace(".csv", ".xlsx")
    check_import(client, database_url, tenant, case, xlsx_twin(DATA / case.file), filename, "xlsx")


def test_cmdb_file_is_what_it_claims_to_be() -> None:
    """Guards the fixture: a UTF-8 BOM, ';' delimiters, CRLF line ends and one blank line."""
    raw = (DATA / "cmdb_export.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw[3:].split(b"\r\n")
    assert lines[0].count(b";") == 10 and b"," not in lines[0]
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert lines[9] == b""  # row 9 is blank: the rows after it keep their line-based numbers


def test_failed_rows_download_lists_exactly_the_rejected_rows(client: TributaryClient) -> None:
    receipt, flow = upload(client, (DATA / "cmdb_export.csv").read_bytes(), "cmdb_export.csv", "cmdb_export")
    assert flow["master"]["status"] == "completed"
    download = client.download_failed_rows(receipt["import_id"])
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text.lstrip("\ufeff"))))
    assert [r["tributary_errors"].split(":", 1)[0] for r in rows] == [
        f"row {n}" for n in (5, 6, 7, 8, 11, 12, 13, 20)]
    # Exactly as uploaded (the user fixes and re-uploads this file).
    assert list(rows[0])[:-1] == list(CMDB_MAPPING)
    assert rows[1]["IP-Address"] == "10.20.300.5" and rows[6]["Host Name"] == "Web-Prd-01"


# ------------------------------------------------------------- defects found, kept as regressions


@pytest.mark.parametrize("category", ["cmdb_export", "app_discovery", "infrastructure"])
def test_messages_rename_only_the_column(client: TributaryClient, database_url: str, tenant: Tenant,
                                         category: str) -> None:
    case = CASES[category]
    if case.needs_baseline:
        load_baseline(client)
    receipt, _ = upload(client, (DATA / case.file).read_bytes(), case.file, case.category)
    issues = {(i["row_number"], i["rule_id"]): i for i in client.all_issues(receipt["import_id"])}
    checked = 0
    for (row, rule), template in case.messages.items():
        issue = issues[(row, rule)]
        if names_a_column_twice(case, template, issue):
            checked += 1
            assert message_matches(case, template, issue), (expected_message(case, template, issue),
                                                            issue["message"])
    assert checked, "this file has no such message: nothing to check"


def _tenant_assets(database_url: str, tenant: Tenant, columns: str) -> list[tuple[Any, ...]]:
    rows = fetch(database_url, f"SELECT {columns} FROM enricher.assets WHERE client_account_id = $1"
                 " AND engagement_id = $2", tenant.client_account_id, tenant.engagement_id)
    return sorted((tuple(r.values()) for r in rows), key=repr)


def test_rows_identified_only_by_serial_or_asset_id_reach_the_inventory(
        client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    """Regression: the first enricher put NULL into assets.name for such rows and dead-lettered the import."""
    content = b"Host Name,Serial No,Asset ID\nweb-1,,\n,SN-0001,\n,,CI-42\n"
    _, flow = upload(client, content, "ids.csv", "cmdb_export")
    assert flow["child"]["phase_state"]["validation"]["valid_count"] == 3
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    assert _tenant_assets(database_url, tenant, "hostname, serial_number, external_id") == sorted(
        [("web-1", None, None), (None, "SN-0001", None), (None, None, "CI-42")], key=repr)


def test_rows_identified_only_by_fqdn_or_mac_reach_the_inventory(
        client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    """Regression: the first enricher gave such rows no identity and dropped them without a trace."""
    content = b"Host Name,FQDN,MAC\nweb-1,,\n,APP1.corp.example.com.,\n,,00-11-22-33-44-55\n"
    _, flow = upload(client, content, "ids.csv", "cmdb_export")
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    assert flow["child"]["phase_state"]["validation"]["valid_count"] == 3
    assert _tenant_assets(database_url, tenant, "hostname, fqdn, mac_address") == sorted(
        [("web-1", None, None), (None, "app1.corp.example.com", None), (None, None, "00:11:22:33:44:55")], key=repr)


def test_duplicate_ip_compares_normalised_addresses(client: TributaryClient, database_url: str,
                                                    tenant: Tenant) -> None:
    content = b"Host Name,IP Address\nh1,2001:db8::10\nh2,2001:DB8:0:0:0:0:0:10\n"
    receipt, flow = upload(client, content, "v6.csv", "cmdb_export")
    assert flow["master"]["status"] == "completed"
    assert _tenant_assets(database_url, tenant, "hostname, ip_address") == [("h1", "2001:db8::10"),
                                                                             ("h2", "2001:db8::10")]
    assert issue_tuples(client.all_issues(receipt["import_id"])) == [
        (2, "IP Address", "duplicate_ip_address", "warning", "2001:DB8:0:0:0:0:0:10")]


def test_duplicate_never_names_a_rejected_row(client: TributaryClient) -> None:
    content = b"Host Name,IP Address\nh3,10.0.0.3\nH3,10.0.0.30\nh5,10.0.0.30\n"
    receipt, flow = upload(client, content, "dups.csv", "cmdb_export")
    assert flow["master"]["status"] == "completed"
    assert issue_tuples(client.all_issues(receipt["import_id"])) == [
        (2, "Host Name", "duplicate_hostname", "error", "H3")]


def test_performance_rows_identified_by_ip_only_are_matched(
        client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    """Regression: the first enricher matched performance rows by hostname only and dropped the others."""
    _, base = upload(client, b"hostname,ip_address\nweb-1,10.0.0.1\nweb-2,10.0.0.2\n", "b.csv", "cmdb_export")
    assert base["master"]["status"] == "completed"
    _, flow = upload(client, b"Server,IP Address,CPU %\nweb-1,10.0.0.1,40\n,10.0.0.2,50\n", "p.csv",
                     "infrastructure")
    assert flow["child"]["phase_state"]["validation"]["valid_count"] == 2
    assert _tenant_assets(database_url, tenant, "hostname, performance") == [
        ("web-1", {"cpu_avg_pct": 40}), ("web-2", {"cpu_avg_pct": 50})]


def test_xlsx_percent_formatted_cells_keep_their_percent(client: TributaryClient, database_url: str,
                                                         tenant: Tenant) -> None:
    from openpyxl import Workbook

    _, base = upload(client, b"hostname\nweb-1\n", "b.csv", "cmdb_export")
    assert base["master"]["status"] == "completed"
    book = Workbook()
    sheet = book.active
    sheet.append(["Server", "CPU %", "Peak CPU %"])
    sheet.append(["web-1", 0.45, 0.9])
    sheet["B2"].number_format = sheet["C2"].number_format = "0%"
    out = io.BytesIO()
    book.save(out)
    _, flow = upload(client, out.getvalue(), "perf.xlsx", "infrastructure")
    assert flow["master"]["status"] == "completed"
    assert _tenant_assets(database_url, tenant, "hostname, performance") == [
        ("web-1", {"cpu_avg_pct": 45, "cpu_peak_pct": 90})]


def test_performance_keeps_the_collection_time(client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    """collected_at is validated and normalised to ISO-8601 UTC: the inventory keeps it with the figures.

    Regression: the first enricher dropped it, so nobody could tell how old a host's figures were.
    """
    load_baseline(client)
    _, flow = upload(client, (DATA / "infrastructure.csv").read_bytes(), "infrastructure.csv", "infrastructure")
    assert flow["master"]["status"] == "completed"
    got = {host: row["performance"].get("collected_at")
           for host, row in assets(database_url, tenant, "performance").items() if row["performance"]}
    assert got == {
        "web-prd-01": "2026-11-20T10:00:00+00:00",
        "web-prd-02": "2026-11-20T10:05:00+00:00",  # no zone: UTC
        "mq-prd-01": "2026-11-20T12:30:00.250000+00:00",
        "db-prd-02.corp.example.com": "2026-11-21T08:00:00+00:00",  # epoch milliseconds
        "jump-01": "2026-11-21T08:30:00+00:00",
        "nas-01": "2026-11-21T14:00:00+00:00",  # -05:00
        "mon-01": "2026-11-21T10:00:00+00:00",
        "file_srv_01": "2026-11-21T10:30:00+00:00",
        "web-prd-03": "2026-11-21T11:00:00+00:00",
        "web-prd-04": "2026-11-21T11:00:00+00:00",
    }
