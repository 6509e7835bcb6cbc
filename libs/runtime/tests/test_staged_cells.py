"""How a batch's cells are staged: as text, whatever JSON type they arrived as."""

from __future__ import annotations

import uuid

import pytest

from tributary_runtime import staging
from tributary_runtime.staging import _cells, staged_rows_copy

IMPORT = uuid.UUID(int=7)


def test_a_row_of_text_and_blanks_is_staged_as_it_is() -> None:
    row = ["web01", None, "", "10.0.0.1"]
    assert _cells(row) is row


def test_numbers_and_booleans_are_staged_as_their_text_wherever_they_are_in_the_row() -> None:
    assert _cells([True, "web01", None]) == ["true", "web01", None]
    assert _cells(["web01", None, 4]) == ["web01", None, "4"]
    assert _cells(["web01", 2.5, False, None]) == ["web01", "2.5", "false", None]


def test_a_row_of_plain_text_is_written_without_escaping_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(cell: object) -> str:
        raise AssertionError(f"escaped {cell!r}")

    monkeypatch.setattr(staging, "_array_element", refused)
    assert staged_rows_copy(IMPORT, 4, [7, 8], [["web01", "", "10.0.0.1"], ["a,b {c}", "NULL", "é"]]) == (
        f'{IMPORT}\t7\t4\t{{"web01","","10.0.0.1"}}\n{IMPORT}\t8\t4\t{{"a,b {{c}}","NULL","é"}}\n'.encode())


@pytest.mark.parametrize(("row", "array"), [
    (['a"b', "c"], r'{"a\\"b","c"}'),  # three quotes in a row of two cells, where the separator has two
    (["a", '"', '"'], r'{"a","\\"","\\""}'),
    (["x\\y", "z"], r'{"x\\\\y","z"}'),
    (["tab\there", None], r'{"tab\there",NULL}'),
    (["cr\r", "lf\n"], r'{"cr\r","lf\n"}'),
    ([None, None], "{NULL,NULL}"),
    ([], "{}"),
])
def test_a_row_holding_quotes_escapes_or_blanks_is_escaped_for_the_array_and_for_copy(
        row: list[str | None], array: str) -> None:
    assert staged_rows_copy(IMPORT, 1, [1], [row]) == f"{IMPORT}\t1\t1\t{array}\n".encode()


@pytest.mark.parametrize(("row", "array"), [
    ([" web01", "x"], '{"web01","x"}'),
    (["web01 ", "x"], '{"web01","x"}'),
    (["x", " web01"], '{"x","web01"}'),
    (["x", "web01 "], '{"x","web01"}'),
    (["", "x"], '{NULL,"x"}'),
    (["x", ""], '{"x",NULL}'),
    (["x", "", "y"], '{"x",NULL,"y"}'),
    (["x", "   ", "y"], '{"x",NULL,"y"}'),
    ([""], "{NULL}"),
    ([" a b "], '{"a b"}'),
    ([' "q" ', "y "], r'{"\\"q\\"","y"}'),
])
def test_trimmed_cells_lose_the_spaces_at_their_ends_and_a_blank_one_is_null(
        row: list[str | None], array: str) -> None:
    assert staged_rows_copy(IMPORT, 1, [1], [row], trim_cells=True) == f"{IMPORT}\t1\t1\t{array}\n".encode()
    untrimmed = staged_rows_copy(IMPORT, 1, [1], [row])
    assert untrimmed != f"{IMPORT}\t1\t1\t{array}\n".encode()


def test_trimming_leaves_a_row_with_spaces_only_inside_its_cells_unescaped(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(cell: object) -> str:
        raise AssertionError(f"escaped {cell!r}")

    monkeypatch.setattr(staging, "_array_element", refused)
    assert staged_rows_copy(IMPORT, 1, [1], [["web 01", "a b c", "x"]], trim_cells=True) == (
        f'{IMPORT}\t1\t1\t{{"web 01","a b c","x"}}\n'.encode())


def test_trimming_takes_spaces_alone_as_sql_btrim_does() -> None:
    row = ["\tkept\t", "\u00a0kept", None]
    assert staged_rows_copy(IMPORT, 1, [1], [row], trim_cells=True) == staged_rows_copy(IMPORT, 1, [1], [row])
