"""Field checks that more than one category applies (addresses, host names, sizes).

Each takes the cleaned cell, appends its findings to ``out`` and returns the value to
put in the normalised row: the canonical form when valid, the cell as given when not.
The rules are passed in because each category registers its own (under its own agent).
"""

from __future__ import annotations

import re
from decimal import Decimal

from . import formats
from .base import finding
from .model import Finding, Rule
from .vocabularies import CRITICALITIES

_ADDRESS_SEPARATORS = re.compile(r"[,;\s|]+")


def check_ip(text: str, row_number: int, column: str, invalid: Rule, out: list[Finding],
             multiple: Rule | None = None, kept: str = "all are kept in ip_addresses") -> str:
    """The address normalised; with ``multiple`` given, a list of valid addresses (as vendor exports
    write them, "10.0.0.5, 10.0.9.5") comes back normalised and comma-joined, with a warning."""
    ip = formats.parse_ip(text)
    if ip is not None:
        return ip
    parts = [p for p in _ADDRESS_SEPARATORS.split(text) if p]
    if multiple is not None and len(parts) > 1:
        parsed = [formats.parse_ip(p) for p in parts]
        if all(parsed):
            out.append(finding(multiple, row_number, column,
                               f"{column} holds {len(parsed)} addresses; the first, {parsed[0]}, is the asset's "
                               f"address and {kept}", text))
            return ",".join(dict.fromkeys(p for p in parsed if p))
    out.append(finding(invalid, row_number, column,
                       f"{column} {text!r} is not an IP address: expected IPv4 (10.0.0.5, no leading zeros) "
                       "or IPv6 (2001:db8::5)", text))
    return text


def check_hostname(text: str, row_number: int, column: str, invalid: Rule, underscore: Rule,
                   out: list[Finding]) -> str:
    name, has_underscore = formats.parse_hostname(text)
    if name is None:
        out.append(finding(invalid, row_number, column,
                           f"{column} {text!r} is not a host name: expected a host label or FQDN of letters, "
                           "digits and hyphens (labels of at most 63 characters, no spaces; an IP address "
                           "belongs in ip_address)", text))
        return text
    if has_underscore:
        out.append(finding(underscore, row_number, column,
                           f"{column} {text!r} contains an underscore, which DNS host names do not allow; "
                           "kept as given (lower-cased)", text))
    return name


def check_size(text: str, row_number: int, column: str, bare_factor: Decimal, *, minimum: Decimal,
               minimum_inclusive: bool, maximum: Decimal, invalid: Rule, out_of_range: Rule,
               out: list[Finding]) -> str:
    """A size normalised to GB (binary factors, see ``formats``)."""
    if bare_factor == 1 and text.isascii() and text.isdigit() and text[0] != "0":
        # The common case, a whole number of GB, is its own canonical form.
        whole = int(text)
        if (whole >= minimum if minimum_inclusive else whole > minimum) and whole <= maximum:
            return text
    value = formats.parse_quantity(text, formats.SIZE_UNITS, bare_factor)
    if value is None:
        out.append(finding(invalid, row_number, column,
                           f"{column} {text!r} is not a size: expected a number with an optional unit "
                           f"({formats.SIZE_UNITS_ACCEPTED})", text))
        return text
    too_small = value < minimum if minimum_inclusive else value <= minimum
    if too_small or value > maximum:
        lower = "at least" if minimum_inclusive else "more than"
        out.append(finding(out_of_range, row_number, column,
                           f"{column} {text!r} (= {formats.format_decimal(value)} GB) is out of range: must be "
                           f"{lower} {minimum} and at most {maximum} GB", text))
        return text
    return formats.format_decimal(value)


def size_factor(units: dict[str, str], column: str) -> Decimal:
    """The GB factor for bare numbers in ``column`` (GB unless configured otherwise)."""
    return formats.unit_factor(formats.SIZE_UNITS, units.get(column, "GB"))


def check_criticality(text: str, row_number: int, unknown: Rule, out: list[Finding]) -> str:
    """The canonical criticality; an unknown one is kept as given, with a warning."""
    canonical = CRITICALITIES.lookup(text)
    if canonical is not None:
        return canonical
    out.append(finding(unknown, row_number, "criticality",
                       f"criticality {text!r} is not a known criticality: expected one of "
                       f"{CRITICALITIES.accepted()} (or Tier 0–4, P1–P5, '1 - most critical'…); kept as given",
                       text))
    return text
