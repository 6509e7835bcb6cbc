"""Turning decoded JSON objects (from JSON arrays and NDJSON alike) into records."""

from __future__ import annotations

from typing import Any

from .errors import UploadRejected
from .parsed import Record
from .values import json_text


def require_object(value: Any, row: int, where: str) -> dict[str, Any]:
    """``where`` names the place for the message, e.g. ``"Element 3 of the array"``."""
    if not isinstance(value, dict):
        raise UploadRejected("json_row_not_object", f"{where} is {json_kind(value)}, not an object.", row=row)
    return value


def json_record(header: list[str], obj: dict[str, Any]) -> Record:
    """Header columns first (``None`` when absent), then any keys the header lacks.

    Later objects may carry keys the first one did not have; they are kept rather
    than dropped so no data is silently lost, but they do not extend ``header``.
    """
    record: Record = dict.fromkeys(header)
    for key, value in obj.items():
        record[key.strip()] = json_text(value)
    return record


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"
