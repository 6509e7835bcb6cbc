"""Working out which format an upload is in.

The file extension decides when it is one we know, then a specific Content-Type,
and only then the first bytes of the content; browsers often send a generic or
misleading Content-Type (Windows labels .csv as ``application/vnd.ms-excel``), so
it only helps when the name says nothing.
"""

from __future__ import annotations

import json
import zipfile
from typing import BinaryIO

from .errors import UploadRejected
from .lines import UTF8_BOM
from .parsed import FileFormat

EXTENSIONS: dict[str, FileFormat] = {
    "csv": "csv",
    "tsv": "csv",
    "txt": "csv",
    "xlsx": "xlsx",
    "json": "json",
    "ndjson": "ndjson",
    "jsonl": "ndjson",
}

CONTENT_TYPES: dict[str, FileFormat] = {
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
}

SNIFF_BYTES = 8192
ZIP_MAGIC = b"PK\x03\x04"

SUPPORTED = "CSV, TSV, XLSX, JSON or NDJSON"


def detect_format(stream: BinaryIO, filename: str, content_type: str | None = None) -> FileFormat:
    """Return the format; leaves ``stream`` at position 0."""
    by_name = EXTENSIONS.get(_extension(filename))
    if by_name is not None:
        return by_name
    by_type = CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower())
    if by_type is not None:
        return by_type
    try:
        return _sniff(stream)
    finally:
        stream.seek(0)


def _extension(filename: str) -> str:
    # Browsers on Windows may send a full path; only the last component matters.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _sniff(stream: BinaryIO) -> FileFormat:
    stream.seek(0)
    sample = stream.read(SNIFF_BYTES)
    if sample.startswith(ZIP_MAGIC):
        return _sniff_zip(stream)
    text = sample.removeprefix(UTF8_BOM).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        # A complete object on the first line is NDJSON; an object spread over
        # lines is a JSON document (which the JSON parser then rejects clearly).
        return "ndjson" if _is_json_object(text.split(b"\n", 1)[0]) else "json"
    if _looks_like_text(sample):
        return "csv"
    raise _unsupported()


def _sniff_zip(stream: BinaryIO) -> FileFormat:
    # DOCX, ODS and plain archives are ZIPs too; only a workbook part makes it XLSX.
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _unsupported() from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    raise _unsupported()


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end in the middle of a multi-byte character; only an error
        # before the last few bytes means it is not UTF-8. Non-UTF-8 text still goes
        # to the CSV parser, which then reports the exact line.
        return exc.start >= len(sample) - 3 or not _has_control_bytes(sample)
    return True


def _has_control_bytes(sample: bytes) -> bool:
    return any(b < 0x20 and b not in b"\t\n\r\x0c" for b in sample)


def _unsupported() -> UploadRejected:
    return UploadRejected("unsupported_format", f"The file type is not supported; upload a {SUPPORTED} file.")
