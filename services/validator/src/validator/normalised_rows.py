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
import os
import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any

log = logging.getLogger(__name__)

# (row_number, the row as its checker normalised it and pass 2 publishes it), in row order.
Chunk = list[tuple[int, dict[str, Any]]]


def pickled_chunks(fh: IO[bytes]) -> Iterator[Any]:
    """The objects pickled one after another to ``fh``, from where it stands to its end."""
    while True:
        try:
            yield pickle.load(fh)
        except EOFError:
            return


class NormalisedRows:
    """Chunks of rows added in row order, read back in that order once all are added.

    ``keep``: False where a row's normalisation depends on other rows (a checker that is not
    ``normalises_per_row``); nothing is kept then, and pass 2 checks the staged rows again.
    """

    def __init__(self, in_memory_rows: int, directory: str | None = None, *, keep: bool = True,
                 max_bytes: int | None = None) -> None:
        self._in_memory_rows = in_memory_rows
        self._directory = directory
        self.max_bytes = max_bytes
        self._held: list[Chunk] = []
        self._held_rows = 0
        self._file: IO[bytes] | None = None
        self._first: list[IO[bytes]] = []
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
            if self.max_bytes is not None and self._file.tell() > self.max_bytes:
                raise OSError(f"more than {self.max_bytes} bytes")
        except OSError as exc:
            self.give_up(str(exc))
        self._held, self._held_rows = [], 0

    def give_up(self, reason: str) -> None:
        """Keep nothing: pass 2 reads and checks the staged rows again."""
        log.warning("normalised rows not kept for pass 2 (%s): it checks the staged rows again", reason)
        self.close()
        self.kept = False

    def put_first(self, path: str) -> None:
        """Put the chunks another process pickled to ``path`` before every row added here (its rows
        come first in row order). The file is removed from its directory at once, then read and
        closed as this object's own."""
        if not self.kept:
            os.remove(path)
            return
        fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        os.remove(path)
        self._first.append(fh)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.kept:
            raise RuntimeError("no normalised rows kept; read the staged rows instead")
        for fh in [*self._first, *([self._file] if self._file is not None else [])]:
            fh.seek(0)  # flushes what is buffered
            for rows in pickled_chunks(fh):
                yield from rows
        for rows in self._held:
            yield from rows

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for fh in self._first:
            fh.close()
        self._first = []
        self._held, self._held_rows = [], 0

    def __enter__(self) -> NormalisedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
