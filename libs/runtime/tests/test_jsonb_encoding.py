"""The jsonb parameter encoder writes what the stdlib's ``json.dumps(default=str)`` wrote before it.

Rows written before and after the switch must compare equal as jsonb (a rebuild's verification
checksums live tables against rebuilt ones), so every value kind the services store is checked
against the stdlib: parsed back equal, and datetimes, whose text jsonb keeps, byte for byte.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from contracts import Category, Phase
from tributary_runtime.db import dumps, dumps_jsonb, loads_jsonb


@dataclass
class Point:
    x: int


def stdlib(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


VALUES = [
    {"at": datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC)},
    {"at": datetime(2026, 12, 6, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))},
    {"naive": datetime(2026, 1, 1), "day": date(2026, 2, 3)},
    {"id": uuid.UUID(int=7), "phase": Phase.VALIDATION, "category": Category.CMDB_EXPORT},
    {"amount": Decimal("1.50"), "ratio": 0.1, "big": 2**70, "negative_big": -(2**64)},
    {1: "non-string key", "nested": {"list": [1, None, True, "é", "日本"], "empty": {}}},
    {"tuple": (1, 2), "set": {3}, "point": Point(4)},
    ["a", 1.5e300, -0.0, "line\nbreak", "quote\"d", "\u2028"],
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_same_json_as_the_standard_library(value: object) -> None:
    assert json.loads(dumps(value)) == json.loads(stdlib(value))


def test_datetimes_keep_their_text() -> None:
    at = datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC)
    assert dumps({"at": at}) == stdlib({"at": at}) == '{"at":"2026-12-06 03:04:05.678901+00:00"}'


def test_integers_beyond_64_bits_stay_exact() -> None:
    assert json.loads(dumps({"n": 2**70 + 1}))["n"] == 2**70 + 1


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_binary_jsonb_is_the_version_byte_then_the_same_json(value: object) -> None:
    assert dumps_jsonb(value) == b"\x01" + dumps(value).encode()
    assert loads_jsonb(dumps_jsonb(value)) == json.loads(stdlib(value))


def test_an_unknown_binary_jsonb_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        loads_jsonb(b"\x02{}")
