"""CSV downloads that are safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
some spreadsheets strip before evaluating) would run as a formula when the file is
opened; such cells get a leading apostrophe, the OWASP-recommended neutraliser.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_line(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return buffer.getvalue()


async def csv_stream(header: list[str], rows: AsyncIterable[list[Any]]) -> AsyncIterator[str]:
    yield csv_line(header)
    async for cells in rows:
        yield csv_line(cells)
