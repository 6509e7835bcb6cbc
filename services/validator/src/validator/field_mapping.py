"""Mapping uploaded headers to each category's canonical columns.

Headers match case-, space- and punctuation-insensitively, with synonyms. Columns
that map to nothing are kept under their normalised name as extra attributes.
"""

from __future__ import annotations

import re

from contracts import Category

CANONICAL: dict[Category, tuple[str, ...]] = {
    Category.CMDB_EXPORT: (
        "external_id", "hostname", "fqdn", "ip_address", "mac_address", "serial_number", "name", "asset_type",
        "environment", "criticality", "operating_system", "os_version", "cpu_cores", "memory_gb", "storage_gb",
        "location", "owner", "application", "source",
    ),
    Category.APP_DISCOVERY: (
        "source", "target", "source_type", "target_type", "port", "protocol", "dependency_type", "criticality",
        "confidence",
    ),
    Category.INFRASTRUCTURE: (
        "hostname", "ip_address", "cpu_avg_pct", "cpu_peak_pct", "memory_avg_pct", "memory_peak_pct",
        "memory_total", "disk_avg_pct", "disk_peak_pct", "disk_total", "network_avg_mbps", "network_peak_mbps",
        "collected_at",
    ),
    Category.SENSITIVE_DATA: (
        "hostname", "data_store", "classification", "regulation", "data_owner", "record_count",
    ),
}

# Columns a file must have (after mapping) for its category to make sense at all.
REQUIRED: dict[Category, tuple[str, ...]] = {
    Category.CMDB_EXPORT: ("hostname",),
    Category.APP_DISCOVERY: ("source", "target"),
    Category.INFRASTRUCTURE: ("hostname",),
    Category.SENSITIVE_DATA: ("hostname", "classification"),
}

SYNONYMS: dict[str, str] = {
    "host": "hostname", "host_name": "hostname", "server": "hostname", "server_name": "hostname",
    "computer_name": "hostname", "vm": "hostname", "vm_name": "hostname", "ci_name": "hostname",
    "ip": "ip_address", "ip_addr": "ip_address", "ipaddress": "ip_address", "primary_ip": "ip_address",
    "mac": "mac_address", "mac_addr": "mac_address",
    "serial": "serial_number", "serial_no": "serial_number",
    "type": "asset_type", "ci_type": "asset_type", "class": "asset_type",
    "env": "environment", "os": "operating_system",
    "source_application": "source", "source_app": "source", "from": "source", "source_name": "source",
    "target_application": "target", "target_app": "target", "to": "target", "target_name": "target",
    "destination": "target",
    "cpu_avg": "cpu_avg_pct", "cpu_peak": "cpu_peak_pct", "memory_avg": "memory_avg_pct",
    "memory_peak": "memory_peak_pct", "mem_avg": "memory_avg_pct", "mem_peak": "memory_peak_pct",
    "classification_level": "classification", "data_classification": "classification",
    "compliance": "regulation", "regulations": "regulation",
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(header: str) -> str:
    return _NON_ALNUM.sub("_", header.strip().lower()).strip("_")


def map_header(category: Category, header: list[str]) -> dict[str, str]:
    """{uploaded column: canonical column}; the first column claiming a canonical name wins."""
    canonical = set(CANONICAL[category])
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in header:
        key = normalise(column)
        target = key if key in canonical else SYNONYMS.get(key, key)
        if target in taken:
            target = key if key not in taken else f"{key}_{len(taken)}"
        mapping[column] = target
        taken.add(target)
    return mapping


def missing_required(category: Category, mapping: dict[str, str]) -> list[str]:
    mapped = set(mapping.values())
    return [c for c in REQUIRED[category] if c not in mapped]
