"""Batch digests: the bytes they hash must never change, or staged imports stop matching their markers."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from contracts import batch_digest
from contracts.digest import _rows_json


def reference(rows: list[list[object]]) -> bytes:
    """The definition the digests of every logged marker were computed with."""
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class Kind(StrEnum):
    SERVER = "server"


CHARS = [chr(i) for i in range(0x250)] + ["\u2028", "\u2029", "\ufeff", "\uffff", "\U0001f600", "\ud7ff", "\ue000"]


def test_rows_are_written_as_the_reference_writes_them_whatever_the_cells() -> None:
    r = random.Random(20261206)
    for _ in range(3_000):
        text = "".join(r.choice(CHARS) for _ in range(r.randint(0, 12)))
        rows = [[text, None, "", r.randint(-2**70, 2**70), r.choice([True, False])],
                [r.randint(-2**63, 2**63), text[::-1], None, "x", 0]]
        assert _rows_json(rows) == reference(rows)
    odd = [[1.0, 1e-05, 1e16, float("nan"), float("inf")], [Decimal("1.50"), datetime(2026, 1, 2, tzinfo=UTC),
                                                             Kind.SERVER, None, "a"]]
    for row in odd:
        assert _rows_json([row, ["b"] * 5]) == reference([row, ["b"] * 5])


def test_a_known_batch_keeps_its_digest() -> None:
    rows = [["web01.corp.example", "10.0.0.1", None, "é ü 😀 \u2028", 4, True],
            ["", 'x"y\\z\n\t\x01', 12345678901234567890123, False, None, -3]]
    assert batch_digest(7, [3, 9], rows) == "d775676326aa0464f39b2ccd9a023f680d0b16b43547c5f0f882a2ae47dd05d0"
