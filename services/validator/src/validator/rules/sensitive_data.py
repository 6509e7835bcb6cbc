"""Validation agents for sensitive-data inventories: where regulated data lives and under which rules.

The cells of these files can themselves be sensitive, so no finding carries a raw
value: ``value`` is always ``mask()``ed and messages never quote the cell.
``classification`` and ``regulation`` may hold several values separated by , ; / | and
are normalised to the canonical spellings, deduplicated, in vocabulary order, joined
with ",". An unrecognised regulation is only a warning, and then the cell is kept as
given (no known part is dropped or rewritten).
"""

from __future__ import annotations

from .base import finding, normalised_row, rule_table
from .formats import parse_count
from .model import Finding, Row, Rule, mask
from .vocabularies import CLASSIFICATIONS, REGULATIONS

CANONICAL: tuple[str, ...] = ("hostname", "data_store", "classification", "regulation", "data_owner",
                              "record_count")
AGENTS: tuple[str, ...] = ("schema", "classification", "compliance")

REQUIRED_VALUE = Rule(
    "required_value", "schema", "error",
    "hostname or classification is blank. hostname is lower-cased but not format-checked here (data "
    "stores are often named by cluster or service).")
INVALID_NUMBER = Rule(
    "invalid_number", "schema", "error",
    "record_count is not a non-negative whole number (comma thousands separators like 1,234 accepted).")
UNKNOWN_CLASSIFICATION = Rule(
    "unknown_classification", "classification", "error",
    f"classification has a value that is not one of {CLASSIFICATIONS.accepted()} nor an alias (personal "
    "data, cardholder data, protected health information, restricted → confidential, …).")
UNKNOWN_REGULATION = Rule(
    "unknown_regulation", "compliance", "warning",
    f"regulation has a value that is not one of {REGULATIONS.accepted()} nor an alias (PCI DSS, "
    "Sarbanes-Oxley, SOX 404, CPRA → CCPA, …); the cell is kept as given.")

RULES: tuple[Rule, ...] = rule_table((REQUIRED_VALUE, INVALID_NUMBER, UNKNOWN_CLASSIFICATION, UNKNOWN_REGULATION))

_SEPARATORS = "several may be given, separated by , ; / or |"


class SensitiveDataChecker:
    """The sensitive-data agents for one import (stateless across rows)."""

    agents = AGENTS
    rules = RULES
    normalises_per_row = True
    independent_rows = True

    def check(self, row_number: int, row: Row) -> tuple[dict[str, str | None], list[Finding]]:
        out = normalised_row(row, CANONICAL)
        findings: list[Finding] = []

        # schema
        hostname = out["hostname"]
        if hostname is None:
            findings.append(finding(REQUIRED_VALUE, row_number, "hostname",
                                    "hostname is required: name the host that holds the data"))
        else:
            out["hostname"] = hostname.lower()
        classification = out["classification"]
        if classification is None:
            findings.append(finding(REQUIRED_VALUE, row_number, "classification",
                                    f"classification is required: one of {CLASSIFICATIONS.accepted()}"))
        value = out["record_count"]
        if value is not None:
            count = parse_count(value)
            if count is None:
                findings.append(finding(INVALID_NUMBER, row_number, "record_count",
                                        "record_count is not a non-negative whole number (digits, optionally "
                                        "with comma thousands separators such as 1,234)", mask(value)))
            else:
                out["record_count"] = str(count)

        # classification
        if classification is not None:
            values, unknown = CLASSIFICATIONS.lookup_many(classification)
            if unknown:
                findings.append(finding(UNKNOWN_CLASSIFICATION, row_number, "classification",
                                        f"classification has {_count(unknown)} not recognised: expected "
                                        f"{CLASSIFICATIONS.accepted()} ({_SEPARATORS})", mask(classification)))
            elif values:
                out["classification"] = ",".join(values)
            else:
                # Only separators: nothing to classify by.
                findings.append(finding(REQUIRED_VALUE, row_number, "classification",
                                        f"classification is required: one of {CLASSIFICATIONS.accepted()}",
                                        mask(classification)))

        # compliance
        regulation = out["regulation"]
        if regulation is not None:
            values, unknown = REGULATIONS.lookup_many(regulation)
            if unknown:
                findings.append(finding(UNKNOWN_REGULATION, row_number, "regulation",
                                        f"regulation has {_count(unknown)} not recognised: expected "
                                        f"{REGULATIONS.accepted()} ({_SEPARATORS}); kept as given",
                                        mask(regulation)))
            elif values:
                out["regulation"] = ",".join(values)
            else:
                out["regulation"] = None
        return out, findings

    def finish(self) -> list[Finding]:
        return []


def _count(unknown: int) -> str:
    return "1 value" if unknown == 1 else f"{unknown} values"
