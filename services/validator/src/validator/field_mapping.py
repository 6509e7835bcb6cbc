"""Mapping an uploaded header to its category's canonical columns.

Uploaded files have whatever headers their author or exporting tool chose. Before
any rule runs, every column is given a meaning:

1. If the header is a known vendor export (:mod:`validator.vendor_templates`), the
   template's own column map decides for the vendor's columns, including the unit of
   their numbers (``RAM.TotalSizeInMB`` is ``memory_gb`` in MB) and which vendor
   columns carry no canonical meaning (RVTools' ``Host`` is the ESXi host, never the
   VM's hostname).
2. Every other column is matched case-, space- and punctuation-insensitively against
   the canonical names and a table of synonyms (:data:`ALIASES`), per category, so
   ``Host Name``, ``server_name`` and ``Computer Name`` are all ``hostname``. A unit
   or percent suffix is understood too: ``Memory (MB)`` is ``memory_gb`` in MB.
3. When two columns claim one canonical column, the better claim wins - the exact
   canonical name, then a template column (in the template's order of preference),
   then a synonym; among equals the earlier column - and the loser is kept as an
   extra attribute. The :class:`ColumnMapping` reports every such conflict.
4. Columns with no meaning are kept as extra attributes under their normalised name,
   renamed deterministically (``_2``, ``_3`` ...) where that name is a canonical column
   or already taken, so an extra can never shadow a canonical value.

Nothing here reads cell values: the mapping is a function of the header alone, so it
is decided once per import and reported with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from contracts import Category

from .vendor_templates import ColumnRule, VendorTemplate, detect_template, header_key, normalise

__all__ = [
    "ALIASES",
    "CANONICAL",
    "CATEGORY_ALIASES",
    "IDENTIFIER_COLUMNS",
    "REQUIRED",
    "REQUIREMENTS",
    "ColumnMapping",
    "Conflict",
    "map_columns",
    "map_header",
    "missing_required",
    "normalise",
]

# Canonical columns per category. Other components (the rule engine, the enricher)
# read rows by these names: they are a contract, not a detail of this module.
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

# --- required columns ---------------------------------------------------------------

# Any one of these identifies an asset well enough to inventory it; which one a file
# has depends on its source (a CMDB has ids, a network scan has addresses).
IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "external_id", "hostname", "fqdn", "name", "ip_address", "mac_address", "serial_number",
)

# What a file must have, after mapping, for its category to make sense at all. Each
# requirement is a group of alternatives: one column of the group is enough.
REQUIREMENTS: dict[Category, tuple[tuple[str, ...], ...]] = {
    Category.CMDB_EXPORT: (IDENTIFIER_COLUMNS,),
    Category.APP_DISCOVERY: (("source",), ("target",)),
    Category.INFRASTRUCTURE: (("hostname", "ip_address"),),
    Category.SENSITIVE_DATA: (("hostname",), ("classification",)),
}

# The columns required on their own (groups of one), for code that checks a value per
# row and has no notion of alternatives.
REQUIRED: dict[Category, tuple[str, ...]] = {
    category: tuple(group[0] for group in groups if len(group) == 1) for category, groups in REQUIREMENTS.items()
}

# --- synonyms -----------------------------------------------------------------------
# Written as people write headers; compared by header_key (case, spaces and
# punctuation ignored), so "IP-Address", "ip_address" and "IPAddress" need no entries
# of their own. An alias applies in every category that has its canonical column.

ALIASES: dict[str, tuple[str, ...]] = {
    # identity
    "external_id": (
        "id", "asset id", "ci id", "cmdb id", "record id", "inventory id", "unique id", "uuid", "sys id",
        "object id", "external ref", "external reference", "source id", "asset number",
    ),
    "hostname": (
        "host name", "host", "server", "server name", "computer name", "computer", "machine name", "machine",
        "vm name", "vm", "virtual machine", "virtual machine name", "node name", "node", "device name",
        "system name", "short name", "netbios name", "guest hostname",
    ),
    "fqdn": (
        "fully qualified domain name", "dns name", "dns hostname", "full hostname", "fqdn name",
        "fully qualified name",
    ),
    "name": ("asset name", "ci name", "display name", "friendly name"),
    "ip_address": (
        "ip", "ip addr", "ipv4", "ipv4 address", "ip v4 address", "primary ip", "primary ip address",
        "primary ipv4", "management ip", "mgmt ip", "ip addresses", "network address",
    ),
    "mac_address": (
        "mac", "mac addr", "mac id", "physical address", "hardware address", "ethernet address",
        "primary mac", "primary mac address", "mac addresses",
    ),
    "serial_number": ("serial", "serial no", "serial num", "sn", "service tag", "chassis serial"),
    # classification of the asset
    "asset_type": (
        "type", "asset class", "ci type", "ci class", "class", "class name", "sys class name", "device type",
        "server type", "asset category", "machine type", "host type",
    ),
    "environment": (
        "env", "environment name", "stage", "lifecycle", "lifecycle stage", "used for", "deployment environment",
    ),
    "criticality": (
        "business criticality", "busines criticality", "criticality level", "business impact", "importance",
        "mission criticality", "critical",
    ),
    "operating_system": (
        "os", "os name", "operating system name", "os family", "guest os", "os type", "operating system type",
    ),
    "os_version": ("operating system version", "os release", "os build", "os ver", "os level"),
    # capacity
    "cpu_cores": (
        "cores", "cpu", "cpus", "vcpu", "vcpus", "cpu count", "cpu core count", "core count", "number of cores",
        "num cores", "total cores", "processors", "number of processors", "num cpus", "number of cpus",
        "processor count", "virtual cpus",
    ),
    "memory_gb": (
        "memory", "ram", "mem", "total memory", "memory size", "ram size", "physical memory", "installed memory",
        "total ram", "memory capacity",
    ),
    "storage_gb": (
        "storage", "disk", "disks size", "disk size", "disk space", "total disk", "disk capacity",
        "storage capacity", "total storage", "storage size", "total disk size", "provisioned storage",
        "provisioned space", "hdd",
    ),
    # ownership and placement
    "location": (
        "site", "data center", "datacenter", "dc", "facility", "site name", "physical location", "region",
        "location name",
    ),
    "owner": (
        "owned by", "managed by", "business owner", "technical owner", "system owner", "owner name",
        "application owner", "app owner", "assigned to", "contact", "responsible",
    ),
    "application": (
        "app", "application name", "app name", "applications", "business application",
        "business application name", "business service", "service", "workload", "app service",
    ),
    # app_discovery (cmdb_export has a "source" of its own: see CATEGORY_ALIASES)
    "source_type": ("source kind", "from type", "source ci type", "source class", "src type"),
    "target_type": ("target kind", "to type", "target ci type", "target class", "destination type", "dst type"),
    "port": (
        "port number", "port no", "dest port", "destination port", "target port", "dst port", "tcp port",
        "listening port", "service port",
    ),
    "protocol": ("proto", "transport", "transport protocol", "ip protocol", "network protocol"),
    "dependency_type": (
        "dependency kind", "relationship", "relationship type", "relation", "relation type", "link type",
        "connection type", "dep type", "rel type", "integration type",
    ),
    "confidence": ("confidence score", "confidence level", "certainty", "probability", "likelihood"),
    # infrastructure
    "cpu_avg_pct": (
        "cpu avg", "cpu average", "avg cpu", "average cpu", "cpu mean", "cpu usage", "cpu utilization",
        "cpu utilisation", "cpu util", "cpu usage avg", "cpu utilization avg", "cpu load", "cpu pct",
    ),
    "cpu_peak_pct": (
        "cpu peak", "cpu max", "max cpu", "peak cpu", "cpu maximum", "cpu usage max", "cpu utilization max",
        "cpu usage peak", "cpu p95", "cpu 95th percentile",
    ),
    "memory_avg_pct": (
        "memory avg", "mem avg", "ram avg", "memory average", "avg memory", "average memory", "memory usage",
        "memory utilization", "memory utilisation", "memory util", "ram usage", "ram utilization", "mem usage",
        "mem util", "memory pct", "mem pct", "ram pct",
        # "Disk Used %" has its twin under disk_avg_pct. Only with the percent sign: a bare
        # "Memory Used" is as often an amount (GB) as a share.
        "memory used %", "mem used %", "ram used %",
    ),
    "memory_peak_pct": (
        "memory peak", "mem peak", "ram peak", "memory max", "mem max", "max memory", "peak memory",
        "memory maximum", "memory usage max", "memory utilization max", "memory p95",
    ),
    "memory_total": (
        "memory", "ram", "mem", "total memory", "memory size", "ram size", "installed memory", "total ram",
        "physical memory", "memory capacity",
    ),
    "disk_avg_pct": (
        "disk avg", "disk average", "avg disk", "disk usage", "disk utilization", "disk utilisation", "disk util",
        "storage usage", "storage utilization", "disk used", "disk pct", "storage pct",
    ),
    "disk_peak_pct": ("disk peak", "disk max", "max disk", "peak disk", "disk usage max", "disk utilization max"),
    "disk_total": (
        "disk", "disk size", "total disk", "disk capacity", "storage", "storage total", "total storage",
        "storage capacity", "disk space", "provisioned storage",
    ),
    "network_avg_mbps": (
        "network avg", "network average", "avg network", "network", "network usage", "network throughput",
        "net", "net avg", "bandwidth", "bandwidth avg", "network io", "network traffic",
    ),
    "network_peak_mbps": (
        "network peak", "network max", "peak network", "max network", "net peak", "bandwidth peak",
        "bandwidth max", "network throughput max",
    ),
    "collected_at": (
        "timestamp", "collected", "collected on", "collection time", "collection date", "sample time",
        "measured at", "recorded at", "as of", "snapshot date", "date", "time", "datetime",
    ),
    # sensitive_data
    "data_store": (
        "datastore", "database", "db", "db name", "database name", "store", "repository", "schema", "share",
        "file share", "bucket", "storage location", "data location", "database instance", "data source",
    ),
    "classification": (
        "data classification", "classification level", "sensitivity", "sensitivity level", "data sensitivity",
        "data class", "sensitivity label", "security classification", "confidentiality",
    ),
    "regulation": (
        "regulations", "compliance", "compliance framework", "regulatory", "regulatory framework", "framework",
        "regime", "compliance scope", "regulatory scope",
    ),
    "data_owner": ("owner", "owned by", "data steward", "steward", "custodian", "data custodian", "business owner"),
    "record_count": (
        "records", "rows", "row count", "number of records", "num records", "count", "total records",
        "record total", "entries",
    ),
}

# Words whose meaning depends on the category. Looked up before ALIASES.
CATEGORY_ALIASES: dict[Category, dict[str, tuple[str, ...]]] = {
    Category.CMDB_EXPORT: {
        # Where the record came from (a discovery tool, an upstream CMDB).
        "source": ("data source", "source system", "discovery source", "source tool", "origin"),
    },
    Category.APP_DISCOVERY: {
        "source": (
            "source application", "source app", "from", "source name", "src", "source host", "source server",
            "source ci", "caller", "client", "consumer", "source service", "from application", "from app",
            "application", "app",
        ),
        "target": (
            "target application", "target app", "to", "target name", "destination", "dest", "dst",
            "destination application", "target host", "target server", "target ci", "callee", "provider",
            "depends on", "target service", "to application", "to app", "destination host",
        ),
        "dependency_type": ("type", "dependency"),
        "criticality": ("business criticality", "importance", "impact"),
        "confidence": ("score",),
    },
    Category.INFRASTRUCTURE: {
        # In a performance export a bare "Name" is the server's, a bare "CPU" its load.
        "hostname": ("name", "server"),
        "cpu_avg_pct": ("cpu",),
    },
    Category.SENSITIVE_DATA: {},
}

# --- suffixes: units and percent ----------------------------------------------------

_SIZE_COLUMNS = frozenset({"memory_gb", "storage_gb", "memory_total", "disk_total"})
_PERCENT_COLUMNS = frozenset(c for c in CANONICAL[Category.INFRASTRUCTURE] if c.endswith("_pct"))
_RATE_COLUMNS = frozenset({"network_avg_mbps", "network_peak_mbps"})

# (header_key suffix, unit it states, columns it may decorate). Longest suffixes first
# so "mib" is not read as "b". A suffix is only honoured when the rest of the header is
# itself a synonym of one of those columns: "Memory (MB)" is memory in MB, but
# "Thumb" is not a thu in MB.
_SUFFIXES: tuple[tuple[str, str | None, frozenset[str]], ...] = (
    ("percentage", None, _PERCENT_COLUMNS),
    ("percent", None, _PERCENT_COLUMNS),
    ("pct", None, _PERCENT_COLUMNS),
    ("mbps", "Mbps", _RATE_COLUMNS),
    ("kbps", "Kbps", _RATE_COLUMNS),
    ("gbps", "Gbps", _RATE_COLUMNS),
    ("kib", "KiB", _SIZE_COLUMNS),
    ("mib", "MiB", _SIZE_COLUMNS),
    ("gib", "GiB", _SIZE_COLUMNS),
    ("tib", "TiB", _SIZE_COLUMNS),
    ("kb", "KB", _SIZE_COLUMNS),
    ("mb", "MB", _SIZE_COLUMNS),
    ("gb", "GB", _SIZE_COLUMNS),
    ("tb", "TB", _SIZE_COLUMNS),
)


def _lookup_table(category: Category) -> dict[str, str]:
    """{header key: canonical column} for one category.

    Precedence when a key is claimed twice: the canonical names themselves, then the
    category's own aliases, then the shared ones (in table order).
    """
    canonical = CANONICAL[category]
    table = {header_key(column): column for column in canonical}
    sources = [CATEGORY_ALIASES[category], {c: ALIASES.get(c, ()) for c in canonical}]
    for aliases in sources:
        for column, words in aliases.items():
            if column not in canonical:
                continue
            for word in words:
                table.setdefault(header_key(word), column)
    return table


_LOOKUP: dict[Category, dict[str, str]] = {category: _lookup_table(category) for category in Category}


def _synonym(category: Category, key: str) -> tuple[str, str | None] | None:
    """(canonical column, unit) for a header key, or None."""
    table = _LOOKUP[category]
    if key in table:
        return table[key], None
    for spelled_out in ("percentage", "percent"):  # "CPU Usage Percent" is "CPU Usage %"
        if key.endswith(spelled_out) and (column := table.get(key[: -len(spelled_out)] + "pct")):
            return column, None
    for suffix, unit, columns in _SUFFIXES:
        if not key.endswith(suffix) or len(key) == len(suffix):
            continue
        stem = key[: -len(suffix)]
        # "Memory in MB", "Disk size in GB": the "in" belongs to the unit.
        for candidate in (stem, stem.removesuffix("in")):
            column = table.get(candidate)
            if column in columns:
                return column, unit
    return None


# --- the mapping ----------------------------------------------------------------------


class MatchKind(IntEnum):
    """How a column claimed its canonical name; lower wins a conflict."""

    CANONICAL = 0  # the canonical name itself, in any case or spacing
    TEMPLATE = 1  # a vendor template's column
    SYNONYM = 2  # a synonym, possibly with a unit or percent suffix


@dataclass(frozen=True, slots=True)
class Conflict:
    """An uploaded column that wanted a canonical column another column got."""

    column: str  # the uploaded header that lost
    canonical: str  # what it would have been
    winner: str  # the uploaded header that is that canonical column
    kept_as: str  # the extra attribute name the loser is kept under

    def report(self) -> dict[str, str]:
        return {"column": self.column, "canonical": self.canonical, "winner": self.winner, "kept_as": self.kept_as}


@dataclass(frozen=True)
class ColumnMapping:
    """The meaning of every column of one uploaded header, for one category."""

    columns: dict[str, str]  # uploaded header -> canonical name, or the extra attribute's name
    template: str | None  # the recognised vendor template, see vendor_templates.TEMPLATE_NAMES
    extras: tuple[str, ...]  # uploaded headers kept as extra attributes, in header order
    units: dict[str, str]  # canonical column -> unit of bare numbers in it, e.g. {"memory_gb": "MB"}
    unmapped_canonical: tuple[str, ...] = ()  # the category's canonical columns no column maps to
    conflicts: tuple[Conflict, ...] = ()  # columns that lost a canonical column to another

    def canonical(self) -> set[str]:
        """The canonical columns present."""
        extras = set(self.extras)
        return {name for column, name in self.columns.items() if column not in extras}

    def extra_names(self) -> dict[str, str]:
        """{uploaded header: extra attribute name} for the extras."""
        return {column: self.columns[column] for column in self.extras}

    def report(self) -> dict[str, Any]:
        """A JSON-able account of the mapping, for the import's validation report."""
        return {
            "template": self.template,
            "columns": dict(self.columns),
            "extras": list(self.extras),
            "units": dict(self.units),
            "unmapped_canonical": list(self.unmapped_canonical),
            "conflicts": [conflict.report() for conflict in self.conflicts],
        }


@dataclass(frozen=True, slots=True)
class _Claim:
    index: int
    column: str
    canonical: str
    unit: str | None
    rank: tuple[int, int, int]  # (MatchKind, template preference, header position)


def map_columns(category: Category, header: Sequence[str]) -> ColumnMapping:
    """Give every column of ``header`` its meaning in ``category``.

    ``header`` holds unique column names (ingest rejects duplicates); order matters
    only to break ties between equally good claims.
    """
    template = detect_template(header)
    rules = template.rules_for(category, CANONICAL[category]) if template else {}
    claims = [
        claim
        for index, column in enumerate(header)
        if (claim := _claim(category, template, rules, index, column)) is not None
    ]
    winners: dict[str, _Claim] = {}
    for claim in sorted(claims, key=lambda c: c.rank):
        winners.setdefault(claim.canonical, claim)
    by_index = {claim.index: claim for claim in claims}

    columns: dict[str, str] = {}
    extras: list[str] = []
    conflicts: list[Conflict] = []
    # Extras may not take a canonical name, present or not: a later rule reading
    # row["hostname"] must never see an unmapped column's value.
    taken = set(CANONICAL[category])
    for index, column in enumerate(header):
        claim = by_index.get(index)
        if claim is not None and winners[claim.canonical] is claim:
            columns[column] = claim.canonical
            continue
        name = _extra_name(column, index, taken)
        taken.add(name)
        columns[column] = name
        extras.append(column)
        if claim is not None:
            conflicts.append(Conflict(column, claim.canonical, winners[claim.canonical].column, name))

    units = {claim.canonical: claim.unit for claim in winners.values() if claim.unit is not None}
    present = set(winners)
    return ColumnMapping(
        columns=columns,
        template=template.name if template else None,
        extras=tuple(extras),
        units={c: units[c] for c in CANONICAL[category] if c in units},
        unmapped_canonical=tuple(c for c in CANONICAL[category] if c not in present),
        conflicts=tuple(conflicts),
    )


def _claim(
    category: Category, template: VendorTemplate | None, rules: Mapping[str, ColumnRule], index: int, column: str
) -> _Claim | None:
    """What ``column`` would be if nothing else competed for it, and how strongly."""
    if template is not None:
        key = template.key(column)
        rule = rules.get(key)
        if rule is not None:
            kind = MatchKind.CANONICAL if key == header_key(rule.canonical) else MatchKind.TEMPLATE
            return _Claim(index, column, rule.canonical, rule.unit, (kind, rule.preference, index))
        if template.owns(column):
            return None  # the vendor's column, with no meaning in this category
    else:
        key = header_key(column)
    match = _synonym(category, key)
    if match is None:
        return None
    target, unit = match
    kind = MatchKind.CANONICAL if key == header_key(target) else MatchKind.SYNONYM
    return _Claim(index, column, target, unit, (kind, 0, index))


def _extra_name(column: str, index: int, taken: set[str]) -> str:
    base = normalise(column) or f"column_{index + 1}"
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


# --- compatibility and required columns ---------------------------------------------


def map_header(category: Category, header: Sequence[str]) -> dict[str, str]:
    """{uploaded column: canonical column or extra name}; :func:`map_columns`' ``columns``."""
    return map_columns(category, header).columns


def missing_required(category: Category, mapping: ColumnMapping | Mapping[str, str]) -> list[str]:
    """The requirements of ``category`` the mapping doesn't meet, as readable names.

    A requirement with alternatives reads ``"one of hostname, ip_address"``. Accepts
    the ``{uploaded: canonical}`` dict of :func:`map_header` as well, for callers not
    yet moved to :class:`ColumnMapping`.
    """
    present = mapping.canonical() if isinstance(mapping, ColumnMapping) else set(mapping.values())
    missing: list[str] = []
    for group in REQUIREMENTS[category]:
        if present.isdisjoint(group):
            missing.append(group[0] if len(group) == 1 else f"one of {', '.join(group)}")
    return missing
