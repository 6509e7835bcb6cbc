"""Row-stream wrappers applied to every format: the "no rows" check and the row limit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from .errors import UploadRejected
from .parsed import Row


def no_rows_error() -> UploadRejected:
    return UploadRejected("no_rows", "The file has a header but no data rows.")


def require_rows(rows: Iterator[Row]) -> Iterator[Row]:
    """Pull the first row now so a header-only file is rejected by ``open_upload``.

    If the first row itself is broken, its error is deferred to iteration: the file
    does have rows, and row-level errors are promised to surface from ``rows``.
    """
    try:
        first = next(rows)
    except StopIteration:
        raise no_rows_error() from None
    except UploadRejected as exc:
        return _raise_when_iterated(exc)
    return itertools.chain([first], rows)


def _raise_when_iterated(exc: UploadRejected) -> Iterator[Row]:
    raise exc
    yield  # pragma: no cover - makes this a generator, so the raise waits for next()


def limit_rows(rows: Iterator[Row], max_rows: int) -> Iterator[Row]:
    """Stop with ``too_many_rows`` at the first row beyond ``max_rows``."""
    for count, (row_number, record) in enumerate(rows, start=1):
        if count > max_rows:
            raise UploadRejected(
                "too_many_rows",
                f"The file has more than the allowed {max_rows} data rows (row {row_number} is over the limit).",
                row=row_number,
            )
        yield row_number, record
