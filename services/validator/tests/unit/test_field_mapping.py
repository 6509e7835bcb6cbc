"""Field mapping: synonyms, vendor templates, conflicts, extras, units, required columns.

Vendor headers are the real ones (see validator.vendor_templates for their sources);
each template test asserts the complete mapping, so a changed table shows up here.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import random
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from contracts import Category
from openpyxl import load_workbook
from tributary_cli import vendor_samples
from validator.field_mapping import (
    ALIASES,
    CANONICAL,
    CATEGORY_ALIASES,
    REQUIRED,
    ColumnMapping,
    Conflict,
    map_columns,
    map_header,
    missing_required,
    normalise,
)
from validator.vendor_templates import (
    AWS_MIGRATION_HUB_HEADER,
    AZURE_MIGRATE_HEADER,
    RVTOOLS_VINFO_HEADER,
    SERVICENOW_CMDB_HEADER,
    TEMPLATE_NAMES,
    TEMPLATES,
    VendorTemplate,
    detect_template,
    header_key,
)

CMDB, APPS, INFRA, SENSITIVE = (
    Category.CMDB_EXPORT, Category.APP_DISCOVERY, Category.INFRASTRUCTURE, Category.SENSITIVE_DATA,
)


def mapped(mapping: ColumnMapping) -> dict[str, str]:
    """{uploaded header: canonical column} for the columns that got a canonical meaning."""
    return {column: name for column, name in mapping.columns.items() if column not in mapping.extras}


# --- normalising and synonyms ---------------------------------------------------------


def test_normalise_and_header_key() -> None:
    assert normalise("  Server__Name ") == "server_name"
    assert normalise("Memory (In MB)") == "memory_in_mb"
    assert normalise("CPU %") == "cpu_pct"
    assert {header_key(h) for h in ("HostName", "Host Name", "host_name", "HOST-NAME", " host.name ")} == {"hostname"}


def test_legacy_map_header_keeps_its_shape() -> None:
    mapping = map_header(CMDB, ["Host Name", "IP-Address", "serial_no", "Rack Unit"])
    assert mapping == {"Host Name": "hostname", "IP-Address": "ip_address", "serial_no": "serial_number",
                       "Rack Unit": "rack_unit"}


@pytest.mark.parametrize("category", list(Category))
def test_every_canonical_column_maps_from_its_own_name_in_any_spelling(category: Category) -> None:
    for column in CANONICAL[category]:
        spellings = [column, column.upper(), column.replace("_", " ").title(), column.replace("_", "-")]
        for spelling in spellings:
            assert mapped(map_columns(category, [spelling])) == {spelling: column}


SYNONYM_CASES: list[tuple[Category, str, str]] = [
    # the headers named in the brief
    *[(CMDB, h, "hostname") for h in ("Host Name", "server_name", "hostname", "Computer Name", "VM Name")],
    *[(CMDB, h, "ip_address") for h in ("IP Address", "ip_addr", "IPv4 Address", "Primary IP")],
    # cmdb_export
    (CMDB, "Asset ID", "external_id"), (CMDB, "CI ID", "external_id"), (CMDB, "UUID", "external_id"),
    (CMDB, "DNS Name", "fqdn"), (CMDB, "Fully Qualified Domain Name", "fqdn"),
    (CMDB, "Display Name", "name"), (CMDB, "CI Name", "name"),
    (CMDB, "MAC", "mac_address"), (CMDB, "Physical Address", "mac_address"),
    (CMDB, "S/N", "serial_number"), (CMDB, "Service Tag", "serial_number"), (CMDB, "Serial No.", "serial_number"),
    (CMDB, "Type", "asset_type"), (CMDB, "CI Class", "asset_type"),
    (CMDB, "Env", "environment"), (CMDB, "Lifecycle Stage", "environment"),
    (CMDB, "Business Criticality", "criticality"),
    (CMDB, "OS", "operating_system"), (CMDB, "Guest OS", "operating_system"),
    (CMDB, "OS Version", "os_version"), (CMDB, "OS Release", "os_version"),
    (CMDB, "vCPUs", "cpu_cores"), (CMDB, "Number of Cores", "cpu_cores"),
    (CMDB, "RAM", "memory_gb"), (CMDB, "Total Memory", "memory_gb"),
    (CMDB, "Disk Size", "storage_gb"), (CMDB, "Storage", "storage_gb"),
    (CMDB, "Data Center", "location"), (CMDB, "Site", "location"),
    (CMDB, "Owned By", "owner"), (CMDB, "Business Owner", "owner"),
    (CMDB, "App Name", "application"), (CMDB, "Business Service", "application"),
    (CMDB, "Data Source", "source"), (CMDB, "Discovery Source", "source"),
    # app_discovery: "source"/"type" mean something else here
    (APPS, "From", "source"), (APPS, "Source Application", "source"), (APPS, "Application", "source"),
    (APPS, "To", "target"), (APPS, "Destination", "target"), (APPS, "Depends On", "target"),
    (APPS, "Source Kind", "source_type"), (APPS, "Destination Type", "target_type"),
    (APPS, "Destination Port", "port"), (APPS, "Proto", "protocol"), (APPS, "Type", "dependency_type"),
    (APPS, "Relationship", "dependency_type"), (APPS, "Impact", "criticality"), (APPS, "Score", "confidence"),
    # infrastructure
    (INFRA, "Server", "hostname"), (INFRA, "Name", "hostname"), (INFRA, "IP", "ip_address"),
    (INFRA, "CPU %", "cpu_avg_pct"), (INFRA, "Avg CPU", "cpu_avg_pct"), (INFRA, "CPU Utilization", "cpu_avg_pct"),
    (INFRA, "CPU Usage Percent", "cpu_avg_pct"), (INFRA, "Peak CPU", "cpu_peak_pct"),
    (INFRA, "CPU Max %", "cpu_peak_pct"), (INFRA, "Memory %", "memory_avg_pct"),
    (INFRA, "Memory Utilization Percentage", "memory_avg_pct"), (INFRA, "Mem Peak", "memory_peak_pct"),
    (INFRA, "RAM", "memory_total"), (INFRA, "Disk Usage %", "disk_avg_pct"), (INFRA, "Max Disk", "disk_peak_pct"),
    (INFRA, "Disk Capacity", "disk_total"), (INFRA, "Network Throughput", "network_avg_mbps"),
    (INFRA, "Bandwidth Peak", "network_peak_mbps"), (INFRA, "Timestamp", "collected_at"),
    (INFRA, "Collection Date", "collected_at"),
    # sensitive_data
    (SENSITIVE, "Server Name", "hostname"), (SENSITIVE, "Database", "data_store"),
    (SENSITIVE, "Data Store", "data_store"), (SENSITIVE, "Sensitivity Level", "classification"),
    (SENSITIVE, "Data Classification", "classification"), (SENSITIVE, "Compliance", "regulation"),
    (SENSITIVE, "Owner", "data_owner"), (SENSITIVE, "Data Steward", "data_owner"),
    (SENSITIVE, "Records", "record_count"), (SENSITIVE, "Row Count", "record_count"),
]


@pytest.mark.parametrize(("category", "header", "canonical"), SYNONYM_CASES)
def test_synonyms(category: Category, header: str, canonical: str) -> None:
    mapping = map_columns(category, [header])
    assert mapping.columns == {header: canonical}
    assert mapping.template is None


@pytest.mark.parametrize(("category", "header"), [
    (CMDB, "From"),  # a dependency's source is not the CMDB record's data source
    (CMDB, "CPU %"),  # utilisation, not a core count
    (APPS, "Host Name"),  # app_discovery has no hostname column
    (SENSITIVE, "Type"),
    (INFRA, "Thumb"),  # ends in "mb" but is no size
])
def test_words_outside_their_category_stay_extras(category: Category, header: str) -> None:
    mapping = map_columns(category, [header])
    assert mapping.extras == (header,)
    assert mapping.columns == {header: normalise(header)}


def test_unit_and_percent_suffixes() -> None:
    mapping = map_columns(CMDB, ["Name", "Memory (MB)", "Disk Size in TB", "CPUs"])
    assert mapped(mapping) == {"Name": "name", "Memory (MB)": "memory_gb", "Disk Size in TB": "storage_gb",
                               "CPUs": "cpu_cores"}
    assert mapping.units == {"memory_gb": "MB", "storage_gb": "TB"}

    mapping = map_columns(INFRA, ["Hostname", "Total Memory MiB", "Storage GB", "Network Kbps", "CPU Peak Percent"])
    assert mapped(mapping) == {"Hostname": "hostname", "Total Memory MiB": "memory_total", "Storage GB": "disk_total",
                               "Network Kbps": "network_avg_mbps", "CPU Peak Percent": "cpu_peak_pct"}
    assert mapping.units == {"memory_total": "MiB", "disk_total": "GB", "network_avg_mbps": "Kbps"}
    # A canonical name with its own unit needs no conversion and records none.
    assert map_columns(CMDB, ["memory_gb"]).units == {}


def test_alias_tables_are_consistent() -> None:
    canonical_anywhere = {c for columns in CANONICAL.values() for c in columns}
    assert set(ALIASES) <= canonical_anywhere
    for category, aliases in CATEGORY_ALIASES.items():
        assert set(aliases) <= set(CANONICAL[category])
    # Within a category every alias means one column; two meanings would be order-dependent.
    for category, columns in CANONICAL.items():
        seen: dict[str, str] = {header_key(c): c for c in columns}
        sources = [CATEGORY_ALIASES[category], {c: ALIASES.get(c, ()) for c in columns}]
        overridden = {header_key(w) for words in CATEGORY_ALIASES[category].values() for w in words}
        for aliases in sources:
            for column, words in aliases.items():
                for word in words:
                    key = header_key(word)
                    if key in seen and seen[key] != column:
                        assert key in overridden or key in {header_key(c) for c in columns}, (category, word)
                    seen.setdefault(key, column)


# --- extras and conflicts -----------------------------------------------------------------


def test_unknown_columns_are_extras_under_their_normalised_name() -> None:
    mapping = map_columns(CMDB, ["Hostname", "Rack Unit", "Warranty Expires (UTC)", "%%"])
    assert mapping.columns == {"Hostname": "hostname", "Rack Unit": "rack_unit",
                               "Warranty Expires (UTC)": "warranty_expires_utc", "%%": "pct_pct"}
    assert mapping.extras == ("Rack Unit", "Warranty Expires (UTC)", "%%")
    assert map_columns(CMDB, ["Hostname", "***"]).columns == {"Hostname": "hostname", "***": "column_2"}


def test_extras_never_take_a_canonical_name_and_are_suffixed_deterministically() -> None:
    header = ["Host Name", "hostname", "Rack Unit", "rack-unit", "rack_unit_2"]
    mapping = map_columns(CMDB, header)
    assert mapping.columns == {
        "Host Name": "hostname",  # both are the exact canonical name: the first wins
        "hostname": "hostname_2",
        "Rack Unit": "rack_unit",
        "rack-unit": "rack_unit_2",
        "rack_unit_2": "rack_unit_2_2",
    }
    assert mapping.conflicts == (Conflict("hostname", "hostname", "Host Name", "hostname_2"),)
    assert map_columns(CMDB, header) == mapping  # a pure function of the header


def test_the_exact_canonical_name_beats_a_synonym_wherever_it_stands() -> None:
    mapping = map_columns(CMDB, ["Server", "Computer Name", "HOSTNAME", "IP", "ip_address"])
    assert mapped(mapping) == {"HOSTNAME": "hostname", "ip_address": "ip_address"}
    assert mapping.extras == ("Server", "Computer Name", "IP")
    assert [c.report() for c in mapping.conflicts] == [
        {"column": "Server", "canonical": "hostname", "winner": "HOSTNAME", "kept_as": "server"},
        {"column": "Computer Name", "canonical": "hostname", "winner": "HOSTNAME", "kept_as": "computer_name"},
        {"column": "IP", "canonical": "ip_address", "winner": "ip_address", "kept_as": "ip"},
    ]


def test_between_two_synonyms_the_first_column_wins() -> None:
    mapping = map_columns(CMDB, ["Server", "Computer Name"])
    assert mapped(mapping) == {"Server": "hostname"}
    assert mapping.columns["Computer Name"] == "computer_name"


def test_a_user_column_with_the_canonical_name_beats_a_template_column() -> None:
    header = [*RVTOOLS_VINFO_HEADER, "hostname"]
    mapping = map_columns(CMDB, header)
    assert mapping.template == "rvtools_vinfo"
    assert mapping.columns["hostname"] == "hostname"
    assert mapping.columns["VM"] == "vm"
    assert Conflict("VM", "hostname", "hostname", "vm") in mapping.conflicts


def test_a_template_column_beats_a_user_synonym() -> None:
    mapping = map_columns(CMDB, ["Server Name", *RVTOOLS_VINFO_HEADER])
    assert mapping.columns["VM"] == "hostname"
    assert mapping.columns["Server Name"] == "server_name"


def test_report_is_json_and_complete() -> None:
    mapping = map_columns(INFRA, ["Host", "Server", "CPU Avg", "RAM (MB)", "Rack"])
    report = mapping.report()
    assert json.loads(json.dumps(report)) == report
    assert report == {
        "template": None,
        "columns": {"Host": "hostname", "Server": "server", "CPU Avg": "cpu_avg_pct", "RAM (MB)": "memory_total",
                    "Rack": "rack"},
        "extras": ["Server", "Rack"],
        "units": {"memory_total": "MB"},
        "unmapped_canonical": ["ip_address", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct", "disk_avg_pct",
                               "disk_peak_pct", "disk_total", "network_avg_mbps", "network_peak_mbps",
                               "collected_at"],
        "conflicts": [{"column": "Server", "canonical": "hostname", "winner": "Host", "kept_as": "server"}],
    }
    assert mapping.canonical() == {"hostname", "cpu_avg_pct", "memory_total"}
    assert mapping.extra_names() == {"Server": "server", "Rack": "rack"}


# --- required columns ----------------------------------------------------------------


IDENTIFIERS = "one of external_id, hostname, fqdn, name, ip_address, mac_address, serial_number"


@pytest.mark.parametrize(("category", "header", "missing"), [
    (CMDB, ["OS", "RAM"], [IDENTIFIERS]),
    *[(CMDB, [h, "OS"], []) for h in ("Asset ID", "Host", "FQDN", "Name", "IP", "MAC", "Serial")],
    (APPS, ["From", "Port"], ["target"]),
    (APPS, ["Port"], ["source", "target"]),
    (APPS, ["Source", "Destination"], []),
    (INFRA, ["CPU Avg"], ["one of hostname, ip_address"]),
    (INFRA, ["IP Address", "CPU Avg"], []),
    (INFRA, ["Server", "CPU Avg"], []),
    (SENSITIVE, ["Database", "Classification"], ["hostname"]),
    (SENSITIVE, ["Server", "Sensitivity"], []),
])
def test_missing_required(category: Category, header: list[str], missing: list[str]) -> None:
    assert missing_required(category, map_columns(category, header)) == missing
    # the transitional {uploaded: canonical} dict gives the same answer
    assert missing_required(category, map_header(category, header)) == missing


def test_single_required_columns_stay_available_per_category() -> None:
    assert REQUIRED == {CMDB: (), APPS: ("source", "target"), INFRA: (), SENSITIVE: ("hostname", "classification")}
    assert missing_required(SENSITIVE, {"h": "hostname", "c": "classification"}) == []


# --- vendor templates: ServiceNow ----------------------------------------------------------


def test_servicenow_cmdb_export() -> None:
    header = [*SERVICENOW_CMDB_HEADER, "u_application", "u_environment_note", "sys_created_by"]
    mapping = map_columns(CMDB, header)
    assert mapping.template == "servicenow_cmdb"
    assert mapped(mapping) == {
        "sys_id": "external_id", "name": "name", "sys_class_name": "asset_type", "host_name": "hostname",
        "fqdn": "fqdn", "ip_address": "ip_address", "mac_address": "mac_address", "serial_number": "serial_number",
        "os": "operating_system", "os_version": "os_version", "cpu_count": "cpu_cores", "ram": "memory_gb",
        "disk_space": "storage_gb", "used_for": "environment", "busines_criticality": "criticality",
        "location": "location", "owned_by": "owner", "discovery_source": "source",
        "u_application": "application",  # the u_ prefix is stripped before lookup
    }
    assert mapping.units == {"memory_gb": "MB", "storage_gb": "GB"}
    assert mapping.extras == (
        "asset_tag", "manufacturer", "model_id", "os_service_pack", "cpu_core_count", "cpu_type", "cpu_speed",
        "virtual", "install_status", "operational_status", "managed_by", "support_group", "sys_created_on",
        "sys_updated_on", "u_environment_note", "sys_created_by",
    )
    # extras keep their uploaded (normalised) name, u_ prefix included
    assert mapping.columns["u_environment_note"] == "u_environment_note"
    assert [(c.column, c.canonical, c.winner) for c in mapping.conflicts] == [
        ("cpu_core_count", "cpu_cores", "cpu_count"), ("managed_by", "owner", "owned_by")]
    assert mapping.unmapped_canonical == ()


def test_servicenow_fallbacks_and_custom_fields() -> None:
    mapping = map_columns(CMDB, ["sys_id", "host_name", "cpu_core_count", "managed_by", "business_criticality",
                                 "u_environment", "u_owner_email"])
    assert mapped(mapping) == {"sys_id": "external_id", "host_name": "hostname", "cpu_core_count": "cpu_cores",
                               "managed_by": "owner", "business_criticality": "criticality",
                               "u_environment": "environment"}
    assert mapping.columns["u_owner_email"] == "u_owner_email"


def test_servicenow_is_recognised_by_sys_id_or_sys_class_name_alone_and_by_labels() -> None:
    assert map_columns(CMDB, ["sys_class_name", "name"]).template == "servicenow_cmdb"
    assert map_columns(CMDB, ["Name", "Sys ID", "Used for", "Owned by", "RAM"]).report()["units"] == {
        "memory_gb": "MB"}
    assert map_columns(CMDB, ["name", "host_name", "ram"]).template is None  # no sys_ column: not ServiceNow
    assert map_columns(CMDB, ["name", "host_name", "ram"]).units == {}


def test_servicenow_in_other_categories() -> None:
    mapping = map_columns(INFRA, ["sys_id", "host_name", "ip_address", "ram", "disk_space", "sys_updated_on"])
    assert mapped(mapping) == {"host_name": "hostname", "ip_address": "ip_address", "ram": "memory_total",
                               "disk_space": "disk_total"}
    assert mapping.units == {"memory_total": "MB", "disk_total": "GB"}
    mapping = map_columns(SENSITIVE, ["sys_id", "host_name", "u_classification"])
    assert mapped(mapping) == {"host_name": "hostname", "u_classification": "classification"}


# --- vendor templates: AWS Migration Hub --------------------------------------------------------


AWS_CMDB = {
    "ExternalId": "external_id", "IPAddress": "ip_address", "MACAddress": "mac_address", "HostName": "hostname",
    "CPU.NumberOfCores": "cpu_cores", "OS.Name": "operating_system", "OS.Version": "os_version",
    "VMware.VMName": "name", "RAM.TotalSizeInMB": "memory_gb", "Applications": "application",
}
AWS_INFRA = {
    "IPAddress": "ip_address", "HostName": "hostname", "RAM.TotalSizeInMB": "memory_total",
    "CPU.UsagePct.Avg": "cpu_avg_pct", "CPU.UsagePct.Max": "cpu_peak_pct",
}


def test_aws_migration_hub_template_cmdb() -> None:
    mapping = map_columns(CMDB, AWS_MIGRATION_HUB_HEADER)
    assert mapping.template == "aws_migration_hub"
    assert mapped(mapping) == AWS_CMDB
    assert mapping.units == {"memory_gb": "MB"}
    assert set(mapping.extras) == set(AWS_MIGRATION_HUB_HEADER) - set(AWS_CMDB)
    assert mapping.columns["CPU.UsagePct.Avg"] == "cpu_usagepct_avg"
    assert mapping.columns["Tags"] == "tags"
    assert mapping.conflicts == ()


def test_aws_migration_hub_template_infrastructure() -> None:
    mapping = map_columns(INFRA, AWS_MIGRATION_HUB_HEADER)
    assert mapping.template == "aws_migration_hub"
    assert mapped(mapping) == AWS_INFRA
    assert mapping.units == {"memory_total": "MB"}
    assert len(mapping.extras) == len(AWS_MIGRATION_HUB_HEADER) - len(AWS_INFRA)


def test_aws_migration_hub_subset_in_any_order() -> None:
    subset = ["Tags", "RAM.TotalSizeInMB", "hostname", "CPU.NumberOfCores", "IPAddress", "ExternalId"]
    for seed in range(5):
        header = subset[:]
        random.Random(seed).shuffle(header)
        mapping = map_columns(CMDB, header)
        assert mapping.template == "aws_migration_hub"
        assert mapped(mapping) == {"RAM.TotalSizeInMB": "memory_gb", "hostname": "hostname",
                                   "CPU.NumberOfCores": "cpu_cores", "IPAddress": "ip_address",
                                   "ExternalId": "external_id"}
        assert mapping.units == {"memory_gb": "MB"}


def test_aws_with_too_little_of_the_template_is_not_recognised() -> None:
    # ExternalId/HostName/IPAddress/OS.Name are everyday words once case and dots are gone ...
    assert detect_template(["ExternalId", "HostName", "IPAddress", "OS.Name"]) is None
    # ... and a lone namespaced column among foreign ones is a coincidence.
    assert detect_template(["Server", "RAM.TotalSizeInMB"]) is None
    aws = detect_template(["HostName", "RAM.TotalSizeInMB"])
    assert aws is not None and aws.name == "aws_migration_hub"


# --- vendor templates: Azure Migrate --------------------------------------------------------------


AZURE_CMDB = {
    "*Server name": "hostname", "IP addresses": "ip_address", "*Cores": "cpu_cores",
    "*Memory (In MB)": "memory_gb", "*OS name": "operating_system", "OS version": "os_version",
    "MAC Address": "mac_address",
}
AZURE_INFRA = {
    "*Server name": "hostname", "IP addresses": "ip_address", "*Memory (In MB)": "memory_total",
    "CPU utilization percentage": "cpu_avg_pct", "Memory utilization percentage": "memory_avg_pct",
}


def test_azure_migrate_template_cmdb() -> None:
    mapping = map_columns(CMDB, AZURE_MIGRATE_HEADER)
    assert mapping.template == "azure_migrate"
    assert mapped(mapping) == AZURE_CMDB
    assert mapping.units == {"memory_gb": "MB"}
    assert set(mapping.extras) == set(AZURE_MIGRATE_HEADER) - set(AZURE_CMDB)
    # "Server type" is Azure's physical/virtual flag, not an asset type
    assert mapping.columns["Server type"] == "server_type"
    assert mapping.columns["Disk 1 size (In GB)"] == "disk_1_size_in_gb"
    assert mapping.conflicts == ()


def test_azure_migrate_template_infrastructure() -> None:
    mapping = map_columns(INFRA, AZURE_MIGRATE_HEADER)
    assert mapping.template == "azure_migrate"
    assert mapped(mapping) == AZURE_INFRA
    assert mapping.units == {"memory_total": "MB"}
    assert "Network In throughput" in mapping.extras


def test_azure_migrate_mandatory_columns_only_and_extra_disks() -> None:
    header = ["Server name", "Cores", "Memory (In MB)", "OS name", "Disk 3 size (In GB)", "Location"]
    mapping = map_columns(CMDB, header)
    assert mapping.template == "azure_migrate"
    assert mapped(mapping) == {"Server name": "hostname", "Cores": "cpu_cores", "Memory (In MB)": "memory_gb",
                               "OS name": "operating_system", "Location": "location"}
    assert mapping.extras == ("Disk 3 size (In GB)",)
    # the same words without Azure's unit column are just synonyms, with no unit known
    generic = map_columns(CMDB, ["Server name", "Cores", "Memory", "OS name"])
    assert generic.template is None and generic.units == {}


# --- vendor templates: RVTools vInfo --------------------------------------------------------------


RVTOOLS_CMDB = {
    "VM": "hostname", "DNS Name": "fqdn", "CPUs": "cpu_cores", "Memory": "memory_gb",
    "Primary IP Address": "ip_address", "Provisioned MiB": "storage_gb",
    "OS according to the VMware Tools": "operating_system", "VM UUID": "external_id",
}
RVTOOLS_INFRA = {"VM": "hostname", "Memory": "memory_total", "Primary IP Address": "ip_address",
                 "Provisioned MiB": "disk_total"}


def test_rvtools_vinfo_cmdb() -> None:
    mapping = map_columns(CMDB, RVTOOLS_VINFO_HEADER)
    assert mapping.template == "rvtools_vinfo"
    assert mapped(mapping) == RVTOOLS_CMDB
    assert mapping.units == {"memory_gb": "MB", "storage_gb": "MiB"}
    assert set(mapping.extras) == set(RVTOOLS_VINFO_HEADER) - set(RVTOOLS_CMDB)
    # "Host" is the ESXi host: an extra, never the hostname
    assert mapping.columns["Host"] == "host"
    assert {mapping.columns[c] for c in ("Cluster", "Datacenter", "Powerstate", "Annotation")} == {
        "cluster", "datacenter", "powerstate", "annotation"}
    assert [(c.column, c.canonical, c.winner) for c in mapping.conflicts] == [
        ("OS according to the configuration file", "operating_system", "OS according to the VMware Tools"),
        ("VM ID", "external_id", "VM UUID"),
    ]


def test_rvtools_vinfo_infrastructure() -> None:
    mapping = map_columns(INFRA, RVTOOLS_VINFO_HEADER)
    assert mapped(mapping) == RVTOOLS_INFRA
    assert mapping.units == {"memory_total": "MB", "disk_total": "MiB"}
    assert mapping.columns["Host"] == "host"


@pytest.mark.parametrize("category", list(Category))
def test_rvtools_host_never_becomes_the_hostname(category: Category) -> None:
    for header in (RVTOOLS_VINFO_HEADER, ["Host", "Powerstate", "CPUs", "Memory"], ["Host", "VM", "Provisioned MiB"]):
        mapping = map_columns(category, header)
        assert mapping.template == "rvtools_vinfo"
        assert mapping.columns["Host"] == "host"


def test_rvtools_prefers_the_tools_os_and_uuid_in_any_order_and_reads_older_units() -> None:
    header = ["VM ID", "OS according to the configuration file", "Powerstate", "Provisioned MB",
              "OS according to the VMware Tools", "VM UUID", "VM", "Host"]
    mapping = map_columns(CMDB, header)
    assert mapped(mapping) == {"OS according to the VMware Tools": "operating_system", "VM UUID": "external_id",
                               "VM": "hostname", "Provisioned MB": "storage_gb"}
    assert mapping.units == {"storage_gb": "MB"}
    only_config = map_columns(CMDB, ["VM", "Powerstate", "OS according to the configuration file", "VM ID"])
    assert mapped(only_config) == {"VM": "hostname", "OS according to the configuration file": "operating_system",
                                   "VM ID": "external_id"}


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_NAMES)
def test_each_full_header_detects_as_its_own_template(template: VendorTemplate) -> None:
    assert detect_template(template.header) is template
    shuffled = list(template.header)
    random.Random(7).shuffle(shuffled)
    assert detect_template(shuffled) is template
    assert detect_template([h.upper() for h in shuffled]) is template


@pytest.mark.parametrize("header", [
    ["Host Name", "IP Address", "Asset Type", "Environment", "Criticality", "OS", "Serial Number"],
    ["Server", "CPU Avg", "Memory Peak", "Collected At"],
    ["Server Name", "Cores", "Memory", "OS Name"],  # Azure's words, none of its distinctive columns
    ["VM", "CPUs", "Memory", "Host"],  # RVTools' words, none of its distinctive columns
    [],
])
def test_generic_headers_are_not_vendor_templates(header: list[str]) -> None:
    assert detect_template(header) is None
    assert map_columns(CMDB, header).template is None


def test_template_maps_only_name_canonical_columns_and_units_are_for_sizes() -> None:
    sizes = {"memory_gb", "storage_gb", "memory_total", "disk_total"}
    for template in TEMPLATES:
        for category in Category:
            for rule in template.rules_for(category, CANONICAL[category]).values():
                assert rule.canonical in CANONICAL[category], (template.name, category, rule)
                assert rule.unit is None or rule.canonical in sizes


# --- shipped samples --------------------------------------------------------------------------------


@pytest.mark.parametrize(("filename", "template", "rows"), [
    ("aws_migration_hub.csv", "aws_migration_hub", 8),
    ("azure_migrate.csv", "azure_migrate", 7),
    ("servicenow_cmdb.csv", "servicenow_cmdb", 8),
])
def test_sample_vendor_csvs(filename: str, template: str, rows: int) -> None:
    text = vendor_samples.vendor_sample(filename).read_text(encoding="utf-8")
    header, *records = list(csv.reader(io.StringIO(text)))
    assert len(records) == rows and all(len(r) == len(header) for r in records)
    assert any("" in r for r in records)  # messy on purpose: blank cells
    for category in (CMDB, INFRA):
        mapping = map_columns(category, header)
        assert mapping.template == template
        assert missing_required(category, mapping) == []


def test_sample_headers_are_the_templates_headers() -> None:
    def header_of(name: str) -> tuple[str, ...]:
        return tuple(next(csv.reader(io.StringIO(vendor_samples.vendor_sample(name).read_text()))))

    assert header_of("aws_migration_hub.csv") == AWS_MIGRATION_HUB_HEADER
    assert header_of("azure_migrate.csv") == AZURE_MIGRATE_HEADER
    assert header_of("servicenow_cmdb.csv")[: len(SERVICENOW_CMDB_HEADER)] == SERVICENOW_CMDB_HEADER
    assert vendor_samples.VINFO_HEADER == RVTOOLS_VINFO_HEADER


def test_sample_rvtools_workbook_maps_its_vinfo_sheet() -> None:
    workbook = load_workbook(io.BytesIO(vendor_samples.rvtools_xlsx_bytes()), read_only=True)
    assert workbook.sheetnames[0] != "vInfo"
    header = [cell for cell in next(workbook["vInfo"].iter_rows(values_only=True))]
    workbook.close()
    mapping = map_columns(CMDB, header)
    assert mapping.template == "rvtools_vinfo"
    assert mapped(mapping) == RVTOOLS_CMDB
    assert missing_required(CMDB, mapping) == []


def test_samples_are_package_data() -> None:
    # An editable install reads the source tree, so check the globs a wheel is built from.
    package = Path(str(resources.files("tributary_cli")))
    pyproject = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["*"]
    shipped = {Path(p).name for pattern in globs for p in glob.glob(pattern, root_dir=package)}
    assert set(vendor_samples.VENDOR_SAMPLES) <= shipped


def test_every_unit_the_mapping_can_report_is_one_the_rule_engine_converts() -> None:
    # The rule engine raises on a unit it doesn't know, so this is a contract between the two.
    from validator.field_mapping import _SUFFIXES
    from validator.rules.formats import RATE_UNITS, SIZE_UNITS

    units = {unit for _, unit, _ in _SUFFIXES if unit} | {
        rule.unit for t in TEMPLATES for c in Category for rule in t.rules_for(c, CANONICAL[c]).values() if rule.unit
    }
    assert units
    assert {u for u in units if u.lower() not in SIZE_UNITS and u.lower() not in RATE_UNITS} == set()
