"""The result type shared by all parsers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

FileFormat: TypeAlias = Literal["csv", "xlsx", "json", "ndjson"]
Record: TypeAlias = dict[str, str | None]
Row: TypeAlias = tuple[int, Record]


@dataclass(frozen=True)
class ParsedFile:
    """A file whose header has been read and checked; ``rows`` is consumed lazily.

    ``rows`` yields ``(row_number, record)`` with a 1-based row number whose meaning
    per format is documented on :func:`ingest.parsers.open_upload`. It can be
    iterated only once, and may raise :class:`UploadRejected` part-way through.
    """

    file_format: FileFormat
    header: list[str]
    rows: Iterator[Row]
