"""Header checks shared by all formats: every column needs a unique, non-blank name."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import UploadRejected


def check_header(cells: Sequence[str | None]) -> list[str]:
    """Return the stripped column names, rejecting blank and duplicate ones.

    Duplicates are compared case-insensitively because column mapping downstream is
    case-insensitive; two columns differing only in case would be ambiguous.
    """
    names: list[str] = []
    seen: dict[str, str] = {}
    for index, cell in enumerate(cells, start=1):
        name = (cell or "").strip()
        if not name:
            raise UploadRejected("blank_column", f"Column {index} of the header has no name.", column=f"#{index}")
        key = name.casefold()
        if key in seen:
            raise UploadRejected(
                "duplicate_column",
                f"The header contains the column {name!r} more than once (also as {seen[key]!r}).",
                column=name,
            )
        seen[key] = name
        names.append(name)
    return names
