"""Parsers for the value formats that inventory files carry: addresses, names, numbers, times.

Every parser takes one stripped, non-empty cell and returns its canonical form, or None
when the cell is not in an accepted form; the checkers turn None into a finding. They
never raise on bad input and read no clock.

Unit conventions (the validator's contract with the enricher):

* Sizes (``memory_gb``, ``storage_gb``, ``memory_total``, ``disk_total``) normalise to
  GB and use **binary** factors whatever the suffix says: 1 TB = 1 TiB = 1024 GB,
  1 GB = 1024 MB = 1024² KB. Inventory and monitoring tools (VMware, Windows, Linux
  ``free``, most CMDBs) print binary quantities with decimal suffixes, so
  "16384 MB" is 16 GB. Accepted suffixes, case-insensitive, with or without a space:
  B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB, P/PB/PiB and the spelled-out words.
* Network rates (``network_*_mbps``) normalise to Mbps and use **decimal** factors:
  1 Gbps = 1000 Mbps, 1 Mbps = 1000 Kbps, because link and throughput rates are SI.
  Accepted: bps, Kbps, Mbps, Gbps, Tbps and the ``…bit/s`` spellings. Byte rates
  (``MB/s``) are rejected: lower-cased they cannot be told from bit rates.
* A bare number takes the unit configured for its column (``units``), else GB / Mbps.
* Decimal commas and thousands separators are rejected in measurements ("1,5 TB"
  is ambiguous); only counts (``parse_count``) accept "1,234".
* Percentages are percent points: "45", "45%", "45.5 %". A fraction such as 0.45
  means 0.45 %, not 45 %: idle servers really do average below 1 %, so a fraction
  cannot be told from a small percentage.
* Timestamps normalise to ISO-8601 in UTC; a time without a zone is taken as UTC.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from decimal import Context, Decimal, InvalidOperation

# Precise enough that dividing by 1024³ or multiplying by 1024² never rounds a value
# that a spreadsheet could hold.
_EXACT = Context(prec=60)

# ---------------------------------------------------------------------------- addresses

_IPV4_CANONICAL = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", re.ASCII
)


def parse_ip(text: str) -> str | None:
    """IPv4 or IPv6 address in its compressed canonical form (IPv6 lower-case)."""
    # A dotted quad without leading zeros is already canonical: skip ipaddress's object.
    if _IPV4_CANONICAL.fullmatch(text):
        return text
    try:
        # ipaddress rejects leading-zero octets ("010.0.0.1"): octal or decimal is ambiguous.
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


_MAC_CANONICAL = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}", re.ASCII)
_MAC = re.compile(
    r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}|[0-9a-f]{12}",
    re.ASCII,
)


def parse_mac(text: str) -> str | None:
    """MAC address as ``aa:bb:cc:dd:ee:ff``; accepts colon, hyphen, Cisco-dot and bare hex."""
    mac = text.lower()
    if _MAC_CANONICAL.fullmatch(mac):
        return mac
    if not _MAC.fullmatch(mac):
        return None
    h = mac.replace(":", "").replace("-", "").replace(".", "")
    return f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"


# RFC 1123 labels; the last label may not be all digits (RFC 3696 §2), which is also
# what keeps an IPv4 address from passing as a name.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FQDN = re.compile(rf"(?=.{{1,253}}$)(?:{_LABEL}\.)+(?=[a-z0-9-]*[a-z])(?:{_LABEL})", re.ASCII)
_HOST_LABEL = re.compile(_LABEL, re.ASCII)
# Same shapes with underscores allowed, to tell "valid but for underscores" from junk.
_ULABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_UHOST = re.compile(rf"(?=.{{1,253}}$)(?:(?:{_ULABEL}\.)+(?=[a-z0-9_-]*[a-z_]))?{_ULABEL}", re.ASCII)


def parse_fqdn(text: str) -> str | None:
    """Fully qualified domain name: lower-case, trailing root dot removed, at least one dot."""
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    return name if _FQDN.fullmatch(name) else None


def parse_hostname(text: str) -> tuple[str | None, bool]:
    """A host label or an FQDN, lower-cased and without a trailing dot.

    Returns ``(name, has_underscore)``; name is None when the text is no host name at
    all. Underscores are not valid in DNS host names, but Windows NetBIOS names and
    many CMDBs use them, so they are reported separately (as a warning) and kept.
    """
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    if _HOST_LABEL.fullmatch(name) or _FQDN.fullmatch(name):
        return name, False
    if "_" in name and _UHOST.fullmatch(name):
        return name, True
    return None, False


# ------------------------------------------------------------------------------ numbers

_NUMBER_UNIT = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([a-z][a-z/]*)?", re.ASCII)
_PERCENT = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(%)?", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_COUNT = re.compile(r"\d+|\d{1,3}(?:,\d{3})+", re.ASCII)

_KIB = Decimal(1024)


def _size_units() -> dict[str, Decimal]:
    factors = {"b": 1 / _KIB ** 3, "k": 1 / _KIB ** 2, "m": 1 / _KIB, "g": Decimal(1), "t": _KIB,
               "p": _KIB ** 2}
    words = {"b": "byte", "k": "kilobyte", "m": "megabyte", "g": "gigabyte", "t": "terabyte", "p": "petabyte"}
    units: dict[str, Decimal] = {}
    for prefix, factor in factors.items():
        spellings = {prefix, words[prefix], words[prefix] + "s"}
        if prefix != "b":
            spellings |= {prefix + "b", prefix + "ib"}
        for spelling in spellings:
            units[spelling] = factor
    units["gig"] = units["gigs"] = Decimal(1)
    return units


#: Size suffix (lower-case) → factor to GB. Binary, see the module docstring.
SIZE_UNITS: dict[str, Decimal] = _size_units()

#: Rate suffix (lower-case) → factor to Mbps. Decimal, see the module docstring.
RATE_UNITS: dict[str, Decimal] = {
    "bps": Decimal("0.000001"), "bit/s": Decimal("0.000001"),
    "kbps": Decimal("0.001"), "kbit/s": Decimal("0.001"),
    "mbps": Decimal(1), "mbit/s": Decimal(1),
    "gbps": Decimal(1000), "gbit/s": Decimal(1000),
    "tbps": Decimal(1000000), "tbit/s": Decimal(1000000),
}

SIZE_UNITS_ACCEPTED = "B, KB, MB, GB, TB, PB or KiB…PiB; binary, 1 TB = 1024 GB"
RATE_UNITS_ACCEPTED = "bps, Kbps, Mbps, Gbps, Tbps; decimal, 1 Gbps = 1000 Mbps"


def unit_factor(table: dict[str, Decimal], unit: str) -> Decimal:
    """The factor for a configured unit name; raises ValueError for an unknown one."""
    try:
        return table[unit.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; accepted: {', '.join(sorted(table))}") from None


def format_decimal(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros: 16, 0.5, 0.0009765625."""
    text = str(value)
    # Most values already print canonically ("23.5", "87"); only exponents, trailing
    # zeros and negative zero need the slow path.
    if "E" not in text:
        if "." in text:
            if text[-1] != "0":
                return text
        elif text != "-0":
            return text
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(_EXACT), "f")


def parse_decimal(text: str) -> Decimal | None:
    """A plain decimal number (no exponent, no separators, no NaN or infinity)."""
    return Decimal(text) if _DECIMAL.fullmatch(text) else None


def parse_quantity(text: str, units: dict[str, Decimal], bare_factor: Decimal) -> Decimal | None:
    """A number with an optional unit suffix, converted with ``units``; bare numbers use ``bare_factor``."""
    if text.isdigit() and text.isascii():
        # The common case: a bare whole number.
        value = Decimal(text)
        return value if bare_factor == 1 else _EXACT.multiply(value, bare_factor)
    m = _NUMBER_UNIT.fullmatch(text.lower())
    if m is None:
        return None
    number, unit = m.groups()
    if unit is None:
        factor = bare_factor
    else:
        found = units.get(unit)
        if found is None:
            return None
        factor = found
    return _EXACT.multiply(Decimal(number), factor)


def parse_percent(text: str) -> Decimal | None:
    """Percent points with an optional ``%`` sign; range is the caller's business."""
    m = _PERCENT.fullmatch(text)
    return Decimal(m.group(1)) if m else None


_HUNDRED = Decimal(100)


def parse_fraction(text: str) -> Decimal | None:
    """A proportion in [0, 1], given as a fraction (0.85) or a percentage (85, 85%).

    With a ``%`` sign the number is always percent ("1%" is 0.01); without one, a
    number up to 1 is a fraction and one above 1 (up to 100) a percentage, so "1"
    means certainty, not 1 %.
    """
    m = _PERCENT.fullmatch(text)
    if m is None:
        return None
    value = Decimal(m.group(1))
    if m.group(2) is not None or value > 1:
        value = value / _HUNDRED
    return value if 0 <= value <= 1 else None


def parse_count(text: str) -> int | None:
    """A non-negative whole number, optionally with comma thousands separators ("1,234")."""
    if not _COUNT.fullmatch(text):
        return None
    return int(text.replace(",", ""))


def parse_whole(text: str) -> Decimal | None:
    """A number whose fractional part, if any, is zero ("4", "4.0": spreadsheets write the latter)."""
    value = parse_decimal(text)
    if value is None or value != value.to_integral_value():
        return None
    return value


# --------------------------------------------------------------------------- timestamps

_EPOCH = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_US_DATETIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.ASCII)
# Epoch values from 1e11 up are milliseconds: 1e11 seconds would be the year 5138.
_MILLIS_FROM = Decimal(10) ** 11


def parse_timestamp(text: str) -> datetime | None:
    """An aware UTC datetime, or None if the text is no timestamp in an accepted form.

    Accepted: ISO-8601 with or without zone (``T`` or space separator, ``Z``),
    "YYYY-MM-DD HH:MM[:SS]", US "MM/DD/YYYY[ HH:MM[:SS]]", and Unix epoch seconds or
    milliseconds (any all-digit value, so "20261120" is an epoch, not a date).
    A value without a zone is UTC.
    """
    try:
        if _EPOCH.fullmatch(text):
            seconds = Decimal(text)
            if seconds >= _MILLIS_FROM:
                seconds /= 1000
            return datetime.fromtimestamp(float(seconds), tz=UTC)
        m = _US_DATETIME.fullmatch(text)
        if m is not None:
            month, day, year, hour, minute, second = m.groups()
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            int(second or 0), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError, InvalidOperation):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
