"""NDJSON / JSON Lines parsing: one object per non-blank line.

Row numbers are physical line numbers (blank lines are skipped but counted), so
row N is line N. The header is the keys of the first object.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

from .errors import UploadRejected
from .header import check_header
from .json_records import json_record, require_object
from .lines import LineReader
from .parsed import Row
from .rows import no_rows_error


def open_ndjson(stream: BinaryIO) -> tuple[list[str], Iterator[Row]]:
    lines = LineReader(stream)
    lines.header_line = 0  # no header line: errors report row = line
    objects = _objects(lines)
    first = next(objects, None)  # parsed eagerly: its keys are the header
    if first is None:
        raise no_rows_error()
    header = check_header(list(first[1].keys()))
    return header, ((row, json_record(header, obj)) for row, obj in itertools.chain([first], objects))


def _objects(lines: LineReader) -> Iterator[tuple[int, dict[str, Any]]]:
    for text in lines:
        if not text.strip():
            continue
        row = lines.line_no
        yield row, require_object(_loads(text, row), row, f"Line {row}")


def _loads(text: str, row: int) -> Any:
    try:
        # Decimal keeps numbers as written, matching what ijson yields for JSON arrays.
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (json.JSONDecodeError, _NonStandardConstant) as exc:
        raise UploadRejected(
            "invalid_json", f"Line {row} is not a valid JSON object ({_reason(exc)}).", row=row
        ) from None


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default, but they are not JSON and no other tool reads them.
    raise _NonStandardConstant(f"{name} is not valid JSON")


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)
