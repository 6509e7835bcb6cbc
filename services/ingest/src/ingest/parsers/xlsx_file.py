"""XLSX parsing with openpyxl in read-only (streaming) mode.

Row numbers: ``row = spreadsheet row index - header row index``, so with the header
in spreadsheet row 1, data row N is spreadsheet row N + 1. Empty rows are skipped
but still counted.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from .errors import UploadRejected
from .header import check_header
from .parsed import Record, Row
from .values import clean_text

# RVTools exports put the VM inventory on this sheet, next to a dozen others.
PREFERRED_SHEET = "vinfo"

# (spreadsheet row index, cell values)
SheetRows = Iterator[tuple[int, tuple[Any, ...]]]


def open_xlsx(stream: BinaryIO) -> tuple[list[str], Iterator[Row]]:
    workbook = _load(stream)
    try:
        for sheet in _candidate_sheets(workbook):
            sheet.reset_dimensions()  # some writers store a wrong <dimension>; don't let it truncate rows
            shown = (tuple(_shown(cell) for cell in row) for row in sheet.iter_rows())
            sheet_rows: SheetRows = enumerate(shown, start=1)
            found = _find_header(sheet_rows)
            if found is not None:
                header_index, header_cells = found
                header = check_header(_trim_trailing_blanks([cell_text(v) for v in header_cells]))
                return header, _rows(workbook, sheet_rows, header_index, header)
    except BaseException:
        workbook.close()
        raise
    workbook.close()
    raise UploadRejected("no_table", "The workbook has no sheet with a header row; every sheet is empty.")


def cell_text(value: Any) -> str | None:
    """Render a cell value the way a user reads it in the spreadsheet."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # numbers are floats in the file; "12", not "12.0"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, str):
        return clean_text(value)
    return str(value)


def _shown(cell: Any) -> Any:
    """A cell's value as the spreadsheet shows it where the format changes its meaning: a number
    formatted as a percentage (stored 0.45, shown 45%) comes out as "45%"."""
    value = getattr(cell, "value", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "%" in (
            getattr(cell, "number_format", None) or ""):
        percent = (Decimal(str(value)) * 100).normalize()
        return f"{percent:f}%"
    return value


def _load(stream: BinaryIO) -> Workbook:
    try:
        # data_only: formulas come back as their cached values, not as "=SUM(...)".
        return load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    except Exception:  # noqa: BLE001 - zipfile, XML and openpyxl errors alike mean "not a workbook"
        raise UploadRejected("invalid_xlsx", "The file is not a valid XLSX workbook.") from None


def _candidate_sheets(workbook: Workbook) -> list[Any]:
    sheets = list(workbook.worksheets)
    preferred = [s for s in sheets if s.title.strip().casefold() == PREFERRED_SHEET]
    return preferred + [s for s in sheets if s not in preferred]


def _find_header(sheet_rows: SheetRows) -> tuple[int, tuple[Any, ...]] | None:
    while (item := _next_row(sheet_rows)) is not None:
        index, cells = item
        if not _is_blank(cells):
            return index, cells
    return None


def _rows(workbook: Workbook, sheet_rows: SheetRows, header_index: int, header: list[str]) -> Iterator[Row]:
    try:
        while (item := _next_row(sheet_rows)) is not None:
            index, cells = item
            if _is_blank(cells):
                continue
            row_number = index - header_index
            yield row_number, _record(header, cells, row_number)
    finally:
        workbook.close()  # read-only workbooks keep the archive open until closed


def _next_row(sheet_rows: SheetRows) -> tuple[int, tuple[Any, ...]] | None:
    try:
        return next(sheet_rows)
    except StopIteration:
        return None
    except Exception:  # noqa: BLE001 - corrupt sheet XML surfaces here, mid-stream
        raise UploadRejected(
            "invalid_xlsx", "The workbook is damaged and its sheet cannot be read to the end."
        ) from None


def _record(header: list[str], cells: Sequence[Any], row_number: int) -> Record:
    width = len(header)
    values = [cell_text(v) for v in cells]
    # Formatting can make openpyxl report empty cells past the table; only values count.
    if any(v is not None for v in values[width:]):
        raise UploadRejected(
            "row_width",
            f"Row {row_number} has values in {len(_trim_trailing_blanks(values))} columns but the header has only {width}.",
            row=row_number,
        )
    values = values[:width] + [None] * (width - len(values))
    return dict(zip(header, values))


def _is_blank(cells: Sequence[Any]) -> bool:
    return all(cell_text(v) is None for v in cells)


def _trim_trailing_blanks(values: list[str | None]) -> list[str | None]:
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return values[:end]
