"""The controlled vocabularies that inventory values are normalised to, with their aliases.

A value matches case-, space- and punctuation-insensitively ("Virtual Machine",
"virtual_machine" and "VIRTUAL-MACHINE" are one key), accents folded. Each vocabulary
lists its canonical values in a fixed order (multi-valued cells are written back in it)
and the aliases real exports use: ServiceNow class names, vendor spellings, tiers.

Deliberate mappings worth knowing:

* criticality counts from the top: Tier 0, P1, "1 - most critical" and "mission
  critical" are *critical*; Tier 1, P2 and "business critical" are *high* (the usual
  four-tier scheme puts business critical one below mission critical); Tier 3+, P4+ low.
* protocol "SSL" and "TLS" are *HTTPS* (discovery tools label TLS-wrapped web traffic
  so); HTTP/2 ("h2", "h2c", "http2") is *GRPC*, the only HTTP/2 protocol in the set.
* classification "restricted", "secret" and "sensitive" are *confidential*, the top
  tier of the vocabulary; "internal use only" is *internal*.
* regulation "CPRA" is *CCPA* (it amends it), "HITECH" is *HIPAA*, "hippa" too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Separators between the values of a multi-valued cell (classification, regulation).
_MULTI_SEPARATOR = re.compile(r"\s*[,;/|\n]\s*")
# Memo of raw cell → canonical value per vocabulary: files repeat a handful of spellings
# over a million rows. Bounded so a file of unique junk cannot grow it without limit.
_CACHE_LIMIT = 4096


def fold(text: str) -> str:
    """The matching key of a value: lower-case ASCII letters and digits only."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALNUM.sub("", text.lower())


class Vocabulary:
    """A closed set of canonical values and the aliases that map onto them."""

    __slots__ = ("name", "canonical", "_index", "_cache")

    def __init__(self, name: str, canonical: tuple[str, ...], aliases: Mapping[str, Iterable[str]]) -> None:
        self.name = name
        self.canonical = canonical
        index: dict[str, str] = {}
        for value in canonical:
            self._add(index, fold(value), value)
        for value, spellings in aliases.items():
            if value not in canonical:
                raise ValueError(f"{name}: alias target {value!r} is not canonical")
            for spelling in spellings:
                self._add(index, fold(spelling), value)
        self._index = index
        self._cache: dict[str, str | None] = {}

    def _add(self, index: dict[str, str], key: str, value: str) -> None:
        if index.get(key, value) != value:
            raise ValueError(f"{self.name}: {key!r} maps to both {index[key]!r} and {value!r}")
        index[key] = value

    def lookup(self, text: str) -> str | None:
        """The canonical value for a stripped, non-empty cell, or None if unknown."""
        try:
            return self._cache[text]
        except KeyError:
            pass
        found = self._index.get(fold(text))
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[text] = found
        return found

    def lookup_many(self, text: str) -> tuple[list[str], int]:
        """Canonical values of a multi-valued cell in vocabulary order, and how many parts were unknown.

        The whole cell is tried as one value first, so a name containing a separator
        ("PCI/DSS") is not split.
        """
        whole = self.lookup(text)
        if whole is not None:
            return [whole], 0
        found: set[str] = set()
        unknown = 0
        for part in _MULTI_SEPARATOR.split(text):
            if not part:
                continue
            value = self.lookup(part)
            if value is None:
                unknown += 1
            else:
                found.add(value)
        return [value for value in self.canonical if value in found], unknown

    def accepted(self) -> str:
        return ", ".join(self.canonical)


ASSET_TYPES = Vocabulary(
    "asset_type",
    ("server", "virtual_machine", "application", "database", "network_device", "storage", "load_balancer",
     "container"),
    {
        "server": (
            "physical server", "physical", "bare metal", "bare metal server", "host", "windows server",
            "linux server", "unix server", "aix server", "solaris server", "hp-ux server", "esx host",
            "esxi host", "hypervisor", "mainframe", "cmdb_ci_server", "cmdb_ci_win_server",
            "cmdb_ci_linux_server", "cmdb_ci_unix_server", "cmdb_ci_aix_server", "cmdb_ci_solaris_server",
            "cmdb_ci_hpux_server", "cmdb_ci_esx_server", "cmdb_ci_mainframe", "cmdb_ci_computer",
        ),
        "virtual_machine": (
            "vm", "virtual server", "vmware vm", "vmware virtual machine", "hyper-v vm", "azure vm",
            "ec2 instance", "virtual instance", "guest", "cmdb_ci_vmware_instance", "cmdb_ci_vm_instance",
            "cmdb_ci_vm", "cmdb_ci_virtual_machine", "cmdb_ci_ec2_instance", "cmdb_ci_azure_vm_instance",
            "cmdb_ci_hyper_v_instance",
        ),
        "application": (
            "app", "business application", "software", "application service", "web application",
            "cmdb_ci_appl", "cmdb_ci_business_app", "cmdb_ci_service_auto",
        ),
        "database": (
            "db", "database instance", "db instance", "database server", "sql server", "mssql", "oracle database",
            "cmdb_ci_database", "cmdb_ci_db_instance", "cmdb_ci_db_mssql_instance", "cmdb_ci_db_ora_instance",
            "cmdb_ci_db_mysql_instance", "cmdb_ci_db_postgresql_instance", "cmdb_ci_db_db2_instance",
        ),
        "network_device": (
            "network", "network gear", "switch", "router", "firewall", "access point", "wireless access point",
            "cmdb_ci_netgear", "cmdb_ci_ip_switch", "cmdb_ci_ip_router", "cmdb_ci_ip_firewall",
        ),
        "storage": (
            "storage array", "storage device", "storage system", "disk array", "san", "nas", "san storage",
            "nas storage", "cmdb_ci_storage_device", "cmdb_ci_san", "cmdb_ci_nas",
        ),
        "load_balancer": (
            "lb", "f5", "big-ip", "f5 big-ip", "netscaler", "citrix adc", "alb", "elb",
            "cmdb_ci_lb", "cmdb_ci_lb_bigip", "cmdb_ci_lb_netscaler",
        ),
        "container": (
            "docker container", "docker", "pod", "kubernetes pod", "k8s pod", "cmdb_ci_docker_container",
            "cmdb_ci_kubernetes_pod",
        ),
    },
)

ENVIRONMENTS = Vocabulary(
    "environment",
    ("production", "staging", "test", "development", "disaster_recovery"),
    {
        "production": ("prod", "prd", "live", "production environment"),
        "staging": ("stage", "stg", "uat", "pre-prod", "preprod", "pre-production", "preproduction"),
        "test": ("testing", "tst", "qa", "sit", "quality assurance"),
        "development": ("dev", "devel", "develop", "sandbox", "sbx"),
        "disaster_recovery": ("dr", "disaster recovery", "bcp", "business continuity"),
    },
)

CRITICALITIES = Vocabulary(
    "criticality",
    ("critical", "high", "medium", "low"),
    {
        "critical": ("crit", "very high", "mission critical", "tier 0", "p1", "priority 1", "1",
                     "1 - most critical", "1 - critical"),
        "high": ("business critical", "tier 1", "p2", "priority 2", "2", "2 - somewhat critical", "2 - high"),
        "medium": ("med", "moderate", "business operational", "tier 2", "p3", "priority 3", "3",
                   "3 - less critical", "3 - moderate", "3 - medium"),
        "low": ("very low", "non-critical", "not critical", "tier 3", "tier 4", "p4", "p5", "priority 4",
                "priority 5", "4", "5", "4 - not critical", "4 - low", "5 - planning"),
    },
)

PROTOCOLS = Vocabulary(
    "protocol",
    ("TCP", "UDP", "HTTP", "HTTPS", "GRPC", "ICMP"),
    {
        "TCP": ("tcp/ip", "tcp4", "tcp6", "tcpv4", "tcpv6"),
        "UDP": ("udp4", "udp6", "udpv4", "udpv6", "udp/ip"),
        "HTTP": ("http/1.0", "http/1.1", "http1", "http 1.1"),
        "HTTPS": ("https/tls", "http/tls", "http over tls", "ssl", "tls", "https/1.1"),
        "GRPC": ("gRPC", "grpcs", "grpc/tls", "h2", "h2c", "http2", "http/2"),
        "ICMP": ("icmpv4", "icmpv6", "icmp6", "ping"),
    },
)

CLASSIFICATIONS = Vocabulary(
    "classification",
    ("PII", "PCI", "PHI", "confidential", "internal", "public"),
    {
        "PII": ("personal data", "personally identifiable information", "personal information", "personal",
                "sensitive personal data", "spi"),
        "PCI": ("cardholder data", "card holder data", "chd", "payment card", "payment card data",
                "pci data", "credit card data"),
        "PHI": ("health", "health data", "health information", "protected health information", "ephi",
                "medical", "medical data"),
        "confidential": ("restricted", "secret", "sensitive", "highly confidential", "strictly confidential"),
        "internal": ("internal use", "internal only", "internal use only"),
        "public": ("public data", "open"),
    },
)

REGULATIONS = Vocabulary(
    "regulation",
    ("GDPR", "HIPAA", "PCI-DSS", "SOX", "CCPA", "GLBA", "FERPA", "LGPD", "PIPEDA"),
    {
        "GDPR": ("eu gdpr", "uk gdpr", "general data protection regulation"),
        "HIPAA": ("hippa", "hitech", "hipaa/hitech"),
        "PCI-DSS": ("pci", "pci dss", "pci-dss v4", "pci dss 4.0", "payment card industry data security standard"),
        "SOX": ("sox 404", "sarbanes-oxley", "sarbanes oxley act", "sarbanes-oxley act", "sarbox"),
        "CCPA": ("cpra", "california consumer privacy act"),
        "GLBA": ("gramm-leach-bliley", "gramm-leach-bliley act"),
        "FERPA": ("family educational rights and privacy act",),
        "LGPD": ("lei geral de proteção de dados",),
        "PIPEDA": ("personal information protection and electronic documents act",),
    },
)
