"""Entry point: detect the format of an upload and open it for streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from .csv_file import open_csv
from .detect import detect_format
from .errors import UploadRejected
from .json_file import open_json
from .lines import UTF8_BOM
from .ndjson_file import open_ndjson
from .parsed import FileFormat, ParsedFile, Row
from .rows import limit_rows, require_rows
from .xlsx_file import open_xlsx

Opener = Callable[[BinaryIO], tuple[list[str], Iterator[Row]]]

OPENERS: dict[FileFormat, Opener] = {
    "csv": open_csv,
    "xlsx": open_xlsx,
    "json": open_json,
    "ndjson": open_ndjson,
}

_CHUNK = 64 * 1024


def open_upload(
    stream: BinaryIO, filename: str, content_type: str | None = None, *, max_rows: int | None = None,
    check_only: bool = False,
) -> ParsedFile:
    """Detect the format of ``stream``, read and check its header, and return lazy rows.

    Raises :class:`UploadRejected` here for file-level problems (empty file, unknown
    format, bad header, no data rows, invalid workbook, top level not a JSON array,
    and - for JSON/NDJSON, whose header *is* the first object - a broken first
    object). Problems in individual rows, including a too-large row count, raise
    while iterating ``rows``.

    Row numbers are 1-based and point at what the user sees in the file:

    * CSV: physical line where the record starts minus the header's line (header
      on line 1 -> row N is line N + 1); blank lines are skipped but counted.
    * XLSX: spreadsheet row index minus the header row index.
    * JSON: position of the object in the top-level array.
    * NDJSON: line number (blank lines are skipped but counted).

    Every record has all header columns; values are stripped strings, and empty
    cells, whitespace-only strings and JSON ``null`` are ``None``.
    ``stream`` must be seekable; it is read from position 0 whatever its position.
    ``check_only``: a CSV file's records may come out empty (``{}``): the rows are only counted
    and checked, by a pass that reads them again to publish them.
    """
    stream.seek(0)
    _require_content(stream)
    file_format = detect_format(stream, filename, content_type)
    stream.seek(0)
    if check_only and file_format == "csv":
        # Rows come out empty, checked as they would be read (``open_csv``).
        header, rows = open_csv(stream, check_only=True)
    else:
        header, rows = OPENERS[file_format](stream)
    rows = require_rows(rows)
    if max_rows is not None:
        rows = limit_rows(rows, max_rows)
    return ParsedFile(file_format=file_format, header=header, rows=rows)


def _require_content(stream: BinaryIO) -> None:
    """Reject 0-byte and whitespace-only files before any format-specific message."""
    chunk = stream.read(_CHUNK).removeprefix(UTF8_BOM)
    while chunk:
        if chunk.strip():
            stream.seek(0)
            return
        chunk = stream.read(_CHUNK)
    raise UploadRejected("empty_file", "The file is empty.")
