"""Unit tests for the streaming upload parsers (no network, fixtures built in memory)."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from ingest.parsers import ParsedFile, UploadRejected, open_upload
from openpyxl import Workbook

# --- fixture builders -------------------------------------------------------


def upload(data: bytes) -> BinaryIO:
    """Mimic the HTTP layer: a spooled file left positioned at its end after writing."""
    spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 - the test owns it
    spooled.write(data)
    return cast(BinaryIO, spooled)


def parse(data: bytes, filename: str, content_type: str | None = None, **kwargs: Any) -> ParsedFile:
    return open_upload(upload(data), filename, content_type, **kwargs)


def rows_of(data: bytes, filename: str, **kwargs: Any) -> list[tuple[int, dict[str, str | None]]]:
    return list(parse(data, filename, **kwargs).rows)


def rejected_on_open(data: bytes, filename: str, **kwargs: Any) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        parse(data, filename, **kwargs)
    return info.value


def rejected_on_iteration(data: bytes, filename: str, **kwargs: Any) -> tuple[list[Any], UploadRejected]:
    """Open must succeed; returns the rows yielded before the error and the error."""
    parsed = parse(data, filename, **kwargs)
    seen: list[Any] = []
    with pytest.raises(UploadRejected) as info:
        for row in parsed.rows:
            seen.append(row)  # noqa: PERF402 - keep the rows yielded before the error
    return seen, info.value


def xlsx(sheets: dict[str, list[list[Any]]], *, first_row: dict[str, int] | None = None) -> bytes:
    """Build a workbook; ``first_row`` places a sheet's table lower, leaving empty rows above."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, table in sheets.items():
        sheet = workbook.create_sheet(title)
        start = (first_row or {}).get(title, 1)
        for offset, values in enumerate(table):
            for column, value in enumerate(values, start=1):
                sheet.cell(row=start + offset, column=column, value=value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- UploadRejected ---------------------------------------------------------


def test_upload_rejected_to_dict() -> None:
    error = UploadRejected("row_width", "Row 3 is too wide.", row=3, column="Name")
    assert error.to_dict() == {"code": "row_width", "message": "Row 3 is too wide.", "row": 3, "column": "Name"}
    assert str(error) == "Row 3 is too wide."
    assert UploadRejected("empty_file", "The file is empty.").to_dict()["row"] is None


# --- CSV --------------------------------------------------------------------


def test_csv_values_are_stripped_and_empty_cells_are_none() -> None:
    parsed = parse(b" Name , IP ,Notes\nvm1, 10.0.0.1 ,\nvm2,,  \n", "inventory.csv")
    assert parsed.file_format == "csv"
    assert parsed.header == ["Name", "IP", "Notes"]
    assert list(parsed.rows) == [
        (1, {"Name": "vm1", "IP": "10.0.0.1", "Notes": None}),
        (2, {"Name": "vm2", "IP": None, "Notes": None}),
    ]


def test_csv_rows_are_lazy_iterator() -> None:
    parsed = parse(b"a\n1\n2\n", "x.csv")
    assert iter(parsed.rows) is parsed.rows
    assert next(parsed.rows) == (1, {"a": "1"})
    assert next(parsed.rows) == (2, {"a": "2"})
    assert next(parsed.rows, None) is None


def test_csv_reads_from_start_whatever_the_stream_position() -> None:
    stream = upload(b"a,b\n1,2\n")
    stream.seek(5)
    assert list(open_upload(stream, "x.csv").rows) == [(1, {"a": "1", "b": "2"})]


def test_csv_strips_utf8_bom() -> None:
    parsed = parse("\ufeffName,Ort\nvm1,Zürich\n".encode(), "x.csv")
    assert parsed.header == ["Name", "Ort"]
    assert list(parsed.rows) == [(1, {"Name": "vm1", "Ort": "Zürich"})]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"Name;Memory, GB;CPU\nvm1;4,5;2\n", {"Name": "vm1", "Memory, GB": "4,5", "CPU": "2"}),
        (b"Name\tIP\tOS\nvm1\t10.0.0.1\tLinux\n", {"Name": "vm1", "IP": "10.0.0.1", "OS": "Linux"}),
        (b"Name|IP\nvm1|10.0.0.1\n", {"Name": "vm1", "IP": "10.0.0.1"}),
        (b'"Name; full",Host\n"a;b",h1\n', {"Name; full": "a;b", "Host": "h1"}),
    ],
    ids=["semicolon", "tab", "pipe", "comma-with-quoted-semicolon"],
)
def test_csv_sniffs_delimiter_from_header(data: bytes, expected: dict[str, str]) -> None:
    assert rows_of(data, "x.csv") == [(1, expected)]


def test_csv_tsv_extension() -> None:
    parsed = parse(b"a\tb\n1\t2\n", "export.TSV")
    assert parsed.file_format == "csv"
    assert list(parsed.rows) == [(1, {"a": "1", "b": "2"})]


def test_csv_single_column_falls_back_to_comma() -> None:
    assert rows_of(b"hostname\nvm1\nvm2\n", "hosts.txt") == [(1, {"hostname": "vm1"}), (2, {"hostname": "vm2"})]


def test_csv_quoted_fields_with_delimiters_newlines_and_quotes() -> None:
    data = b'name,notes,size\r\nvm1,"line one\r\nline two, with comma",1\r\nvm2,"say ""hi""",2\r\n'
    assert rows_of(data, "x.csv") == [
        (1, {"name": "vm1", "notes": "line one\r\nline two, with comma", "size": "1"}),
        # vm2 is on line 4: the quoted newline makes row numbers follow physical lines
        (3, {"name": "vm2", "notes": 'say "hi"', "size": "2"}),
    ]


def test_csv_blank_lines_are_skipped_but_counted() -> None:
    data = b"\n\na,b\nx,1\n\n,,\n   \ny,2\n"
    # header on line 3: row = line - 3
    assert rows_of(data, "x.csv") == [(1, {"a": "x", "b": "1"}), (5, {"a": "y", "b": "2"})]


def test_csv_short_rows_are_padded_and_empty_extra_cells_ignored() -> None:
    assert rows_of(b"a,b,c\n1\n2,3,4,,\n", "x.csv") == [
        (1, {"a": "1", "b": None, "c": None}),
        (2, {"a": "2", "b": "3", "c": "4"}),
    ]


@pytest.mark.parametrize("data", [b"", b"  \r\n\t\n", b"\xef\xbb\xbf\n"], ids=["zero-bytes", "whitespace", "bom-only"])
def test_empty_file(data: bytes) -> None:
    error = rejected_on_open(data, "x.csv")
    assert error.code == "empty_file"
    assert error.row is None


@pytest.mark.parametrize("filename", ["x.json", "x.ndjson", "x.xlsx", "noext"])
def test_empty_file_any_format(filename: str) -> None:
    assert rejected_on_open(b"\n", filename).code == "empty_file"


@pytest.mark.parametrize("data", [b"a,b\n", b"a,b", b"a,b\n\n,\n  \n"], ids=["header", "no-newline", "blank-rows"])
def test_csv_header_only_has_no_rows(data: bytes) -> None:
    error = rejected_on_open(data, "x.csv")
    assert error.code == "no_rows"
    assert error.message == "The file has a header but no data rows."


def test_csv_duplicate_header_is_case_insensitive() -> None:
    error = rejected_on_open(b"Name,IP,name \nvm1,1,2\n", "x.csv")
    assert (error.code, error.column) == ("duplicate_column", "name")
    assert "'name'" in error.message and "'Name'" in error.message


def test_csv_blank_header_cell() -> None:
    error = rejected_on_open(b"Name, ,IP\nvm1,x,1\n", "x.csv")
    assert (error.code, error.column) == ("blank_column", "#2")
    assert error.message == "Column 2 of the header has no name."


def test_csv_non_utf8_in_data_raises_lazily_with_line_and_row() -> None:
    seen, error = rejected_on_iteration(b"name,city\nvm1,Bern\nvm2,Z\xfcrich\nvm3,Basel\n", "x.csv")
    assert seen == [(1, {"name": "vm1", "city": "Bern"})]
    assert error.code == "encoding"
    assert error.row == 2
    assert "not valid UTF-8 at line 3" in error.message
    assert "0xFC" in error.message


def test_csv_non_utf8_in_header_raises_on_open() -> None:
    error = rejected_on_open(b"n\xe4me,city\nvm1,Bern\n", "x.csv")
    assert error.code == "encoding"
    assert error.row is None
    assert "line 1" in error.message


def test_csv_row_too_wide() -> None:
    seen, error = rejected_on_iteration(b"a,b\n1,2\n3,4,5\n6,7\n", "x.csv")
    assert seen == [(1, {"a": "1", "b": "2"})]
    assert (error.code, error.row) == ("row_width", 2)
    assert error.message == "Row 2 has 3 cells but the header has only 2 columns."


def test_csv_error_in_first_row_is_deferred_to_iteration() -> None:
    seen, error = rejected_on_iteration(b"a,b\n1,2,3\n", "x.csv")
    assert seen == []
    assert (error.code, error.row) == ("row_width", 1)


def test_csv_mixed_delimiters_are_a_width_error() -> None:
    _, error = rejected_on_iteration(b"name,ip\nvm1;10.0.0.1;linux,x,y\n", "x.csv")
    assert (error.code, error.row) == ("row_width", 1)
    _, error = rejected_on_iteration(b"name\nvm1;10.0.0.1\nvm2,10.0.0.2\n", "x.csv")
    assert (error.code, error.row) == ("row_width", 2)


def test_csv_rows_with_another_delimiter_than_the_header_are_rejected() -> None:
    # Without the check such a row reads as one cell and lands whole in the first column.
    seen, error = rejected_on_iteration(b"hostname;ip_address\nweb-1,10.0.0.1\n", "x.csv")
    assert seen == []
    assert (error.code, error.row, error.column) == ("mixed_delimiter", 1, None)
    assert error.message == ("Row 1 is separated by commas (,) but the header by semicolons (;); "
                             "use the same delimiter throughout the file.")
    seen, error = rejected_on_iteration(b"a,b,c\n1,2,3\n\n4|5|6\n", "x.csv")
    assert seen == [(1, {"a": "1", "b": "2", "c": "3"})]
    assert (error.code, error.row) == ("mixed_delimiter", 3)
    assert "pipes (|) but the header by commas (,)" in error.message
    _, error = rejected_on_iteration(b"a\tb\n1;2\n", "x.tsv")
    assert "semicolons (;) but the header by tabs" in error.message


def test_csv_one_cell_rows_that_are_not_another_delimiter_are_kept() -> None:
    # A short row is padded; a value with a comma is only suspicious when it splits into the header's width.
    assert rows_of(b"name;notes;owner\nSmith, John\nvm1\n", "x.csv") == [
        (1, {"name": "Smith, John", "notes": None, "owner": None}), (2, {"name": "vm1", "notes": None, "owner": None})]
    # A one-column file has no delimiter to mix up.
    assert rows_of(b"name\nSmith; John\n", "x.csv") == [(1, {"name": "Smith; John"})]


def test_csv_unclosed_quote_is_malformed() -> None:
    _, error = rejected_on_iteration(b'a,b\n1,2\n3,"unterminated\n4,5\n', "x.csv")
    assert (error.code, error.row) == ("malformed_csv", 2)
    assert "line 3" in error.message


def test_csv_line_without_newline_that_is_too_long() -> None:
    _, error = rejected_on_iteration(b"a\n" + b"x" * (1024 * 1024 + 10), "x.csv")
    assert (error.code, error.row) == ("line_too_long", 1)


CSV_FILES = {
    "valid": b"a,b\n1,2\n\n 3 , \n,\n5,6,,\n",
    "quoted": b'a,b\n"x, y","multi\nline"\n3,4\n',
    "too-wide": b"a,b\n1,2\n3,4,5\n6,7\n",
    "too-wide-first": b"a,b\n1,2,3\n",
    "mixed-width": b"name\nvm1;10.0.0.1\nvm2,10.0.0.2\n",
    "mixed-delimiter": b"a,b,c\n1,2,3\n\n4|5|6\n",
    "unclosed-quote": b'a,b\n1,2\n3,"unterminated\n4,5\n',
    "not-utf8": b"name,city\nvm1,Bern\nvm2,Z\xfcrich\n",
    "too-long": b"a\n" + b"x" * (1024 * 1024 + 10),
    "header-only": b"a,b\n\n,\n",
}


@pytest.mark.parametrize("name", list(CSV_FILES))
def test_csv_checked_without_records_rejects_and_counts_as_reading_does(name: str) -> None:
    # The upload is checked whole before anything is published (``ingest.uploads.check_file``),
    # without building records; the pass that publishes reads the rows again with them.
    def outcome(**kwargs: Any) -> tuple[list[int], tuple[str, str, int | None, str | None] | None]:
        numbers: list[int] = []
        try:
            for number, _ in parse(CSV_FILES[name], "x.csv", **kwargs).rows:
                numbers.append(number)  # noqa: PERF401 - the numbers read before an error
        except UploadRejected as error:
            return numbers, (error.code, error.message, error.row, error.column)
        return numbers, None

    assert outcome(check_only=True) == outcome()
    assert all(record == {} for _, record in parse(CSV_FILES["valid"], "x.csv", check_only=True).rows)


def test_max_rows() -> None:
    data = b"a\n1\n2\n\n3\n"
    assert len(rows_of(data, "x.csv", max_rows=3)) == 3
    seen, error = rejected_on_iteration(data, "x.csv", max_rows=2)
    assert [row for row, _ in seen] == [1, 2]
    assert (error.code, error.row) == ("too_many_rows", 4)
    assert "2 data rows" in error.message


# --- JSON -------------------------------------------------------------------


def test_json_value_conversion() -> None:
    data = json.dumps(
        [
            {
                " host ": " vm1 ",
                "cpus": 12,
                "ram": 1.50,
                "on": True,
                "off": False,
                "tag": None,
                "blank": "",
                "nested": {"a": [1, 2.5, "x"]},
                "list": ["é"],
            },
            {"host": "vm2", "extra": 7},
        ]
    ).encode()
    parsed = parse(data, "export.json")
    assert parsed.file_format == "json"
    assert parsed.header == ["host", "cpus", "ram", "on", "off", "tag", "blank", "nested", "list"]
    assert list(parsed.rows) == [
        (
            1,
            {
                "host": "vm1",
                "cpus": "12",
                "ram": "1.5",
                "on": "true",
                "off": "false",
                "tag": None,
                "blank": None,
                "nested": '{"a":[1,2.5,"x"]}',
                "list": '["é"]',
            },
        ),
        (
            2,
            {
                "host": "vm2",
                "cpus": None,
                "ram": None,
                "on": None,
                "off": None,
                "tag": None,
                "blank": None,
                "nested": None,
                "list": None,
                "extra": "7",
            },
        ),
    ]


def test_json_numbers_keep_their_written_form() -> None:
    data = b'[{"a": 1.50, "b": 12345678901234567890, "c": -0.1}]'
    assert rows_of(data, "x.json") == [(1, {"a": "1.50", "b": "12345678901234567890", "c": "-0.1"})]


def test_json_with_bom() -> None:
    assert rows_of(b'\xef\xbb\xbf[{"a":"x"}]', "x.json") == [(1, {"a": "x"})]


def test_json_with_much_leading_whitespace() -> None:
    assert rows_of(b" " * 5000 + b'\n[{"a":"x"}]', "x.json") == [(1, {"a": "x"})]
    assert rejected_on_open(b" " * 5000 + b'{"a":"x"}', "x.json").code == "json_not_array"


def test_json_top_level_object() -> None:
    error = rejected_on_open(b'{"rows": [{"a": 1}]}', "x.json")
    assert error.code == "json_not_array"
    assert error.message == (
        "The JSON file must contain an array of objects at the top level, but it contains an object."
    )


def test_json_top_level_scalar() -> None:
    assert rejected_on_open(b'"just a string"', "x.json").code == "json_not_array"


def test_json_element_not_object() -> None:
    seen, error = rejected_on_iteration(b'[{"a":1},{"a":2},[3]]', "x.json")
    assert [row for row, _ in seen] == [1, 2]
    assert (error.code, error.row) == ("json_row_not_object", 3)
    assert error.message == "Element 3 of the JSON array is an array, not an object."


def test_json_first_element_not_object_raises_on_open() -> None:
    error = rejected_on_open(b"[1, 2]", "x.json")
    assert (error.code, error.row) == ("json_row_not_object", 1)


def test_json_invalid_document() -> None:
    error = rejected_on_open(b"this is not json", "x.json")
    assert error.code == "invalid_json"
    assert "\n" not in error.message


def test_json_truncated_array_raises_lazily() -> None:
    seen, error = rejected_on_iteration(b'[{"a":1},{"a":2},{"a":', "x.json")
    assert seen == [(1, {"a": "1"}), (2, {"a": "2"})]
    assert (error.code, error.row) == ("invalid_json", 3)
    assert "near element 3" in error.message


def test_json_empty_array() -> None:
    assert rejected_on_open(b" [ ] ", "x.json").code == "no_rows"


def test_json_duplicate_keys_in_first_object() -> None:
    error = rejected_on_open(b'[{"Name":"a","NAME":"b"}]', "x.json")
    assert (error.code, error.column) == ("duplicate_column", "NAME")


# --- NDJSON -----------------------------------------------------------------


def test_ndjson_rows_and_line_numbers() -> None:
    data = b'{"host":"vm1","cpus":4,"ok":true}\n\n  \n{"host":"vm2","cpus":2.0,"tags":["a"]}\n'
    parsed = parse(data, "export.ndjson")
    assert parsed.file_format == "ndjson"
    assert parsed.header == ["host", "cpus", "ok"]
    assert list(parsed.rows) == [
        (1, {"host": "vm1", "cpus": "4", "ok": "true"}),
        (4, {"host": "vm2", "cpus": "2.0", "ok": None, "tags": '["a"]'}),
    ]


def test_jsonl_extension() -> None:
    assert parse(b'{"a":1}\n', "x.jsonl").file_format == "ndjson"


def test_ndjson_bad_line() -> None:
    seen, error = rejected_on_iteration(b'{"a":1}\n{"a":2}\n{"a":\n{"a":4}\n', "x.ndjson")
    assert [row for row, _ in seen] == [1, 2]
    assert (error.code, error.row) == ("invalid_json", 3)
    assert error.message.startswith("Line 3 is not a valid JSON object (")


def test_ndjson_rejects_nan() -> None:
    _, error = rejected_on_iteration(b'{"a":1}\n{"a":NaN}\n', "x.ndjson")
    assert (error.code, error.row) == ("invalid_json", 2)


def test_ndjson_line_not_object() -> None:
    _, error = rejected_on_iteration(b'{"a":1}\n[1,2]\n', "x.ndjson")
    assert (error.code, error.row) == ("json_row_not_object", 2)
    assert error.message == "Line 2 is an array, not an object."


def test_ndjson_bad_first_line_raises_on_open() -> None:
    error = rejected_on_open(b"\nnot json\n", "x.ndjson")
    assert (error.code, error.row) == ("invalid_json", 2)


def test_ndjson_non_utf8() -> None:
    _, error = rejected_on_iteration(b'{"a":"x"}\n{"a":"\xe9"}\n', "x.ndjson")
    assert (error.code, error.row) == ("encoding", 2)


# --- XLSX -------------------------------------------------------------------


def test_xlsx_cell_conversion() -> None:
    when = dt.datetime(2024, 3, 1, 12, 30)
    data = xlsx(
        {
            "Sheet": [
                ["Name", "CPUs", "RAM", "Created", "On", "Notes", 2024],
                ["  vm1 ", 4, 1.5, when, True, None, 8.0],
                ["vm2", 16.0, 0.25, dt.date(2024, 1, 2), False, "   ", "x"],
            ]
        }
    )
    parsed = parse(data, "export.xlsx")
    assert parsed.file_format == "xlsx"
    assert parsed.header == ["Name", "CPUs", "RAM", "Created", "On", "Notes", "2024"]
    assert list(parsed.rows) == [
        (
            1,
            {
                "Name": "vm1",
                "CPUs": "4",
                "RAM": "1.5",
                "Created": "2024-03-01T12:30:00",
                "On": "true",
                "Notes": None,
                "2024": "8",
            },
        ),
        (
            2,
            {
                "Name": "vm2",
                "CPUs": "16",
                "RAM": "0.25",
                "Created": "2024-01-02T00:00:00",
                "On": "false",
                "Notes": None,
                "2024": "x",
            },
        ),
    ]


def test_xlsx_prefers_vinfo_sheet() -> None:
    data = xlsx(
        {
            "vSummary": [["Key", "Value"], ["vCenter", "vc1"]],
            "vInfo": [["VM", "Powerstate"], ["vm1", "poweredOn"]],
            "vHost": [["Host"], ["esx1"]],
        }
    )
    parsed = parse(data, "RVTools_export_all.xlsx")
    assert parsed.header == ["VM", "Powerstate"]
    assert list(parsed.rows) == [(1, {"VM": "vm1", "Powerstate": "poweredOn"})]


def test_xlsx_without_vinfo_uses_first_non_empty_sheet() -> None:
    data = xlsx({"Empty": [], "Data": [["a"], ["1"]], "Other": [["b"], ["2"]]})
    assert list(parse(data, "x.xlsx").rows) == [(1, {"a": "1"})]


def test_xlsx_leading_empty_rows_and_gaps() -> None:
    data = xlsx({"Sheet": [["Name", "IP"], ["vm1", "10.0.0.1"], [None, None], ["vm3", None]]}, first_row={"Sheet": 3})
    parsed = parse(data, "x.xlsx")
    assert parsed.header == ["Name", "IP"]
    # header in spreadsheet row 3: row = spreadsheet row - 3
    assert list(parsed.rows) == [(1, {"Name": "vm1", "IP": "10.0.0.1"}), (3, {"Name": "vm3", "IP": None})]


def test_xlsx_trailing_empty_header_cells_are_ignored() -> None:
    data = xlsx({"Sheet": [["a", "b", None, None], ["1", None, None, None]]})
    parsed = parse(data, "x.xlsx")
    assert parsed.header == ["a", "b"]
    assert list(parsed.rows) == [(1, {"a": "1", "b": None})]


def test_xlsx_row_too_wide() -> None:
    seen, error = rejected_on_iteration(xlsx({"S": [["a", "b"], [1, 2], [3, 4, 5]]}), "x.xlsx")
    assert seen == [(1, {"a": "1", "b": "2"})]
    assert (error.code, error.row) == ("row_width", 2)


def test_xlsx_blank_and_duplicate_header() -> None:
    error = rejected_on_open(xlsx({"S": [["a", None, "b"], [1, 2, 3]]}), "x.xlsx")
    assert (error.code, error.column) == ("blank_column", "#2")
    error = rejected_on_open(xlsx({"S": [["VM", "vm"], [1, 2]]}), "x.xlsx")
    assert (error.code, error.column) == ("duplicate_column", "vm")


def test_xlsx_empty_workbook() -> None:
    error = rejected_on_open(xlsx({"Sheet1": [], "Sheet2": [[None, "  "]]}), "x.xlsx")
    assert error.code == "no_table"


def test_xlsx_header_only() -> None:
    assert rejected_on_open(xlsx({"S": [["a", "b"]]}), "x.xlsx").code == "no_rows"


def test_xlsx_invalid_file() -> None:
    error = rejected_on_open(b"this is not a zip", "x.xlsx")
    assert error.code == "invalid_xlsx"
    assert error.message == "The file is not a valid XLSX workbook."


def test_xlsx_zip_without_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert rejected_on_open(buffer.getvalue(), "x.xlsx").code == "invalid_xlsx"


# --- format detection -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a;b\n1;2\n", "csv"),
        (b'  [{"a": 1}]', "json"),
        (b'{"a": 1}\n{"a": 2}\n', "ndjson"),
        (xlsx({"S": [["a"], [1]]}), "xlsx"),
    ],
)
def test_detect_by_content_when_extension_unknown(data: bytes, expected: str) -> None:
    assert parse(data, "upload.dat").file_format == expected
    assert parse(data, "upload").file_format == expected


def test_detect_multiline_object_as_json_and_reject_it() -> None:
    error = rejected_on_open(b'{\n  "rows": []\n}\n', "upload")
    assert error.code == "json_not_array"


def test_detect_by_content_type() -> None:
    parsed = parse(b'{"a": 1}\n', "blob", "application/x-ndjson; charset=utf-8")
    assert parsed.file_format == "ndjson"


def test_extension_wins_over_content_type() -> None:
    # Windows browsers label .csv files as Excel
    assert parse(b"a\n1\n", "C:\\Users\\me\\x.csv", "application/vnd.ms-excel").file_format == "csv"


@pytest.mark.parametrize(
    "data",
    [
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00",  # legacy .xls (OLE2)
        b"%PDF-1.7\n\x00\x01\x02binary",
    ],
    ids=["xls", "pdf"],
)
def test_unsupported_format(data: bytes) -> None:
    for name in ("old.xls", "doc.pdf", "blob"):
        error = rejected_on_open(data, name)
        assert error.code == "unsupported_format"
        assert error.message == "The file type is not supported; upload a CSV, TSV, XLSX, JSON or NDJSON file."


def test_unsupported_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert rejected_on_open(buffer.getvalue(), "letter.docx").code == "unsupported_format"


def test_latin1_text_without_extension_reports_encoding() -> None:
    _, error = rejected_on_iteration(b"name\nZ\xfcrich\n", "upload")
    assert (error.code, error.row) == ("encoding", 1)


# --- streaming --------------------------------------------------------------


def _csv_lines(count: int) -> Iterator[bytes]:
    yield b"Name,IP,OS,Notes\n"
    for i in range(count):
        yield f'vm-{i:06d},10.{i // 65536}.{i // 256 % 256}.{i % 256},linux,"note, {i}"\n'.encode()


def _ndjson_lines(count: int) -> Iterator[bytes]:
    for i in range(count):
        yield json.dumps({"Name": f"vm-{i:06d}", "cpus": i % 64, "on": True}).encode() + b"\n"


def _json_parts(count: int) -> Iterator[bytes]:
    yield b"["
    for i in range(count):
        yield (b"," if i else b"") + json.dumps({"Name": f"vm-{i:06d}", "cpus": i % 64}).encode()
    yield b"]"


@pytest.mark.parametrize(
    ("filename", "parts"),
    [("big.csv", _csv_lines), ("big.ndjson", _ndjson_lines), ("big.json", _json_parts)],
)
def test_streaming_keeps_memory_bounded(tmp_path: Path, filename: str, parts: Any) -> None:
    rows = 200_000
    path = tmp_path / filename
    with path.open("wb") as out:
        out.writelines(parts(rows))
    size = path.stat().st_size
    assert size > 5_000_000

    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            parsed = open_upload(stream, filename)
            count = 0
            last = 0
            for last, _record in parsed.rows:
                count += 1
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert count == rows
    assert last == rows
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file"
