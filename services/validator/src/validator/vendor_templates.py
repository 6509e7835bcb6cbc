"""Vendor export templates recognised by their header, and how their columns map.

Migration assessments rarely start from a hand-made spreadsheet: people upload what
their tools export. Four exports are common enough to be recognised as they come:

* ``aws_migration_hub`` - the AWS Migration Hub / Application Discovery Service import
  template (``ExternalId``, ``VMware.MoRefId``, ``CPU.UsagePct.Avg``, ...).
* ``azure_migrate`` - the Azure Migrate "import using CSV" template (``*Server name``,
  ``*Memory (In MB)``, ``CPU utilization percentage``, ...).
* ``rvtools_vinfo`` - the vInfo sheet of an RVTools workbook (``VM``, ``Powerstate``,
  ``Provisioned MiB``, ``OS according to the VMware Tools``, ...).
* ``servicenow_cmdb`` - a ServiceNow CMDB list export (``sys_id``, ``sys_class_name``,
  ``host_name``, ``u_*`` custom fields, ...).

Everything here is data: a :class:`VendorTemplate` lists the vendor's columns, the ones
distinctive enough to recognise it by, and per category which columns carry which
canonical meaning (and in what unit). :func:`detect_template` scores a header against
every template; :mod:`validator.field_mapping` applies the winner.

Headers are compared by :func:`header_key`: lower case with every non-alphanumeric
character removed, so ``"Memory (In MB)"``, ``"memory_in_mb"`` and ``"MemoryInMB"``
are one column, and the column order of a file never matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from contracts import Category

# --- header keys --------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(header: str) -> str:
    """The readable form of a header: lower case, runs of other characters as ``_``.

    This is the name an unmapped column is kept under (``"Rack Unit"`` -> ``rack_unit``).
    A percent sign is the only punctuation with a meaning worth keeping: ``"CPU %"``
    becomes ``cpu_pct``, not ``cpu``.
    """
    return _NON_ALNUM.sub("_", header.strip().lower().replace("%", " pct ")).strip("_")


def header_key(header: str) -> str:
    """The matching form of a header: lower case alphanumerics only (``%`` as ``pct``).

    Dropping separators entirely (rather than normalising them to ``_``) is what makes
    camel-cased vendor headers meet their spaced synonyms: ``HostName``, ``Host Name``
    and ``host_name`` all become ``hostname``.
    """
    return _NON_ALNUM.sub("", header.lower().replace("%", "pct"))


# --- template data model ------------------------------------------------------------

# A column map entry: the canonical column, or (canonical column, unit of its numbers).
Target = str | tuple[str, str]


@dataclass(frozen=True, slots=True)
class ColumnRule:
    """What one vendor column means in one category."""

    canonical: str
    unit: str | None
    # Position in the template's map: when two vendor columns carry the same meaning
    # (RVTools' two OS columns), the earlier listed one is the better source.
    preference: int


# Identity semantics (eq=False): a template is a registry entry, compared with ``is``,
# and hashable although it holds dicts.
@dataclass(frozen=True, eq=False)
class VendorTemplate:
    """One vendor export: how to recognise it and what its columns mean."""

    name: str  # reported as ColumnMapping.template
    title: str
    # The vendor's columns as it ships them, in its order: the reference header for
    # tests and samples. With ``variants`` (other spellings and versions of the same
    # columns) it tells the vendor's columns from ones a user added.
    header: tuple[str, ...]
    # Columns distinctive enough that their presence says "this is that export".
    # A file must contain at least one of them ...
    anchors: tuple[str, ...]
    # ... and at least this many of the template's columns (anchors included), so a
    # subset of the template is recognised but one coincidental column is not.
    min_matches: int
    # Per category: vendor column -> canonical meaning. Listing order is preference.
    # A category without a map falls back to the CMDB map restricted to the columns
    # that category has (every template here describes servers).
    column_maps: Mapping[Category, Mapping[str, Target]]
    # Other spellings and versions of the vendor's columns (see ``header``).
    variants: tuple[str, ...] = ()
    # Prefixes removed from a column before any lookup (ServiceNow's custom ``u_``).
    strip_prefixes: tuple[str, ...] = ()
    # Column families that belong to the vendor although ``header`` can't list them all
    # (ServiceNow's ``sys_*`` fields, Azure's "Disk 3 ..." repeats): regular expressions
    # matched against the normalised header. Such columns are kept as extras, never
    # guessed at by the generic synonyms.
    vendor_patterns: tuple[str, ...] = ()
    _known: frozenset[str] = field(init=False, repr=False, compare=False)
    _anchors: frozenset[str] = field(init=False, repr=False, compare=False)
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _rules: Mapping[Category, Mapping[str, ColumnRule]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mapped = {key for columns in self.column_maps.values() for key in map(self.key, columns)}
        rules = {category: _rules(columns, self.key) for category, columns in self.column_maps.items()}
        object.__setattr__(self, "_known", frozenset(map(self.key, self.header + self.variants)) | mapped)
        object.__setattr__(self, "_anchors", frozenset(map(self.key, self.anchors)))
        object.__setattr__(self, "_patterns", tuple(re.compile(p) for p in self.vendor_patterns))
        object.__setattr__(self, "_rules", MappingProxyType(rules))

    def key(self, header: str) -> str:
        """The lookup key of ``header`` in this template (vendor prefixes removed)."""
        name = normalise(header)
        for prefix in self.strip_prefixes:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix):]
                break
        return header_key(name)

    def rules_for(self, category: Category, canonical: Collection[str]) -> Mapping[str, ColumnRule]:
        """{lookup key: rule} for ``category``, whose canonical columns are ``canonical``.

        A category the template has no map for gets the CMDB map restricted to its
        columns: RVTools' "VM" is the hostname in a sensitive-data file too.
        """
        if category in self._rules:
            return self._rules[category]
        cmdb = self._rules.get(Category.CMDB_EXPORT, {})
        return {key: rule for key, rule in cmdb.items() if rule.canonical in canonical}

    def owns(self, header: str) -> bool:
        """True if ``header`` is one of the vendor's own columns (mapped or not)."""
        if self.key(header) in self._known:
            return True
        name = normalise(header)
        return any(pattern.match(name) for pattern in self._patterns)

    def score(self, keys: frozenset[str]) -> tuple[int, int]:
        """(anchor columns present, template columns present) for a header's keys."""
        return len(keys & self._anchors), len(keys & self._known)

    def matches(self, keys: frozenset[str]) -> bool:
        anchors, known = self.score(keys)
        return anchors >= 1 and known >= self.min_matches


def _rules(columns: Mapping[str, Target], key: Callable[[str], str]) -> dict[str, ColumnRule]:
    rules: dict[str, ColumnRule] = {}
    for preference, (column, target) in enumerate(columns.items()):
        canonical, unit = (target, None) if isinstance(target, str) else target
        rules[key(column)] = ColumnRule(canonical=canonical, unit=unit, preference=preference)
    return rules


# --- AWS Migration Hub import template ----------------------------------------------
# Columns and order of MigrationHubImportTemplate.csv as documented in the Application
# Discovery Service user guide ("Supported import file fields").
AWS_MIGRATION_HUB_HEADER: tuple[str, ...] = (
    "ExternalId", "SMBiosId", "IPAddress", "MACAddress", "HostName", "VMware.MoRefId", "VMware.VCenterId",
    "CPU.NumberOfProcessors", "CPU.NumberOfCores", "CPU.NumberOfLogicalCores", "OS.Name", "OS.Version",
    "VMware.VMName", "RAM.TotalSizeInMB", "RAM.UsedSizeInMB.Avg", "RAM.UsedSizeInMB.Max", "CPU.UsagePct.Avg",
    "CPU.UsagePct.Max", "DiskReadsPerSecondInKB.Avg", "DiskWritesPerSecondInKB.Avg",
    "DiskReadsPerSecondInKB.Max", "DiskWritesPerSecondInKB.Max", "DiskReadsOpsPerSecond.Avg",
    "DiskWritesOpsPerSecond.Avg", "DiskReadsOpsPerSecond.Max", "DiskWritesOpsPerSecond.Max",
    "NetworkReadsPerSecondInKB.Avg", "NetworkWritesPerSecondInKB.Avg", "NetworkReadsPerSecondInKB.Max",
    "NetworkWritesPerSecondInKB.Max", "Applications", "ApplicationWave", "Tags", "ServerId",
)
# Older copies of the template also carry network operation counters.
_AWS_OLDER_COLUMNS = (
    "NetworkReadsOpsPerSecond.Avg", "NetworkWritesOpsPerSecond.Avg",
    "NetworkReadsOpsPerSecond.Max", "NetworkWritesOpsPerSecond.Max",
)

AWS_MIGRATION_HUB = VendorTemplate(
    name="aws_migration_hub",
    title="AWS Migration Hub import template",
    header=AWS_MIGRATION_HUB_HEADER,
    variants=_AWS_OLDER_COLUMNS,
    # ExternalId/HostName/IPAddress/MACAddress/OS.* are ordinary words once the dots
    # and case are gone; the namespaced metrics are what only this template has.
    anchors=tuple(c for c in AWS_MIGRATION_HUB_HEADER + _AWS_OLDER_COLUMNS if "." in c and not c.startswith("OS."))
    + ("SMBiosId", "ApplicationWave"),
    min_matches=2,
    column_maps={
        Category.CMDB_EXPORT: {
            "ExternalId": "external_id",
            "HostName": "hostname",
            "VMware.VMName": "name",
            "IPAddress": "ip_address",
            "MACAddress": "mac_address",
            "OS.Name": "operating_system",
            "OS.Version": "os_version",
            # Physical cores, not sockets (NumberOfProcessors) nor threads (Logical).
            "CPU.NumberOfCores": "cpu_cores",
            "RAM.TotalSizeInMB": ("memory_gb", "MB"),
            "Applications": "application",
        },
        Category.INFRASTRUCTURE: {
            "HostName": "hostname",
            "IPAddress": "ip_address",
            "CPU.UsagePct.Avg": "cpu_avg_pct",
            "CPU.UsagePct.Max": "cpu_peak_pct",
            "RAM.TotalSizeInMB": ("memory_total", "MB"),
        },
    },
)

# --- Azure Migrate CSV import template ----------------------------------------------
# The header of the template downloaded from "Discover > Import using CSV"; the
# mandatory columns carry a leading asterisk, which header_key ignores. Disk columns
# repeat per disk (up to 8 in the template, 20 in newer projects) and application
# columns per application; two disks are listed here, the rest match vendor_patterns.
AZURE_MIGRATE_HEADER: tuple[str, ...] = (
    "*Server name", "IP addresses", "*Cores", "*Memory (In MB)", "*OS name", "OS version", "OS architecture",
    "Server type", "Hypervisor", "CPU utilization percentage", "Memory utilization percentage",
    "Network adapters", "Network In throughput", "Network Out throughput", "Boot type", "Number of disks",
    "Storage in use (In GB)",
    "Disk 1 size (In GB)", "Disk 1 read throughput (MB per second)", "Disk 1 write throughput (MB per second)",
    "Disk 1 read ops (operations per second)", "Disk 1 write ops (operations per second)",
    "Disk 2 size (In GB)", "Disk 2 read throughput (MB per second)", "Disk 2 write throughput (MB per second)",
    "Disk 2 read ops (operations per second)", "Disk 2 write ops (operations per second)",
    "Virtual Machine ID", "Virtual Machine Manager ID", "MAC Address",
)
# Spellings used by the documentation's field table rather than the template file.
_AZURE_DOC_SPELLINGS = (
    "IP address", "Memory", "Firmware type", "Total disks read ops", "Total disks write ops",
    "Total disks read throughput", "Total disks write throughput", "BIOS ID", "Custom server ID",
)

AZURE_MIGRATE = VendorTemplate(
    name="azure_migrate",
    title="Azure Migrate CSV import template",
    header=AZURE_MIGRATE_HEADER,
    variants=_AZURE_DOC_SPELLINGS,
    anchors=(
        "Memory (In MB)", "IP addresses", "OS architecture", "CPU utilization percentage",
        "Memory utilization percentage", "Network In throughput", "Network Out throughput", "Boot type",
        "Number of disks", "Storage in use (In GB)", "Disk 1 size (In GB)", "Virtual Machine Manager ID",
        "Total disks read throughput",
    ),
    min_matches=3,
    vendor_patterns=(r"disk_\d+_", r"application_\d+_"),
    column_maps={
        Category.CMDB_EXPORT: {
            "Server name": "hostname",
            # May hold several comma-separated addresses; validation judges the value.
            "IP addresses": "ip_address",
            "IP address": "ip_address",
            "Cores": "cpu_cores",
            "Memory (In MB)": ("memory_gb", "MB"),
            "Memory": ("memory_gb", "MB"),  # the documentation's spelling; still MB
            "OS name": "operating_system",
            "OS version": "os_version",
            "MAC Address": "mac_address",
        },
        Category.INFRASTRUCTURE: {
            "Server name": "hostname",
            "IP addresses": "ip_address",
            "IP address": "ip_address",
            "CPU utilization percentage": "cpu_avg_pct",
            "Memory utilization percentage": "memory_avg_pct",
            "Memory (In MB)": ("memory_total", "MB"),
            "Memory": ("memory_total", "MB"),
        },
    },
)

# --- RVTools vInfo -------------------------------------------------------------------
# The vInfo sheet of RVTools 4.x, in its order. Sizes are MiB since RVTools 3.11; older
# exports say "MB" (listed after the current header so both are recognised).
RVTOOLS_VINFO_HEADER: tuple[str, ...] = (
    "VM", "Powerstate", "Template", "SRM Placeholder", "Config status", "DNS Name", "Connection state",
    "Guest state", "Heartbeat", "Consolidation Needed", "PowerOn", "Suspended To Memory", "Suspend time",
    "Suspend Interval", "Creation date", "Change Version", "CPUs", "Overall Cpu Readiness", "Memory",
    "Active Memory", "NICs", "Disks", "Total disk capacity MiB", "Fixed Passthru HotPlug",
    "min Required EVC Mode Key", "Latency Sensitivity", "Op Notification Timeout", "EnableUUID", "CBT",
    "Primary IP Address", "Network #1", "Network #2", "Network #3", "Network #4", "Network #5", "Network #6",
    "Network #7", "Network #8", "Num Monitors", "Video Ram KiB", "Resource pool", "Folder ID", "Folder",
    "vApp", "DAS protection", "FT State", "FT Role", "FT Latency", "FT Bandwidth", "FT Sec. Latency",
    "Vm Failover In Progress", "Provisioned MiB", "In Use MiB", "Unshared MiB", "HA Restart Priority",
    "HA Isolation Response", "HA VM Monitoring", "Cluster rule(s)", "Cluster rule name(s)", "Boot Required",
    "Boot delay", "Boot retry delay", "Boot retry enabled", "Boot BIOS setup", "Reboot PowerOff",
    "EFI Secure boot", "Firmware", "HW version", "HW upgrade status", "HW upgrade policy", "HW target", "Path",
    "Log directory", "Snapshot directory", "Suspend directory", "Annotation", "Datacenter", "Cluster", "Host",
    "OS according to the configuration file", "OS according to the VMware Tools", "Customization Info",
    "Guest Detailed Data", "VM ID", "SMBIOS UUID", "VM UUID", "VI SDK Server type", "VI SDK API Version",
    "VI SDK Server", "VI SDK UUID",
)
_RVTOOLS_OLDER_COLUMNS = ("Total disk capacity MB", "Provisioned MB", "In Use MB", "Unshared MB")

RVTOOLS_VINFO = VendorTemplate(
    name="rvtools_vinfo",
    title="RVTools export, vInfo sheet",
    header=RVTOOLS_VINFO_HEADER,
    variants=_RVTOOLS_OLDER_COLUMNS,
    anchors=(
        "Powerstate", "SRM Placeholder", "Consolidation Needed", "Suspended To Memory", "Total disk capacity MiB",
        "Provisioned MiB", "In Use MiB", "Unshared MiB", "OS according to the configuration file",
        "OS according to the VMware Tools", "VI SDK Server", "VI SDK UUID", "Latency Sensitivity",
    ) + _RVTOOLS_OLDER_COLUMNS,
    min_matches=3,
    column_maps={
        # "Host" is the ESXi host the VM runs on, never the VM's own name: it is a
        # vendor column without a mapping, so the generic "host" synonym can't take it.
        Category.CMDB_EXPORT: {
            "VM": "hostname",
            "DNS Name": "fqdn",
            "Primary IP Address": "ip_address",
            "CPUs": "cpu_cores",
            "Memory": ("memory_gb", "MB"),
            "Provisioned MiB": ("storage_gb", "MiB"),
            "Provisioned MB": ("storage_gb", "MB"),
            # What the guest reports beats what the VM was configured as.
            "OS according to the VMware Tools": "operating_system",
            "OS according to the configuration file": "operating_system",
            # The instance UUID is stable across vCenters; the moref ("vm-123") is not.
            "VM UUID": "external_id",
            "VM ID": "external_id",
        },
        Category.INFRASTRUCTURE: {
            "VM": "hostname",
            "Primary IP Address": "ip_address",
            "Memory": ("memory_total", "MB"),
            "Provisioned MiB": ("disk_total", "MiB"),
            "Provisioned MB": ("disk_total", "MB"),
        },
    },
)

# --- ServiceNow CMDB export ---------------------------------------------------------
# A cmdb_ci_server list exported as CSV (field names as headers). Instances add their
# own fields with a ``u_`` prefix; the ``sys_*`` fields are bookkeeping.
SERVICENOW_CMDB_HEADER: tuple[str, ...] = (
    "sys_id", "name", "sys_class_name", "host_name", "fqdn", "ip_address", "mac_address", "serial_number",
    "asset_tag", "manufacturer", "model_id", "os", "os_version", "os_service_pack", "cpu_count",
    "cpu_core_count", "cpu_type", "cpu_speed", "ram", "disk_space", "virtual", "used_for",
    "busines_criticality", "install_status", "operational_status", "location", "owned_by", "managed_by",
    "support_group", "discovery_source", "sys_created_on", "sys_updated_on",
)

SERVICENOW_CMDB = VendorTemplate(
    name="servicenow_cmdb",
    title="ServiceNow CMDB export",
    header=SERVICENOW_CMDB_HEADER,
    variants=("business_criticality", "cpu_core_thread", "os_domain", "short_description"),
    anchors=("sys_id", "sys_class_name"),
    min_matches=1,
    column_maps={
        Category.CMDB_EXPORT: {
            "sys_id": "external_id",
            "sys_class_name": "asset_type",
            "name": "name",
            "host_name": "hostname",
            "fqdn": "fqdn",
            "ip_address": "ip_address",
            "mac_address": "mac_address",
            "serial_number": "serial_number",
            "os": "operating_system",
            "os_version": "os_version",
            # On virtual servers Discovery fills cpu_count with the vCPUs; cpu_core_count
            # is cores per CPU and only the answer when cpu_count is absent.
            "cpu_count": "cpu_cores",
            "cpu_core_count": "cpu_cores",
            "ram": ("memory_gb", "MB"),
            "disk_space": ("storage_gb", "GB"),
            "used_for": "environment",
            # ServiceNow's own field name is misspelt; some instances add the right one.
            "busines_criticality": "criticality",
            "business_criticality": "criticality",
            "location": "location",
            "owned_by": "owner",
            "managed_by": "owner",
            "discovery_source": "source",
        },
        Category.INFRASTRUCTURE: {
            "host_name": "hostname",
            "ip_address": "ip_address",
            "ram": ("memory_total", "MB"),
            "disk_space": ("disk_total", "GB"),
        },
    },
    strip_prefixes=("u_",),
    vendor_patterns=(r"sys_",),
)

# Declaration order breaks ties in detection.
TEMPLATES: tuple[VendorTemplate, ...] = (SERVICENOW_CMDB, AWS_MIGRATION_HUB, AZURE_MIGRATE, RVTOOLS_VINFO)
TEMPLATE_NAMES: tuple[str, ...] = tuple(t.name for t in TEMPLATES)


def detect_template(header: Sequence[str]) -> VendorTemplate | None:
    """The vendor template ``header`` comes from, or None for a file of no known shape.

    A template matches when at least one of its anchor columns and ``min_matches`` of
    its columns are present, in any order. Several matching templates are ranked by
    anchors present, then columns present, then declaration order.
    """
    best: tuple[tuple[int, int], int, VendorTemplate] | None = None
    for order, template in enumerate(TEMPLATES):
        keys = frozenset(template.key(column) for column in header)
        if not template.matches(keys):
            continue
        candidate = (template.score(keys), -order, template)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


def template_named(name: str) -> VendorTemplate:
    for template in TEMPLATES:
        if template.name == name:
            return template
    raise KeyError(name)
