"""Row rules: pure functions from a mapped row to its findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts import Category

from .field_mapping import REQUIRED


@dataclass(frozen=True)
class Finding:
    row_number: int
    column: str | None
    rule_id: str
    severity: Literal["error", "warning"]
    message: str
    value: str | None = None


def check_required(category: Category, row_number: int, row: dict[str, str | None]) -> list[Finding]:
    return [
        Finding(row_number, column, "required_value", "error", f"{column} is required and is empty")
        for column in REQUIRED[category]
        if not (row.get(column) or "").strip()
    ]


ROW_RULES = {category: (check_required,) for category in Category}
RULE_IDS = ("required_column", "required_value")


def findings_for(category: Category, row_number: int, row: dict[str, str | None]) -> list[Finding]:
    out: list[Finding] = []
    for rule in ROW_RULES[category]:
        out.extend(rule(category, row_number, row))
    return out
