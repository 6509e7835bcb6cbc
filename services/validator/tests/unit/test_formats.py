from datetime import UTC, datetime
from decimal import Decimal

import pytest

from validator.rules import formats
from validator.rules.vocabularies import (
    ASSET_TYPES,
    CLASSIFICATIONS,
    CRITICALITIES,
    ENVIRONMENTS,
    PROTOCOLS,
    REGULATIONS,
    Vocabulary,
    fold,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", "10.0.0.1"),
    ("255.255.255.255", "255.255.255.255"),
    ("0.0.0.0", "0.0.0.0"),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
    ("2001:0db8::0001", "2001:db8::1"),
    ("fe80::1%eth0", "fe80::1%eth0"),
])
def test_ip_addresses_normalise_to_the_compressed_form(text: str, expected: str) -> None:
    assert formats.parse_ip(text) == expected


@pytest.mark.parametrize("text", [
    "010.0.0.1", "10.0.0.256", "10.0.0", "10.0.0.1.5", "10.0.0.1/24", "host", "2001:db8::g", "10.0.0.1, 10.0.0.2",
    "1.2.3.4 ", ":::",
])
def test_invalid_ip_addresses_are_rejected(text: str) -> None:
    assert formats.parse_ip(text) is None


@pytest.mark.parametrize("text", [
    "aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff",
    "AABB.CCDD.EEFF", "aabbccddeeff",
])
def test_mac_addresses_in_every_accepted_form_normalise_to_lower_colons(text: str) -> None:
    assert formats.parse_mac(text) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize("text", [
    "aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "aa:bb:cc:dd:ee:fg", "aabb.ccdd.eef", "aabbccddeeff00", "aa bb cc dd ee ff",
])
def test_invalid_mac_addresses_are_rejected(text: str) -> None:
    assert formats.parse_mac(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("App01.Corp.Example.COM", "app01.corp.example.com"),
    ("app01.example.com.", "app01.example.com"),
    ("1st-host.example.com", "1st-host.example.com"),
    ("a." + "b" * 63 + ".com", "a." + "b" * 63 + ".com"),
])
def test_fqdns_are_lower_cased_without_the_root_dot(text: str, expected: str) -> None:
    assert formats.parse_fqdn(text) == expected


@pytest.mark.parametrize("text", [
    "app01", "app01..example.com", "-app.example.com", "app-.example.com", "app_01.example.com",
    "a." + "b" * 64 + ".com", ".".join(["abcdefghi"] * 26) + ".com", "10.0.0.1", "app 01.example.com",
    "host.example.123",
])
def test_invalid_fqdns_are_rejected(text: str) -> None:
    assert formats.parse_fqdn(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("SRV01", ("srv01", False)),
    ("srv-01.corp.local", ("srv-01.corp.local", False)),
    ("srv01.", ("srv01", False)),
    ("1234", ("1234", False)),
    ("SRV_DB_01", ("srv_db_01", True)),
    ("srv_db.corp.local", ("srv_db.corp.local", True)),
    ("srv 01", (None, False)),
    ("srv01!", (None, False)),
    ("10.0.0.1", (None, False)),
    ("-srv", (None, False)),
    ("s" * 64, (None, False)),
])
def test_hostnames_accept_labels_and_fqdns_and_flag_underscores(text: str,
                                                                expected: tuple[str | None, bool]) -> None:
    assert formats.parse_hostname(text) == expected


@pytest.mark.parametrize(("text", "gb"), [
    ("16", "16"),
    ("16 GB", "16"),
    ("16GiB", "16"),
    ("16g", "16"),
    ("16384 MB", "16"),
    ("512M", "0.5"),
    ("1 TB", "1024"),
    ("1.5 TiB", "1536"),
    ("1 PB", "1048576"),
    ("1048576 KB", "1"),
    ("1073741824 B", "1"),
    ("2 gigabytes", "2"),
    ("0.50", "0.5"),
    ("1000 MB", "0.9765625"),
    ("-4 GB", "-4"),
])
def test_sizes_convert_to_gb_with_binary_factors(text: str, gb: str) -> None:
    value = formats.parse_quantity(text, formats.SIZE_UNITS, Decimal(1))
    assert value is not None
    assert formats.format_decimal(value) == gb


@pytest.mark.parametrize("text", ["16 XB", "1,5 TB", "16,384 MB", "1e3", "NaN", "inf", "GB", "16 GB RAM", "½ GB"])
def test_sizes_that_are_not_numbers_with_units_are_rejected(text: str) -> None:
    assert formats.parse_quantity(text, formats.SIZE_UNITS, Decimal(1)) is None


def test_a_bare_size_takes_the_configured_unit() -> None:
    mb = formats.unit_factor(formats.SIZE_UNITS, "MB")
    assert formats.parse_quantity("16384", formats.SIZE_UNITS, mb) == Decimal(16)
    assert formats.parse_quantity("16 GB", formats.SIZE_UNITS, mb) == Decimal(16)
    with pytest.raises(ValueError, match="unknown unit 'parsecs'"):
        formats.unit_factor(formats.SIZE_UNITS, "parsecs")


@pytest.mark.parametrize(("text", "mbps"), [
    ("100", "100"), ("100 Mbps", "100"), ("1 Gbps", "1000"), ("1.5Gbit/s", "1500"), ("512 Kbps", "0.512"),
    ("2000000 bps", "2"), ("0.01 Tbps", "10000"),
])
def test_network_rates_convert_to_mbps_with_decimal_factors(text: str, mbps: str) -> None:
    value = formats.parse_quantity(text, formats.RATE_UNITS, Decimal(1))
    assert value is not None
    assert formats.format_decimal(value) == mbps


@pytest.mark.parametrize("text", ["100 MB/s", "100 GB", "fast"])
def test_byte_rates_and_sizes_are_not_network_rates(text: str) -> None:
    assert formats.parse_quantity(text, formats.RATE_UNITS, Decimal(1)) is None


@pytest.mark.parametrize(("text", "value"), [
    ("45", Decimal(45)), ("45%", Decimal(45)), ("45.5 %", Decimal("45.5")), ("0.45", Decimal("0.45")),
    ("-3", Decimal(-3)), ("150", Decimal(150)),
])
def test_percentages_are_percent_points(text: str, value: Decimal) -> None:
    assert formats.parse_percent(text) == value


@pytest.mark.parametrize("text", ["45 percent", "%45", "4 5", "high"])
def test_percentages_that_are_not_numbers_are_rejected(text: str) -> None:
    assert formats.parse_percent(text) is None


@pytest.mark.parametrize(("text", "value"), [
    ("0.85", "0.85"), ("85", "0.85"), ("85%", "0.85"), ("1", "1"), ("1%", "0.01"), ("0", "0"), ("100", "1"),
    ("12.5 %", "0.125"),
])
def test_confidence_accepts_fractions_and_percentages(text: str, value: str) -> None:
    parsed = formats.parse_fraction(text)
    assert parsed is not None
    assert formats.format_decimal(parsed) == value


@pytest.mark.parametrize("text", ["101", "-0.5", "150%", "high", ""])
def test_confidence_outside_0_to_100_percent_is_rejected(text: str) -> None:
    assert formats.parse_fraction(text) is None


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("1234", 1234), ("1,234", 1234), ("12,345,678", 12345678)])
def test_counts_accept_thousands_separators(text: str, value: int) -> None:
    assert formats.parse_count(text) == value


@pytest.mark.parametrize("text", ["-1", "1.5", "12,34", "1,2345", "1 234", "lots", ",123"])
def test_counts_reject_anything_but_whole_non_negative_numbers(text: str) -> None:
    assert formats.parse_count(text) is None


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("16.000"), "16"), (Decimal("1E+1"), "10"), (Decimal("-0"), "0"), (Decimal("0.5000"), "0.5"),
    (Decimal("1E-7"), "0.0000001"), (Decimal("23.5"), "23.5"), (Decimal("-3.50"), "-3.5"),
])
def test_decimals_print_plainly_without_trailing_zeros(value: Decimal, text: str) -> None:
    assert formats.format_decimal(value) == text


@pytest.mark.parametrize(("text", "iso"), [
    ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00+00:00"),
    ("2026-11-20T10:00:00+02:00", "2026-11-20T08:00:00+00:00"),
    ("2026-11-20T10:00:00", "2026-11-20T10:00:00+00:00"),
    ("2026-11-20 10:00", "2026-11-20T10:00:00+00:00"),
    ("2026-11-20 10:00:30", "2026-11-20T10:00:30+00:00"),
    ("2026-11-20T10:00:00.250Z", "2026-11-20T10:00:00.250000+00:00"),
    ("11/20/2026 10:00", "2026-11-20T10:00:00+00:00"),
    ("1/2/2026 9:05:07", "2026-01-02T09:05:07+00:00"),
    ("11/20/2026", "2026-11-20T00:00:00+00:00"),
    ("1795168800", "2026-11-20T10:00:00+00:00"),
    ("1795168800000", "2026-11-20T10:00:00+00:00"),
    ("1795168800.5", "2026-11-20T10:00:00.500000+00:00"),
])
def test_timestamps_normalise_to_utc(text: str, iso: str) -> None:
    parsed = formats.parse_timestamp(text)
    assert parsed is not None
    assert parsed.isoformat() == iso


@pytest.mark.parametrize("text", ["yesterday", "20/11/2026 10:00", "2026-13-01", "2026-11-20 25:00",
                                  "99999999999999999999999", "11/20/26"])
def test_unparseable_timestamps_are_rejected(text: str) -> None:
    assert formats.parse_timestamp(text) is None


def test_an_all_digit_timestamp_is_an_epoch_not_a_date() -> None:
    assert formats.parse_timestamp("20261120") == datetime(1970, 8, 23, 12, 5, 20, tzinfo=UTC)


@pytest.mark.parametrize(("vocabulary", "text", "canonical"), [
    (ASSET_TYPES, "VM", "virtual_machine"),
    (ASSET_TYPES, "Virtual Machine", "virtual_machine"),
    (ASSET_TYPES, "cmdb_ci_vmware_instance", "virtual_machine"),
    (ASSET_TYPES, "Physical Server", "server"),
    (ASSET_TYPES, "Windows Server", "server"),
    (ASSET_TYPES, "CMDB_CI_LINUX_SERVER", "server"),
    (ASSET_TYPES, "cmdb_ci_db_mssql_instance", "database"),
    (ASSET_TYPES, "cmdb_ci_appl", "application"),
    (ASSET_TYPES, "Switch", "network_device"),
    (ASSET_TYPES, "firewall", "network_device"),
    (ASSET_TYPES, "F5", "load_balancer"),
    (ASSET_TYPES, "SAN", "storage"),
    (ASSET_TYPES, "load-balancer", "load_balancer"),
    (ENVIRONMENTS, "PRD", "production"),
    (ENVIRONMENTS, "Live", "production"),
    (ENVIRONMENTS, "Pre-Prod", "staging"),
    (ENVIRONMENTS, "UAT", "staging"),
    (ENVIRONMENTS, "QA", "test"),
    (ENVIRONMENTS, "Sandbox", "development"),
    (ENVIRONMENTS, "DR", "disaster_recovery"),
    (ENVIRONMENTS, "Disaster Recovery", "disaster_recovery"),
    (CRITICALITIES, "Tier 0", "critical"),
    (CRITICALITIES, "tier-1", "high"),
    (CRITICALITIES, "P3", "medium"),
    (CRITICALITIES, "P4", "low"),
    (CRITICALITIES, "1 - most critical", "critical"),
    (CRITICALITIES, "2 - somewhat critical", "high"),
    (CRITICALITIES, "3 - Moderate", "medium"),
    (CRITICALITIES, "Mission Critical", "critical"),
    (CRITICALITIES, "Business Critical", "high"),
    (CRITICALITIES, "HIGH", "high"),
    (PROTOCOLS, "tcp", "TCP"),
    (PROTOCOLS, "TCP/IP", "TCP"),
    (PROTOCOLS, "http/1.1", "HTTP"),
    (PROTOCOLS, "SSL", "HTTPS"),
    (PROTOCOLS, "TLS", "HTTPS"),
    (PROTOCOLS, "https/tls", "HTTPS"),
    (PROTOCOLS, "gRPC", "GRPC"),
    (PROTOCOLS, "h2", "GRPC"),
    (PROTOCOLS, "ping", "ICMP"),
    (CLASSIFICATIONS, "Personal Data", "PII"),
    (CLASSIFICATIONS, "Cardholder Data", "PCI"),
    (CLASSIFICATIONS, "Protected Health Information", "PHI"),
    (CLASSIFICATIONS, "Restricted", "confidential"),
    (CLASSIFICATIONS, "INTERNAL USE ONLY", "internal"),
    (REGULATIONS, "PCI DSS", "PCI-DSS"),
    (REGULATIONS, "pci", "PCI-DSS"),
    (REGULATIONS, "Sarbanes-Oxley", "SOX"),
    (REGULATIONS, "SOX 404", "SOX"),
    (REGULATIONS, "Lei Geral de Proteção de Dados", "LGPD"),
])
def test_vocabularies_match_aliases_case_space_and_punctuation_insensitively(
        vocabulary: Vocabulary, text: str, canonical: str) -> None:
    assert vocabulary.lookup(text) == canonical
    assert vocabulary.lookup(text) == canonical  # second time from the memo


@pytest.mark.parametrize(("vocabulary", "text"), [
    (ASSET_TYPES, "toaster"), (ENVIRONMENTS, "moon"), (CRITICALITIES, "meh"), (PROTOCOLS, "carrier pigeon"),
    (CLASSIFICATIONS, "top secret!!"), (REGULATIONS, "HAMMURABI"),
])
def test_unknown_values_are_not_in_the_vocabulary(vocabulary: Vocabulary, text: str) -> None:
    assert vocabulary.lookup(text) is None


def test_multi_valued_cells_normalise_deduplicate_and_follow_vocabulary_order() -> None:
    assert CLASSIFICATIONS.lookup_many("public; PII | personal data / PCI") == (["PII", "PCI", "public"], 0)
    assert REGULATIONS.lookup_many("PCI/DSS") == (["PCI-DSS"], 0)
    assert REGULATIONS.lookup_many("SOX, HIPAA, nonsense, more nonsense") == (["HIPAA", "SOX"], 2)


def test_fold_ignores_case_punctuation_and_accents() -> None:
    assert fold("  Pré-Prod_ENV ") == "preprodenv"


def test_a_vocabulary_refuses_an_alias_claimed_twice() -> None:
    with pytest.raises(ValueError, match="maps to both"):
        Vocabulary("x", ("a", "b"), {"a": ("same",), "b": ("SAME",)})
