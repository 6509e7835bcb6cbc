from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from contracts import Category
from validator.rules import Finding, RowChecker, checker_for

REFERENCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Brief = tuple[int | None, str | None, str, str, str | None]


def new(reference_time: datetime = REFERENCE, units: Mapping[str, str] | None = None) -> RowChecker:
    return checker_for(Category.INFRASTRUCTURE, reference_time=reference_time, units=units)


def brief(findings: list[Finding]) -> list[Brief]:
    return [(f.row_number, f.column, f.rule_id, f.severity, f.value) for f in findings]


def check(row: dict[str, str | None], **kwargs: object) -> tuple[dict[str, str | None], list[Brief]]:
    out, findings = new(**kwargs).check(5, row)  # type: ignore[arg-type]
    return out, brief(findings)


def test_a_valid_row_is_normalised() -> None:
    out, findings = check({
        "hostname": "APP01.corp.local", "ip_address": " 10.0.0.7 ", "cpu_avg_pct": "23.50", "cpu_peak_pct": "87%",
        "memory_avg_pct": "61 %", "memory_peak_pct": "061", "memory_total": "32768 MB", "disk_avg_pct": "0.45",
        "disk_peak_pct": "100", "disk_total": "2 TB", "network_avg_mbps": "512 Kbps", "network_peak_mbps": "1 Gbps",
        "collected_at": "2026-11-20 10:00", "sampled_by": "agent-7",
    })
    assert findings == []
    assert out == {
        "hostname": "app01.corp.local", "ip_address": "10.0.0.7", "cpu_avg_pct": "23.5", "cpu_peak_pct": "87",
        "memory_avg_pct": "61", "memory_peak_pct": "61", "memory_total": "32", "disk_avg_pct": "0.45",
        "disk_peak_pct": "100", "disk_total": "2048", "network_avg_mbps": "0.512", "network_peak_mbps": "1000",
        "collected_at": "2026-11-20T10:00:00+00:00", "sampled_by": "agent-7",
    }


def test_a_row_with_neither_hostname_nor_ip_is_an_error() -> None:
    assert check({"hostname": " ", "cpu_avg_pct": "5"})[1] == [(5, None, "missing_identifier", "error", None)]
    assert check({"ip_address": "10.0.0.1"})[1] == []


def test_addresses_and_names_are_checked_as_in_the_cmdb() -> None:
    out, findings = check({"hostname": "SRV_01", "ip_address": "10.0.0.300"})
    assert findings == [(5, "hostname", "hostname_underscore", "warning", "SRV_01"),
                        (5, "ip_address", "invalid_ip_address", "error", "10.0.0.300")]
    assert (out["hostname"], out["ip_address"]) == ("srv_01", "10.0.0.300")
    assert check({"hostname": "srv 01"})[1] == [(5, "hostname", "invalid_hostname", "error", "srv 01")]


@pytest.mark.parametrize(("column", "value", "rule_id"), [
    ("cpu_avg_pct", "high", "invalid_number"),
    ("cpu_avg_pct", "45 percent", "invalid_number"),
    ("cpu_peak_pct", "100.1", "out_of_range"),
    ("memory_avg_pct", "-1%", "out_of_range"),
    ("disk_peak_pct", "250", "out_of_range"),
    ("memory_total", "32 XB", "invalid_number"),
    ("memory_total", "0", "out_of_range"),
    ("memory_total", "-8 GB", "out_of_range"),
    ("disk_total", "-1", "out_of_range"),
    ("disk_total", "lots", "invalid_number"),
    ("network_avg_mbps", "fast", "invalid_number"),
    ("network_avg_mbps", "100 MB/s", "invalid_number"),
    ("network_peak_mbps", "-5 Mbps", "out_of_range"),
])
def test_numbers_that_are_unreadable_or_out_of_range_are_errors(column: str, value: str, rule_id: str) -> None:
    out, findings = check({"hostname": "h", column: value})
    assert findings == [(5, column, rule_id, "error", value)]
    assert out[column] == value


@pytest.mark.parametrize(("avg", "peak"), [
    ("cpu_avg_pct", "cpu_peak_pct"), ("memory_avg_pct", "memory_peak_pct"), ("disk_avg_pct", "disk_peak_pct"),
])
def test_a_peak_below_its_average_is_an_error_on_the_peak_column(avg: str, peak: str) -> None:
    _, findings = new().check(5, {"hostname": "h", avg: "50.5%", peak: "50 %"})
    assert brief(findings) == [(5, peak, "peak_below_average", "error", "50 %")]
    assert findings[0].message == f"{peak} 50 is below {avg} 50.5: a peak cannot be lower than the average"


def test_network_peak_below_average_compares_after_unit_conversion() -> None:
    assert check({"hostname": "h", "network_avg_mbps": "1 Gbps", "network_peak_mbps": "999"})[1] == [
        (5, "network_peak_mbps", "peak_below_average", "error", "999")]
    assert check({"hostname": "h", "network_avg_mbps": "1 Gbps", "network_peak_mbps": "1000"})[1] == []


def test_a_peak_equal_to_its_average_or_an_unreadable_side_is_no_inconsistency() -> None:
    assert check({"hostname": "h", "cpu_avg_pct": "40", "cpu_peak_pct": "40.0"})[1] == []
    assert check({"hostname": "h", "cpu_avg_pct": "x", "cpu_peak_pct": "40"})[1] == [
        (5, "cpu_avg_pct", "invalid_number", "error", "x")]


def test_configured_units_apply_to_bare_numbers() -> None:
    out, findings = check({"hostname": "h", "memory_total": "8192", "disk_total": "1", "network_avg_mbps": "1",
                           "network_peak_mbps": "1500"},
                          units={"memory_total": "MiB", "disk_total": "TB", "network_avg_mbps": "Gbps"})
    assert findings == []
    assert (out["memory_total"], out["disk_total"], out["network_avg_mbps"], out["network_peak_mbps"]) == (
        "8", "1024", "1000", "1500")


@pytest.mark.parametrize(("value", "iso"), [
    ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00+00:00"),
    ("2026-11-21T12:00:00+00:00", "2026-11-21T12:00:00+00:00"),
    ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00+00:00"),
    ("11/20/2026 10:00", "2026-11-20T10:00:00+00:00"),
    ("1795168800000", "2026-11-20T10:00:00+00:00"),
])
def test_plausible_timestamps_are_normalised_to_utc(value: str, iso: str) -> None:
    out, findings = check({"hostname": "h", "collected_at": value})
    assert findings == []
    assert out["collected_at"] == iso


@pytest.mark.parametrize(("value", "problem"), [
    ("last tuesday", "is not a timestamp"),
    ("1999-12-31T23:59:59Z", "is before 2000-01-01"),
    ("946684799", "is before 2000-01-01"),
    ("2026-11-21T12:00:01Z", "is more than one day after the import's reference time (2026-11-20T12:00:00+00:00)"),
    ("2026-11-21T13:00:00+01:00", ""),
])
def test_implausible_timestamps_are_errors(value: str, problem: str) -> None:
    _, findings = new().check(5, {"hostname": "h", "collected_at": value})
    if not problem:  # 12:00 UTC: exactly one day after the reference time is still plausible
        assert findings == []
        return
    assert brief(findings) == [(5, "collected_at", "implausible_timestamp", "error", value)]
    assert problem in findings[0].message


def test_a_naive_reference_time_is_utc_and_no_clock_is_read() -> None:
    naive = datetime(2001, 6, 1, 12, 0)
    assert check({"hostname": "h", "collected_at": "2001-06-02T12:00:00Z"}, reference_time=naive)[1] == []
    assert check({"hostname": "h", "collected_at": "2001-06-03T00:00:00Z"}, reference_time=naive)[1] == [
        (5, "collected_at", "implausible_timestamp", "error", "2001-06-03T00:00:00Z")]


def test_findings_come_in_agent_order() -> None:
    _, findings = check({"ip_address": "x", "cpu_avg_pct": "90", "cpu_peak_pct": "10", "collected_at": "?",
                         "disk_total": "-1"})
    assert findings == [
        (5, "ip_address", "invalid_ip_address", "error", "x"),
        (5, "disk_total", "out_of_range", "error", "-1"),
        (5, "cpu_peak_pct", "peak_below_average", "error", "10"),
        (5, "collected_at", "implausible_timestamp", "error", "?"),
    ]


def test_infrastructure_needs_nothing_at_finish() -> None:
    checker = new()
    checker.check(2, {"hostname": "a"})
    assert checker.finish() == []
