"""Delimited text (CSV/TSV) parsing.

Row numbers: ``row = physical line where the record starts - line of the header``.
With the header on line 1 (the usual case) row N is line N + 1, which is what a
user sees in a text editor. Blank lines are skipped but still counted, and a
quoted value spanning several lines makes the following rows' numbers jump
accordingly, so the number always leads to the right line.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from .errors import UploadRejected
from .header import check_header
from .lines import LineReader
from .parsed import Record, Row

# Order breaks ties between equally frequent delimiters.
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "commas (,)", ";": "semicolons (;)", "\t": "tabs", "|": "pipes (|)"}


def open_csv(stream: BinaryIO, *, check_only: bool = False) -> tuple[list[str], Iterator[Row]]:
    """The header and the rows; ``check_only``: each row checked as reading it would, without building
    its record (every row comes out as ``(row_number, {})``), for the pass that checks a whole file
    before anything of it is published."""
    lines = LineReader(stream)
    text_lines = iter(lines)
    first = next((line for line in text_lines if line.strip()), None)
    if first is None:
        raise UploadRejected("empty_file", "The file is empty.")
    delimiter = sniff_delimiter(first)
    reader = csv.reader(itertools.chain([first], text_lines), delimiter=delimiter, strict=True)
    header = check_header([cell.strip() for cell in _next_record(reader, lines) or []])
    lines.header_line = lines.line_no
    return header, (_checked_rows if check_only else _rows)(reader, lines, header, delimiter)


def sniff_delimiter(header_line: str) -> str:
    """Pick the candidate delimiter occurring most often outside quotes in the header.

    ``csv.Sniffer`` was the first idea, but on a single line it prefers "," over a
    more frequent ";" (``"VM;Memory, GB;CPU"`` comes out comma-separated), and the
    header line is all we want to look at before committing to a dialect.
    A one-column header has no delimiter at all; "," is then as good as any.
    """
    counts = dict.fromkeys(CANDIDATE_DELIMITERS, 0)
    in_quotes = False
    for char in header_line:
        if char == '"':
            in_quotes = not in_quotes  # a doubled "" toggles twice, so it nets out
        elif not in_quotes and char in counts:
            counts[char] += 1
    best = max(CANDIDATE_DELIMITERS, key=lambda d: counts[d])  # max keeps the first on ties
    return best if counts[best] else ","


def _rows(reader: Iterator[list[str]], lines: LineReader, header: list[str], delimiter: str) -> Iterator[Row]:
    while True:
        start_line = lines.line_no + 1  # csv pulls lines lazily, so this is where the record begins
        cells = _next_record(reader, lines)
        if cells is None:
            return
        # Each cell stripped once, for the blank-row test and the values alike (``clean_text``
        # inlined: a call per cell was the largest part of parsing).
        stripped = [cell.strip() for cell in cells]
        if not any(stripped):
            continue
        row_number = start_line - (lines.header_line or 0)
        _check_delimiter(header, cells, row_number, delimiter)
        yield row_number, _record(header, stripped, row_number)


def _checked_rows(reader: Iterator[list[str]], lines: LineReader, header: list[str], delimiter: str
                  ) -> Iterator[Row]:
    """``_rows`` without the records: the same rows rejected for the same reasons, at about half
    the cost (stripping every cell and building a dict per row was most of a check)."""
    width = len(header)
    while True:
        start_line = lines.line_no + 1
        cells = _next_record(reader, lines)
        if cells is None:
            return
        if not any(cell.strip() for cell in cells):
            continue
        row_number = start_line - (lines.header_line or 0)
        _check_delimiter(header, cells, row_number, delimiter)
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            _record(header, [cell.strip() for cell in cells], row_number)  # raises the row's error
        yield row_number, {}


def _next_record(reader: Iterator[list[str]], lines: LineReader) -> list[str] | None:
    start_line = lines.line_no + 1
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise UploadRejected(
            "malformed_csv",
            f"The record starting at line {start_line} is not valid CSV ({exc}); check for an unclosed or stray quote.",
            row=lines.row_of(start_line),
        ) from None


def _check_delimiter(header: list[str], cells: Sequence[str], row_number: int, delimiter: str) -> None:
    """Reject a row written with another delimiter than the header.

    Such a row has no header delimiter at all, so it reads as one cell, and short rows
    are padded: without this check the whole line would silently land in the first
    column. It is recognised when another candidate delimiter splits that one cell
    into exactly as many fields as the header has columns.
    """
    width = len(header)
    if width < 2 or len(cells) != 1:
        return
    for other in CANDIDATE_DELIMITERS:
        if other != delimiter and cells[0].count(other) == width - 1:
            raise UploadRejected(
                "mixed_delimiter",
                f"Row {row_number} is separated by {DELIMITER_NAMES[other]} but the header by "
                f"{DELIMITER_NAMES[delimiter]}; use the same delimiter throughout the file.",
                row=row_number,
            )


def _record(header: list[str], stripped: Sequence[str], row_number: int) -> Record:
    """The record of a row whose cells are already stripped: an empty cell has no value (``clean_text``)."""
    width = len(header)
    # Trailing empty cells (a stray delimiter at the end of a line) carry no data,
    # so only cells with a value beyond the header are an error.
    if len(stripped) > width and any(stripped[width:]):
        raise UploadRejected(
            "row_width",
            f"Row {row_number} has {len(stripped)} cells but the header has only {width} columns.",
            row=row_number,
        )
    values = [cell or None for cell in stripped[:width]]
    values.extend([None] * (width - len(values)))  # short rows: missing cells have no value
    return dict(zip(header, values))
