"""How a batch's cells are staged: as text, whatever JSON type they arrived as."""

from __future__ import annotations

from tributary_runtime.staging import _cells


def test_a_row_of_text_and_blanks_is_staged_as_it_is() -> None:
    row = ["web01", None, "", "10.0.0.1"]
    assert _cells(row) is row


def test_numbers_and_booleans_are_staged_as_their_text_wherever_they_are_in_the_row() -> None:
    assert _cells([True, "web01", None]) == ["true", "web01", None]
    assert _cells(["web01", None, 4]) == ["web01", None, "4"]
    assert _cells(["web01", 2.5, False, None]) == ["web01", "2.5", "false", None]
