"""JSON array parsing, streamed element by element with ijson.

The top level must be an array of objects. Row numbers are the 1-based position
of the element in the array. The header is the keys of the first object.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from .errors import UploadRejected
from .header import check_header
from .json_records import json_record, require_object
from .lines import UTF8_BOM
from .parsed import Row
from .rows import no_rows_error

# ijson's C backend turns a whole read buffer into objects before yielding the
# first; 16 KiB keeps that batch (and peak memory) small at no measurable cost.
READ_BUFFER_BYTES = 16 * 1024
# Only the first token is needed to tell an array from anything else.
_PROBE_BYTES = 256


def open_json(stream: BinaryIO) -> tuple[list[str], Iterator[Row]]:
    start = _skip_bom(stream)
    _require_array(stream)
    stream.seek(start)  # ijson.items must see the document from its start
    elements = _elements(ijson.items(stream, "item", buf_size=READ_BUFFER_BYTES))
    first = next(elements, None)  # parsed eagerly: its keys are the header
    if first is None:
        raise no_rows_error()
    header = check_header(list(first[1].keys()))
    return header, ((row, json_record(header, obj)) for row, obj in itertools.chain([first], elements))


def _skip_bom(stream: BinaryIO) -> int:
    # yajl rejects a BOM as an invalid character, though editors on Windows add one.
    if stream.read(len(UTF8_BOM)) == UTF8_BOM:
        return len(UTF8_BOM)
    stream.seek(0)
    return 0


def _require_array(stream: BinaryIO) -> None:
    try:
        _prefix, event, _value = next(ijson.parse(stream, buf_size=_PROBE_BYTES))
    except StopIteration:
        raise UploadRejected("empty_file", "The file is empty.") from None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _invalid(exc, row=None) from None
    if event != "start_array":
        found = "an object" if event == "start_map" else "a single value"
        raise UploadRejected(
            "json_not_array",
            f"The JSON file must contain an array of objects at the top level, but it contains {found}.",
        )


def _elements(items: Iterator[Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for row in itertools.count(1):
        try:
            value = next(items)
        except StopIteration:
            return
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise _invalid(exc, row=row) from None
        yield row, require_object(value, row, f"Element {row} of the JSON array")


def _invalid(exc: Exception, *, row: int | None) -> UploadRejected:
    reason = _reason(exc)
    where = f" near element {row} of the array" if row is not None else ""
    if isinstance(exc, UnicodeDecodeError) or "utf8" in reason.casefold():
        return UploadRejected(
            "encoding", f"The file is not valid UTF-8{where}; save it as UTF-8 and upload it again.", row=row
        )
    return UploadRejected("invalid_json", f"The file is not valid JSON{where} ({reason}).", row=row)


def _reason(exc: Exception) -> str:
    # yajl messages span several lines and quote the input; keep only the first line.
    text: Any = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    first_line = str(text).strip().splitlines()[0:1]
    return first_line[0].strip() if first_line else type(exc).__name__
