import csv
import io

import pytest

from validator.csv_export import csv_line, csv_stream, safe_cell


@pytest.mark.parametrize(("cell", "shown"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("web-01", "web-01"),
    ("10.0.0.1", "10.0.0.1"),
    (None, ""),
    (42, "42"),
])
def test_formula_triggers_are_neutralised(cell: object, shown: str) -> None:
    assert safe_cell(cell) == shown


def test_a_line_is_valid_csv_with_quotes_and_commas() -> None:
    line = csv_line(["a,b", 'say "hi"', "=cmd|' /C calc'!A0"])
    assert next(csv.reader(io.StringIO(line))) == ["a,b", 'say "hi"', "'=cmd|' /C calc'!A0"]


async def test_the_stream_is_header_then_rows() -> None:
    async def rows():
        yield ["h1", "=1"]
        yield [None, "x"]

    out = "".join([chunk async for chunk in csv_stream(["A", "B"], rows())])
    assert list(csv.reader(io.StringIO(out))) == [["A", "B"], ["h1", "'=1"], ["", "x"]]
