"""What every validation agent produces: findings about rows, and the rules that raise them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Severity = Literal["error", "warning"]
Row = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one row (or, with ``row_number`` None, with the import as a whole)."""

    row_number: int | None
    column: str | None
    rule_id: str
    severity: Severity
    message: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    agent: str
    severity: Severity
    description: str


class RowChecker(Protocol):
    """The validation agents of one category, for one import.

    ``check`` sees every row once, in row order, and returns the row normalised to
    canonical values (unknown columns passed through) plus its findings. A checker
    may keep cross-row state (duplicate edges, the dependency graph); ``finish``
    returns what can only be known once every row has been seen.
    """

    agents: tuple[str, ...]
    rules: tuple[Rule, ...]
    # True when a row's normalised values depend on that row alone (not on the rows before it).
    normalises_per_row: bool
    # True when a row's findings too depend on that row alone and ``finish`` has none: the rows
    # may then be checked in parts, each by its own checker (validator.first_half).
    independent_rows: bool

    def check(self, row_number: int, row: Row) -> tuple[dict[str, str | None], list[Finding]]: ...

    def finish(self) -> list[Finding]: ...


def mask(value: str | None) -> str | None:
    """A value shown in a finding without revealing it: first character and length only."""
    if value is None:
        return None
    text = str(value)
    if len(text) <= 1:
        return "*"
    return f"{text[0]}{'*' * min(len(text) - 1, 7)} ({len(text)} chars)"
