"""What the category checkers share: cell cleaning, finding construction, the row skeleton."""

from __future__ import annotations

from collections.abc import Iterable

from .model import Finding, Row, Rule


def clean(value: object) -> str | None:
    """A cell stripped of surrounding whitespace; blank (or absent) is None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text.strip() or None


def normalised_row(row: Row, canonical: tuple[str, ...]) -> dict[str, str | None]:
    """Every canonical column (absent ones as None) plus the row's extra columns, all cleaned.

    Extra attributes pass through unchanged apart from the common cleaning (strip,
    blank → None), so the enricher stores them as the file had them.
    """
    out: dict[str, str | None] = dict.fromkeys(canonical)
    for key, value in row.items():
        # Cells are nearly always str: skip clean()'s call and isinstance for them.
        if value.__class__ is str:
            out[key] = value.strip() or None
        else:
            out[key] = clean(value)
    return out


def finding(rule: Rule, row_number: int | None, column: str | None, message: str,
            value: str | None = None) -> Finding:
    return Finding(row_number, column, rule.rule_id, rule.severity, message, value)


def rule_table(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """The rules as a tuple, refusing an id registered twice."""
    out = tuple(rules)
    ids = [r.rule_id for r in out]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"rule ids registered twice: {sorted(duplicates)}")
    return out
