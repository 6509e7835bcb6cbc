from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from contracts import Category
from validator.rules import AGENTS, RULES, Finding, RowChecker, checker_for

REFERENCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Brief = tuple[int | None, str | None, str, str, str | None]


def cmdb(units: Mapping[str, str] | None = None) -> RowChecker:
    return checker_for(Category.CMDB_EXPORT, reference_time=REFERENCE, units=units)


def brief(findings: list[Finding]) -> list[Brief]:
    return [(f.row_number, f.column, f.rule_id, f.severity, f.value) for f in findings]


def check(row: Mapping[str, str | None],
          units: Mapping[str, str] | None = None) -> tuple[dict[str, str | None], list[Brief]]:
    out, findings = cmdb(units).check(7, row)
    return out, brief(findings)


VALID: dict[str, str | None] = {
    "external_id": " CI0012345 ", "hostname": "APP-SRV-01", "fqdn": "App-Srv-01.Corp.Example.com.",
    "ip_address": "2001:DB8::0001", "mac_address": "0050.56AB.CDEF", "serial_number": "VMware-42 1a",
    "asset_type": "Virtual Machine", "environment": "PRD", "criticality": "1 - most critical",
    "operating_system": "Windows Server 2019", "cpu_cores": "8", "memory_gb": "16384 MB",
    "storage_gb": "1.5 TiB", "rack_unit": "  U12 ", "notes": "   ",
}


def test_a_valid_row_is_normalised_and_keeps_its_extra_columns() -> None:
    out, findings = check(VALID)
    assert findings == []
    assert out == {
        "external_id": "CI0012345", "source": None, "hostname": "app-srv-01", "fqdn": "app-srv-01.corp.example.com",
        "name": None, "ip_address": "2001:db8::1", "mac_address": "00:50:56:ab:cd:ef", "serial_number": "VMware-42 1a",
        "asset_type": "virtual_machine", "environment": "production", "criticality": "critical",
        "operating_system": "Windows Server 2019", "os_version": None, "cpu_cores": "8", "memory_gb": "16",
        "storage_gb": "1536", "location": None, "owner": None, "application": None,
        "rack_unit": "U12", "notes": None,
    }


def test_a_row_without_any_identifier_is_an_error_on_no_column() -> None:
    out, findings = check({"asset_type": "server", "hostname": "  ", "ip_address": None, "owner": "ops"})
    assert findings == [(7, None, "missing_identifier", "error", None)]
    assert out["hostname"] is None


@pytest.mark.parametrize("column", ["external_id", "hostname", "fqdn", "name", "ip_address", "mac_address",
                                    "serial_number"])
def test_any_one_identifier_is_enough(column: str) -> None:
    value = {"fqdn": "a.example.com", "ip_address": "10.0.0.1", "mac_address": "aabbccddeeff"}.get(column, "x1")
    assert check({column: value})[1] == []


def test_format_errors_name_the_column_and_keep_the_value_as_given() -> None:
    out, findings = check({"hostname": " srv 01 ", "fqdn": "srv01", "ip_address": "010.0.0.1",
                           "mac_address": "aa:bb:cc:dd:ee"})
    assert findings == [
        (7, "hostname", "invalid_hostname", "error", "srv 01"),
        (7, "fqdn", "invalid_fqdn", "error", "srv01"),
        (7, "ip_address", "invalid_ip_address", "error", "010.0.0.1"),
        (7, "mac_address", "invalid_mac_address", "error", "aa:bb:cc:dd:ee"),
    ]
    assert (out["hostname"], out["fqdn"], out["ip_address"], out["mac_address"]) == (
        "srv 01", "srv01", "010.0.0.1", "aa:bb:cc:dd:ee")


def test_an_ip_address_in_the_hostname_column_is_an_invalid_hostname() -> None:
    assert check({"hostname": "10.0.0.1"})[1] == [(7, "hostname", "invalid_hostname", "error", "10.0.0.1")]


def test_an_underscore_in_a_hostname_is_a_warning_and_the_name_is_kept_lower_cased() -> None:
    out, findings = check({"hostname": "SRV_DB_01"})
    assert findings == [(7, "hostname", "hostname_underscore", "warning", "SRV_DB_01")]
    assert out["hostname"] == "srv_db_01"


def test_an_unknown_asset_type_is_an_error_and_unknown_environment_and_criticality_are_warnings() -> None:
    out, findings = check({"hostname": "srv01", "asset_type": "Toaster", "environment": "Moon Base",
                           "criticality": "meh"})
    assert findings == [
        (7, "asset_type", "unknown_asset_type", "error", "Toaster"),
        (7, "environment", "unknown_environment", "warning", "Moon Base"),
        (7, "criticality", "unknown_criticality", "warning", "meh"),
    ]
    assert (out["asset_type"], out["environment"], out["criticality"]) == ("Toaster", "Moon Base", "meh")


@pytest.mark.parametrize(("column", "value", "rule_id"), [
    ("cpu_cores", "eight", "invalid_number"),
    ("cpu_cores", "0", "out_of_range"),
    ("cpu_cores", "1025", "out_of_range"),
    ("cpu_cores", "4.5", "out_of_range"),
    ("cpu_cores", "-2", "out_of_range"),
    ("memory_gb", "lots", "invalid_number"),
    ("memory_gb", "16 XB", "invalid_number"),
    ("memory_gb", "0", "out_of_range"),
    ("memory_gb", "-1 GB", "out_of_range"),
    ("memory_gb", "65 TB", "out_of_range"),
    ("storage_gb", "1,5 TB", "invalid_number"),
    ("storage_gb", "-1", "out_of_range"),
    ("storage_gb", "10000 TB", "out_of_range"),
])
def test_numbers_outside_their_ranges_are_errors(column: str, value: str, rule_id: str) -> None:
    out, findings = check({"hostname": "srv01", column: f" {value} "})
    assert findings == [(7, column, rule_id, "error", value)]
    assert out[column] == value


@pytest.mark.parametrize(("column", "value", "normalised"), [
    ("cpu_cores", "1", "1"), ("cpu_cores", "1024", "1024"), ("cpu_cores", "4.0", "4"), ("cpu_cores", "08", "8"),
    ("memory_gb", "0.5", "0.5"), ("memory_gb", "512M", "0.5"), ("memory_gb", "64 TB", "65536"),
    ("memory_gb", "16GiB", "16"), ("memory_gb", "16.00", "16"), ("storage_gb", "0", "0"),
    ("storage_gb", "1 TB", "1024"), ("storage_gb", "10000000", "10000000"),
])
def test_numbers_at_and_inside_the_bounds_are_normalised(column: str, value: str, normalised: str) -> None:
    out, findings = check({"hostname": "srv01", column: value})
    assert findings == []
    assert out[column] == normalised


def test_bare_numbers_take_the_unit_configured_for_their_column() -> None:
    out, findings = check({"hostname": "srv01", "memory_gb": "16384", "storage_gb": "2"},
                          units={"memory_gb": "MB", "storage_gb": "TB"})
    assert findings == []
    assert (out["memory_gb"], out["storage_gb"]) == ("16", "2048")
    out, _ = check({"hostname": "srv01", "memory_gb": "32 GB"}, units={"memory_gb": "MB"})
    assert out["memory_gb"] == "32"


def test_an_unknown_configured_unit_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        cmdb({"memory_gb": "furlongs"})


def test_findings_come_in_agent_order_and_messages_say_what_is_accepted() -> None:
    _, findings = cmdb().check(3, {"cpu_cores": "0", "criticality": "meh", "mac_address": "x"})
    assert [(f.rule_id, f.column) for f in findings] == [
        ("invalid_mac_address", "mac_address"), ("unknown_criticality", "criticality"), ("out_of_range", "cpu_cores")]
    assert findings[2].message == "cpu_cores '0' is out of range: must be a whole number from 1 to 1024"
    assert findings[0].message == ("mac_address 'x' is not a MAC address: expected aa:bb:cc:dd:ee:ff, "
                                   "AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or aabbccddeeff")
    _, findings = cmdb().check(4, {"cpu_cores": "0", "location": "DC1"})
    assert [(f.rule_id, f.column) for f in findings] == [("missing_identifier", None), ("out_of_range", "cpu_cores")]


def test_cmdb_needs_nothing_at_finish() -> None:
    checker = cmdb()
    checker.check(2, {"hostname": "a"})
    assert checker.finish() == []


def test_the_registry_covers_every_category_and_every_agent_it_names() -> None:
    assert set(RULES) == set(Category) == set(AGENTS)
    for category in Category:
        ids = [r.rule_id for r in RULES[category]]
        assert len(ids) == len(set(ids)), category
        assert {r.agent for r in RULES[category]} <= set(AGENTS[category]), category
        assert all(r.severity in ("error", "warning") and r.description for r in RULES[category])
        checker = checker_for(category, reference_time=REFERENCE)
        assert (checker.agents, checker.rules) == (AGENTS[category], RULES[category])
    assert AGENTS[Category.CMDB_EXPORT] == ("schema", "format", "vocabulary", "range", "duplicate_detection")
    duplicates = {(r.rule_id, r.severity) for r in RULES[Category.CMDB_EXPORT] if r.agent == "duplicate_detection"}
    assert duplicates == {("duplicate_external_id", "error"), ("duplicate_hostname", "error"),
                          ("duplicate_ip_address", "warning"), ("duplicate_serial_number", "warning")}


BAD_ROWS: dict[Category, list[Mapping[str, str | None]]] = {
    Category.CMDB_EXPORT: [
        {}, {"hostname": "a b", "fqdn": "x", "ip_address": "1.2.3", "mac_address": "m", "asset_type": "?",
             "environment": "?", "criticality": "?", "cpu_cores": "?", "memory_gb": "0", "storage_gb": "?"},
        {"hostname": "a_b", "memory_gb": "x", "cpu_cores": "0"},
    ],
    Category.APP_DISCOVERY: [
        {"source": "a", "target": "b", "port": "0", "protocol": "?", "criticality": "?", "confidence": "?"},
        {"source": "b", "target": "a"}, {"source": "b", "target": "a"}, {"source": "c", "target": "C"},
        {"source": None, "target": None}, {"source": "d", "target": "e", "port": "53/udp", "protocol": "https"},
    ],
    Category.INFRASTRUCTURE: [
        {}, {"hostname": "a b", "ip_address": "x", "cpu_avg_pct": "?", "cpu_peak_pct": "101",
             "memory_total": "-1", "network_avg_mbps": "5", "network_peak_mbps": "4", "collected_at": "?"},
        {"hostname": "a_b", "disk_avg_pct": "50", "disk_peak_pct": "40"},
    ],
    Category.SENSITIVE_DATA: [
        {}, {"hostname": "a", "classification": "?", "regulation": "?", "record_count": "-1"},
        {"hostname": "a", "classification": ","},
    ],
}


@pytest.mark.parametrize("category", list(Category))
def test_every_emitted_rule_is_registered_with_its_severity(category: Category) -> None:
    registered = {r.rule_id: r.severity for r in RULES[category]}
    checker = checker_for(category, reference_time=REFERENCE)
    emitted: list[Finding] = []
    for number, row in enumerate(BAD_ROWS[category], start=2):
        emitted += checker.check(number, row)[1]
    emitted += checker.finish()
    assert emitted
    for f in emitted:
        assert registered.get(f.rule_id) == f.severity, f


def test_a_cell_of_several_addresses_keeps_them_all_and_warns() -> None:
    from datetime import UTC, datetime

    from contracts import Category
    from validator.rules import checker_for

    checker = checker_for(Category.CMDB_EXPORT, reference_time=datetime(2026, 11, 1, tzinfo=UTC))
    row, found = checker.check(3, {"hostname": "app-01", "ip_address": "10.20.2.21, 10.20.9.21"})
    assert (row["ip_address"], row["ip_addresses"]) == ("10.20.2.21", "10.20.2.21,10.20.9.21")
    assert [(f.row_number, f.column, f.rule_id, f.severity, f.value) for f in found] == [
        (3, "ip_address", "multiple_ip_addresses", "warning", "10.20.2.21, 10.20.9.21")]
    row, found = checker.check(4, {"hostname": "app-02", "ip_address": "10.20.2.21, nonsense"})
    assert [(f.rule_id, f.severity) for f in found] == [("invalid_ip_address", "error")]
