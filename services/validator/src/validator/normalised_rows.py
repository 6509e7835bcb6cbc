"""Pass 1's normalised rows, kept for pass 2: up to a chunk in memory, the rest in a temp file.

Pass 2 publishes the accepted rows as the checkers normalised them. Checking every row again
to get them back cost about 9 µs a row (a second pass over a 1M-row import: read from the
staging table, then checked); a pickled chunk written and read back costs about 3.5 µs. The file
is anonymous (``tempfile.TemporaryFile``), so a process that dies leaves nothing behind, and the
validation that restarts after it builds a new one from the staged rows.

A file that cannot be written (a full disk, say), or that would outgrow ``max_bytes``, is given
up rather than failing the import: pass 2 then reads and checks the staged rows again, as it would
without this. The bound keeps a huge import from filling a volume with a size limit (a pod's
``emptyDir``, which evicts the pod rather than failing a write).
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any

log = logging.getLogger(__name__)

# (row_number, the row as its checker normalised it and pass 2 publishes it), in row order.
Chunk = list[tuple[int, dict[str, Any]]]


class NormalisedRows:
    """Chunks of rows added in row order, read back in that order once all are added.

    ``keep``: False where a row's normalisation depends on other rows (a checker that is not
    ``normalises_per_row``); nothing is kept then, and pass 2 checks the staged rows again.
    """

    def __init__(self, in_memory_rows: int, directory: str | None = None, *, keep: bool = True,
                 max_bytes: int | None = None) -> None:
        self._in_memory_rows = in_memory_rows
        self._directory = directory
        self._max_bytes = max_bytes
        self._held: list[Chunk] = []
        self._held_rows = 0
        self._file: IO[bytes] | None = None
        self.kept = keep

    def extend(self, rows: Chunk) -> None:
        """Add a chunk (held as given: the caller does not change it afterwards)."""
        if not self.kept:
            return
        self._held.append(rows)
        self._held_rows += len(rows)
        if self._held_rows > self._in_memory_rows:
            self._spill()

    def _spill(self) -> None:
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(dir=self._directory)
            for rows in self._held:
                pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            if self._max_bytes is not None and self._file.tell() > self._max_bytes:
                raise OSError(f"more than {self._max_bytes} bytes")
        except OSError as exc:
            log.warning("normalised rows not kept for pass 2 (%s): it checks the staged rows again", exc)
            self.close()
            self.kept = False
        self._held, self._held_rows = [], 0

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.kept:
            raise RuntimeError("no normalised rows kept; read the staged rows instead")
        if self._file is not None:
            self._file.seek(0)  # flushes what is buffered
            while True:
                try:
                    rows = pickle.load(self._file)
                except EOFError:
                    break
                yield from rows
        for rows in self._held:
            yield from rows

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._held, self._held_rows = [], 0

    def __enter__(self) -> NormalisedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
