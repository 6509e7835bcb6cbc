"""The one exception every parser raises for a file the user has to fix."""

from __future__ import annotations

from typing import Any


class UploadRejected(Exception):
    """The uploaded file cannot be imported; ``message`` is meant for the end user.

    ``code`` is a stable machine-readable reason (e.g. ``"row_width"``), ``row`` the
    1-based data row number and ``column`` the column name when they are known, so an
    API can point the user at the exact place to fix.
    """

    def __init__(self, code: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.row = row
        self.column = column

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "row": self.row, "column": self.column}

    def __repr__(self) -> str:
        return f"UploadRejected(code={self.code!r}, message={self.message!r}, row={self.row!r}, column={self.column!r})"
