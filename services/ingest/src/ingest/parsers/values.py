"""Turning raw cell and JSON values into the ``str | None`` every record holds."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def clean_text(value: str) -> str | None:
    """Strip surrounding whitespace; an empty or whitespace-only value means "no value".

    Applied to every format so downstream validation never has to tell ``""``,
    ``"  "`` and a missing cell apart.
    """
    value = value.strip()
    return value or None


def json_text(value: Any) -> str | None:
    """Convert a decoded JSON value (numbers as int/Decimal) to record text."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (int, Decimal, float)):
        # Decimal keeps the number as written ("1.50" stays "1.50").
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    # Nested numbers arrive as Decimal, which json cannot serialise itself.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
