"""Validation agents for CMDB exports: identifiers, formats, vocabularies and ranges.

Duplicates inside a file (same external_id, hostname, IP or serial) are found set-based
in SQL once the import is staged; their rules are registered here so that every rule
of the category is in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from . import formats
from .base import finding, normalised_row, rule_table
from .fields import check_criticality, check_hostname, check_ip, check_size, size_factor
from .model import Finding, Row, Rule
from .vocabularies import ASSET_TYPES, CRITICALITIES, ENVIRONMENTS

CANONICAL: tuple[str, ...] = (
    "external_id", "source", "hostname", "fqdn", "name", "ip_address", "mac_address", "serial_number",
    "asset_type", "environment", "criticality", "operating_system", "os_version", "cpu_cores", "memory_gb",
    "storage_gb", "location", "owner", "application",
)
IDENTIFIERS: tuple[str, ...] = ("external_id", "hostname", "fqdn", "name", "ip_address", "mac_address",
                                "serial_number")

#: Row agents in run order; duplicate detection runs last, in SQL over the staged rows.
AGENTS: tuple[str, ...] = ("schema", "format", "vocabulary", "range", "duplicate_detection")

MISSING_IDENTIFIER = Rule(
    "missing_identifier", "schema", "error",
    "The row has none of external_id, hostname, fqdn, name, ip_address, mac_address, serial_number, "
    "so it cannot be matched to an asset.")
INVALID_IP = Rule(
    "invalid_ip_address", "format", "error",
    "ip_address is not an IPv4 or IPv6 address (leading-zero octets rejected); valid ones are normalised "
    "to the compressed canonical form.")
MULTIPLE_IPS = Rule(
    "multiple_ip_addresses", "format", "warning",
    "ip_address holds several valid addresses (as AWS and Azure exports write them): the first becomes the "
    "asset's address, all are kept in the ip_addresses attribute.")
INVALID_MAC = Rule(
    "invalid_mac_address", "format", "error",
    "mac_address is not in aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or aabbccddeeff form; "
    "valid ones are normalised to lower-case colon form.")
INVALID_FQDN = Rule(
    "invalid_fqdn", "format", "error",
    "fqdn is not an RFC 1123 name with at least one dot, at most 253 characters and a non-numeric last "
    "label; valid ones are lower-cased, a trailing dot removed.")
INVALID_HOSTNAME = Rule(
    "invalid_hostname", "format", "error",
    "hostname is neither a host label nor an FQDN (letters, digits, hyphens, dots; no spaces or other "
    "punctuation; an IP address is not a host name); valid ones are lower-cased.")
HOSTNAME_UNDERSCORE = Rule(
    "hostname_underscore", "format", "warning",
    "hostname contains underscores: not valid in DNS, but common in NetBIOS names and CMDBs, so it is "
    "kept (lower-cased) with a warning.")
UNKNOWN_ASSET_TYPE = Rule(
    "unknown_asset_type", "vocabulary", "error",
    f"asset_type is not one of {ASSET_TYPES.accepted()} nor a known alias (VM, Physical Server, "
    "cmdb_ci_* class names, switch, F5, SAN, …).")
UNKNOWN_ENVIRONMENT = Rule(
    "unknown_environment", "vocabulary", "warning",
    f"environment is not one of {ENVIRONMENTS.accepted()} nor a known alias (prod, uat, qa, dev, dr, …); "
    "the value is kept as given.")
UNKNOWN_CRITICALITY = Rule(
    "unknown_criticality", "vocabulary", "warning",
    f"criticality is not one of {CRITICALITIES.accepted()} nor a known alias (Tier 0–4, P1–P5, "
    "ServiceNow '1 - most critical', mission/business critical); the value is kept as given.")
INVALID_NUMBER = Rule(
    "invalid_number", "range", "error",
    "cpu_cores, memory_gb or storage_gb is not a number (sizes may carry a unit: B, KB, MB, GB, TB, PB, "
    "binary factors).")
OUT_OF_RANGE = Rule(
    "out_of_range", "range", "error",
    "cpu_cores is not a whole number 1–1024, memory_gb not in (0, 65536] GB, or storage_gb not in "
    "[0, 10000000] GB.")

RULES: tuple[Rule, ...] = rule_table((
    MISSING_IDENTIFIER, INVALID_IP, MULTIPLE_IPS, INVALID_MAC, INVALID_FQDN, INVALID_HOSTNAME, HOSTNAME_UNDERSCORE,
    UNKNOWN_ASSET_TYPE, UNKNOWN_ENVIRONMENT, UNKNOWN_CRITICALITY, INVALID_NUMBER, OUT_OF_RANGE,
    Rule("duplicate_external_id", "duplicate_detection", "error",
         "Another row of the file has the same external_id."),
    Rule("duplicate_hostname", "duplicate_detection", "error",
         "Another row of the file has the same hostname."),
    Rule("duplicate_ip_address", "duplicate_detection", "warning",
         "Another row of the file has the same ip_address (shared or reused addresses happen)."),
    Rule("duplicate_serial_number", "duplicate_detection", "warning",
         "Another row of the file has the same serial_number (blades and VMs may inherit one)."),
))

_MAX_MEMORY_GB = Decimal(65536)
_MAX_STORAGE_GB = Decimal(10_000_000)
_ZERO = Decimal(0)


class CmdbChecker:
    """The CMDB export agents for one import (stateless across rows)."""

    agents = AGENTS
    rules = RULES
    normalises_per_row = True
    independent_rows = True

    def __init__(self, units: Mapping[str, str] | None = None) -> None:
        units = dict(units or {})
        self._memory_factor = size_factor(units, "memory_gb")
        self._storage_factor = size_factor(units, "storage_gb")

    def check(self, row_number: int, row: Row) -> tuple[dict[str, str | None], list[Finding]]:
        out = normalised_row(row, CANONICAL)
        findings: list[Finding] = []

        # schema
        if all(out[column] is None for column in IDENTIFIERS):
            findings.append(finding(
                MISSING_IDENTIFIER, row_number, None,
                "the row has no identifier: one of external_id, hostname, fqdn, name, ip_address, "
                "mac_address or serial_number is required"))

        # format
        value = out["hostname"]
        if value is not None:
            out["hostname"] = check_hostname(value, row_number, "hostname", INVALID_HOSTNAME,
                                             HOSTNAME_UNDERSCORE, findings)
        value = out["fqdn"]
        if value is not None:
            fqdn = formats.parse_fqdn(value)
            if fqdn is None:
                findings.append(finding(
                    INVALID_FQDN, row_number, "fqdn",
                    f"fqdn {value!r} is not a fully qualified domain name: expected dot-separated labels of "
                    "letters, digits and hyphens (at most 63 characters each, 253 in all, a non-numeric "
                    "last label), e.g. app01.corp.example.com", value))
            else:
                out["fqdn"] = fqdn
        value = out["ip_address"]
        if value is not None:
            addresses = check_ip(value, row_number, "ip_address", INVALID_IP, findings, MULTIPLE_IPS)
            if "," in addresses:
                out["ip_address"], out["ip_addresses"] = addresses.split(",", 1)[0], addresses
            else:
                out["ip_address"] = addresses
        value = out["mac_address"]
        if value is not None:
            mac = formats.parse_mac(value)
            if mac is None:
                findings.append(finding(
                    INVALID_MAC, row_number, "mac_address",
                    f"mac_address {value!r} is not a MAC address: expected aa:bb:cc:dd:ee:ff, "
                    "AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or aabbccddeeff", value))
            else:
                out["mac_address"] = mac

        # vocabulary
        value = out["asset_type"]
        if value is not None:
            canonical = ASSET_TYPES.lookup(value)
            if canonical is None:
                findings.append(finding(
                    UNKNOWN_ASSET_TYPE, row_number, "asset_type",
                    f"asset_type {value!r} is not a known asset type: expected one of "
                    f"{ASSET_TYPES.accepted()} (or an alias such as VM, Physical Server, cmdb_ci_server)",
                    value))
            else:
                out["asset_type"] = canonical
        value = out["environment"]
        if value is not None:
            canonical = ENVIRONMENTS.lookup(value)
            if canonical is None:
                findings.append(finding(
                    UNKNOWN_ENVIRONMENT, row_number, "environment",
                    f"environment {value!r} is not a known environment: expected one of "
                    f"{ENVIRONMENTS.accepted()} (or prod, uat, qa, dev, dr…); kept as given", value))
            else:
                out["environment"] = canonical
        value = out["criticality"]
        if value is not None:
            out["criticality"] = check_criticality(value, row_number, UNKNOWN_CRITICALITY, findings)

        # range
        value = out["cpu_cores"]
        if value is not None:
            out["cpu_cores"] = self._cpu_cores(value, row_number, findings)
        value = out["memory_gb"]
        if value is not None:
            out["memory_gb"] = check_size(value, row_number, "memory_gb", self._memory_factor,
                                          minimum=_ZERO, minimum_inclusive=False, maximum=_MAX_MEMORY_GB,
                                          invalid=INVALID_NUMBER, out_of_range=OUT_OF_RANGE, out=findings)
        value = out["storage_gb"]
        if value is not None:
            out["storage_gb"] = check_size(value, row_number, "storage_gb", self._storage_factor,
                                           minimum=_ZERO, minimum_inclusive=True, maximum=_MAX_STORAGE_GB,
                                           invalid=INVALID_NUMBER, out_of_range=OUT_OF_RANGE, out=findings)
        return out, findings

    @staticmethod
    def _cpu_cores(text: str, row_number: int, findings: list[Finding]) -> str:
        if text.isdigit() and text.isascii() and 0 < len(text) <= 4:
            cores = int(text)
            if 1 <= cores <= 1024:
                return str(cores)
        number = formats.parse_decimal(text)
        if number is None:
            findings.append(finding(
                INVALID_NUMBER, row_number, "cpu_cores",
                f"cpu_cores {text!r} is not a number: expected a whole number of cores from 1 to 1024", text))
            return text
        if number != number.to_integral_value() or not 1 <= number <= 1024:
            findings.append(finding(
                OUT_OF_RANGE, row_number, "cpu_cores",
                f"cpu_cores {text!r} is out of range: must be a whole number from 1 to 1024", text))
            return text
        return str(int(number))

    def finish(self) -> list[Finding]:
        return []
