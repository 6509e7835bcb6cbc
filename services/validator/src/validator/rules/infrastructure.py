"""Validation agents for infrastructure (performance) files: utilisation, capacity, collection time.

Percentages are percent points 0–100 ("45", "45%", "45.5 %"; a fraction is not
rescaled, see ``formats``). Capacities normalise to GB (binary factors), network rates
to Mbps (decimal factors). ``collected_at`` must fall between 2000-01-01 and one day
after the import's reference time, which the caller passes in: no clock is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import formats
from .base import finding, normalised_row, rule_table
from .fields import check_hostname, check_ip, check_size, size_factor
from .model import Finding, Row, Rule

CANONICAL: tuple[str, ...] = (
    "hostname", "ip_address", "cpu_avg_pct", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct", "memory_total",
    "disk_avg_pct", "disk_peak_pct", "disk_total", "network_avg_mbps", "network_peak_mbps", "collected_at",
)
AGENTS: tuple[str, ...] = ("schema", "range", "consistency", "timestamp")

PERCENT_COLUMNS: tuple[str, ...] = ("cpu_avg_pct", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct",
                                    "disk_avg_pct", "disk_peak_pct")
RATE_COLUMNS: tuple[str, ...] = ("network_avg_mbps", "network_peak_mbps")
# (average column, peak column) pairs whose peak may not be below the average.
PEAK_PAIRS: tuple[tuple[str, str], ...] = (
    ("cpu_avg_pct", "cpu_peak_pct"), ("memory_avg_pct", "memory_peak_pct"), ("disk_avg_pct", "disk_peak_pct"),
    ("network_avg_mbps", "network_peak_mbps"),
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)

MISSING_IDENTIFIER = Rule(
    "missing_identifier", "schema", "error",
    "The row has neither hostname nor ip_address, so it cannot be matched to an asset.")
MULTIPLE_IPS = Rule(
    "multiple_ip_addresses", "schema", "warning",
    "ip_address holds several valid addresses (as AWS and Azure exports write them): the first identifies "
    "the host.")
INVALID_IP = Rule(
    "invalid_ip_address", "schema", "error",
    "ip_address is not an IPv4 or IPv6 address (leading-zero octets rejected); valid ones are normalised "
    "to the compressed canonical form.")
INVALID_HOSTNAME = Rule(
    "invalid_hostname", "schema", "error",
    "hostname is neither a host label nor an FQDN (letters, digits, hyphens, dots; an IP address is not a "
    "host name); valid ones are lower-cased.")
HOSTNAME_UNDERSCORE = Rule(
    "hostname_underscore", "schema", "warning",
    "hostname contains underscores: not valid in DNS but common in NetBIOS names, so kept with a warning.")
INVALID_NUMBER = Rule(
    "invalid_number", "range", "error",
    "A percentage, capacity or network rate is not a number (with an optional %, size unit B…PB, or rate "
    "unit bps…Tbps).")
OUT_OF_RANGE = Rule(
    "out_of_range", "range", "error",
    "A percentage is outside 0–100, memory_total not in (0, 65536] GB, disk_total not in [0, 10000000] GB, "
    "or a network rate is negative.")
PEAK_BELOW_AVERAGE = Rule(
    "peak_below_average", "consistency", "error",
    "A *_peak value is lower than its *_avg value (cpu, memory, disk percentages; network Mbps).")
IMPLAUSIBLE_TIMESTAMP = Rule(
    "implausible_timestamp", "timestamp", "error",
    "collected_at is not a timestamp in an accepted form (ISO-8601, 'YYYY-MM-DD HH:MM[:SS]', "
    "'MM/DD/YYYY HH:MM', epoch seconds or milliseconds), or lies before 2000-01-01 or more than one day "
    "after the import's reference time. Valid ones are normalised to ISO-8601 UTC; no zone means UTC.")

RULES: tuple[Rule, ...] = rule_table((
    MISSING_IDENTIFIER, INVALID_IP, MULTIPLE_IPS, INVALID_HOSTNAME, HOSTNAME_UNDERSCORE, INVALID_NUMBER, OUT_OF_RANGE,
    PEAK_BELOW_AVERAGE, IMPLAUSIBLE_TIMESTAMP,
))

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_MAX_MEMORY_GB = Decimal(65536)
_MAX_DISK_GB = Decimal(10_000_000)


class InfrastructureChecker:
    """The infrastructure agents for one import (stateless across rows)."""

    agents = AGENTS
    rules = RULES
    normalises_per_row = True
    independent_rows = True

    def __init__(self, *, reference_time: datetime, units: Mapping[str, str] | None = None) -> None:
        units = dict(units or {})
        if reference_time.tzinfo is None:
            reference_time = reference_time.replace(tzinfo=UTC)
        self._latest = reference_time + FUTURE_TOLERANCE
        self._memory_factor = size_factor(units, "memory_total")
        self._disk_factor = size_factor(units, "disk_total")
        self._rate_factors = {
            column: formats.unit_factor(formats.RATE_UNITS, units.get(column, "Mbps")) for column in RATE_COLUMNS
        }

    def check(self, row_number: int, row: Row) -> tuple[dict[str, str | None], list[Finding]]:
        out = normalised_row(row, CANONICAL)
        findings: list[Finding] = []

        # schema
        hostname = out["hostname"]
        ip = out["ip_address"]
        if hostname is None and ip is None:
            findings.append(finding(MISSING_IDENTIFIER, row_number, None,
                                    "the row has no identifier: hostname or ip_address is required"))
        if hostname is not None:
            out["hostname"] = check_hostname(hostname, row_number, "hostname", INVALID_HOSTNAME,
                                             HOSTNAME_UNDERSCORE, findings)
        if ip is not None:
            addresses = check_ip(ip, row_number, "ip_address", INVALID_IP, findings, MULTIPLE_IPS,
                                 kept="identifies the host")
            out["ip_address"] = addresses.split(",", 1)[0]

        # range; the parsed numbers feed the consistency agent.
        numbers: dict[str, tuple[Decimal, str]] = {}
        for column in PERCENT_COLUMNS:
            value = out[column]
            if value is not None:
                out[column] = self._percent(value, row_number, column, numbers, findings)
        value = out["memory_total"]
        if value is not None:
            out["memory_total"] = check_size(value, row_number, "memory_total", self._memory_factor,
                                             minimum=_ZERO, minimum_inclusive=False, maximum=_MAX_MEMORY_GB,
                                             invalid=INVALID_NUMBER, out_of_range=OUT_OF_RANGE, out=findings)
        value = out["disk_total"]
        if value is not None:
            out["disk_total"] = check_size(value, row_number, "disk_total", self._disk_factor,
                                           minimum=_ZERO, minimum_inclusive=True, maximum=_MAX_DISK_GB,
                                           invalid=INVALID_NUMBER, out_of_range=OUT_OF_RANGE, out=findings)
        for column in RATE_COLUMNS:
            value = out[column]
            if value is not None:
                out[column] = self._rate(value, row_number, column, numbers, findings)

        # consistency
        if numbers:
            for avg_column, peak_column in PEAK_PAIRS:
                avg = numbers.get(avg_column)
                peak = numbers.get(peak_column)
                if avg is not None and peak is not None and peak[0] < avg[0]:
                    findings.append(finding(
                        PEAK_BELOW_AVERAGE, row_number, peak_column,
                        f"{peak_column} {out[peak_column]} is below {avg_column} {out[avg_column]}: a peak "
                        "cannot be lower than the average", peak[1]))

        # timestamp
        value = out["collected_at"]
        if value is not None:
            out["collected_at"] = self._timestamp(value, row_number, findings)
        return out, findings

    @staticmethod
    def _percent(text: str, row_number: int, column: str, numbers: dict[str, tuple[Decimal, str]],
                 findings: list[Finding]) -> str:
        if len(text) <= 3 and text.isascii() and text.isdigit():
            # The common case, a whole percentage.
            whole = int(text)
            if whole <= 100:
                numbers[column] = (Decimal(whole), text)
                return str(whole)
        value = formats.parse_percent(text)
        if value is None:
            findings.append(finding(INVALID_NUMBER, row_number, column,
                                    f"{column} {text!r} is not a percentage: expected a number from 0 to 100, "
                                    "optionally followed by % (e.g. 45, 45.5%)", text))
            return text
        if not _ZERO <= value <= _HUNDRED:
            findings.append(finding(OUT_OF_RANGE, row_number, column,
                                    f"{column} {text!r} is out of range: a percentage must be from 0 to 100",
                                    text))
            return text
        numbers[column] = (value, text)
        return formats.format_decimal(value)

    def _rate(self, text: str, row_number: int, column: str, numbers: dict[str, tuple[Decimal, str]],
              findings: list[Finding]) -> str:
        value = formats.parse_quantity(text, formats.RATE_UNITS, self._rate_factors[column])
        if value is None:
            findings.append(finding(INVALID_NUMBER, row_number, column,
                                    f"{column} {text!r} is not a network rate: expected a number with an "
                                    f"optional unit ({formats.RATE_UNITS_ACCEPTED})", text))
            return text
        if value < _ZERO:
            findings.append(finding(OUT_OF_RANGE, row_number, column,
                                    f"{column} {text!r} is out of range: a network rate cannot be negative",
                                    text))
            return text
        numbers[column] = (value, text)
        return formats.format_decimal(value)

    def _timestamp(self, text: str, row_number: int, findings: list[Finding]) -> str:
        moment = formats.parse_timestamp(text)
        if moment is None:
            problem = ("is not a timestamp: expected ISO-8601 (2026-11-20T10:00:00Z), 'YYYY-MM-DD HH:MM[:SS]', "
                       "'MM/DD/YYYY HH:MM' or epoch seconds/milliseconds")
        elif moment < EARLIEST:
            problem = f"({moment.isoformat()}) is before 2000-01-01, too early to be a collection time"
        elif moment > self._latest:
            problem = (f"({moment.isoformat()}) is more than one day after the import's reference time "
                       f"({(self._latest - FUTURE_TOLERANCE).isoformat()})")
        else:
            return moment.isoformat()
        findings.append(finding(IMPLAUSIBLE_TIMESTAMP, row_number, "collected_at",
                                f"collected_at {text!r} {problem}", text))
        return text

    def finish(self) -> list[Finding]:
        return []
