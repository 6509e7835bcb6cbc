"""Pass 1 on two cores: a worker process checks the first half of a large import's rows.

Checking rows is Python, one core per process, and while pass 1 runs nothing else of the import
does: the machine's other core idles. Where every row is checked on its own
(``RowChecker.independent_rows``), a worker process reads the rows before the middle through a
connection of its own, checks them as pass 1 would and writes their findings and normalised rows
to two files, while the validator checks the second half. The validator then puts the worker's
rows before its own, in row order, as if it had checked them itself.

The worker sees committed rows only. The batches staged by the validation's own unit (those that
arrived with the event completing the set) are the import's last ones, so the worker takes the
first half: the validator, which sees them, takes the second. It counts the first half's rows in
its own transaction; where the worker read fewer, or failed, the validator writes that half's
findings itself and pass 2 checks the staged rows again. The files are the validator's: it names
them, and removes them however the check ends (those of a validator killed outright, the next
worker's validator removes).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import asyncpg

from contracts import Category
from tributary_runtime import staging
from tributary_runtime.db import Database

from .field_mapping import ColumnMapping
from .normalised_rows import pickled_chunks
from .rules import Finding


@dataclass(frozen=True)
class Job:
    """What the worker needs: everything picklable, nothing of the validator's own connection."""

    dsn: str
    schema: str
    import_id: uuid.UUID
    before_row: int  # the worker checks the rows numbered below it
    category: Category
    mapping: ColumnMapping
    reference_time: datetime
    chunk_rows: int
    findings_path: str
    rows_path: str
    rows_max_bytes: int | None
    sample_rows: int


@dataclass(frozen=True)
class Checked:
    rows: int
    rows_kept: bool  # False when the normalised rows outgrew ``rows_max_bytes`` (pass 2 checks again)
    sample: list[tuple[int, dict[str, str | None]]]  # the first rows, canonical (the LLM review's sample)
    seconds: float  # from the worker's start to its answer


async def split_row(conn: asyncpg.Connection, import_id: uuid.UUID, record_count: int) -> int | None:
    """The row number the validator's half starts at (None: too few rows staged to split)."""
    return await conn.fetchval(
        "SELECT row_number FROM staged_rows WHERE import_id = $1 ORDER BY row_number OFFSET $2 LIMIT 1",
        import_id, record_count // 2)


async def rows_before(conn: asyncpg.Connection, import_id: uuid.UUID, before_row: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM staged_rows WHERE import_id = $1 AND row_number < $2",
                               import_id, before_row)


def read_chunks(path: str) -> Iterator[Any]:
    with open(path, "rb") as fh:
        yield from pickled_chunks(fh)


class Worker:
    """One check of a first half in a process of its own, spawned for it (a fork would copy the
    event loop and the validator's connections)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        context = multiprocessing.get_context("spawn")
        self._results, sending = context.Pipe(duplex=False)
        # Daemonic: the worker dies with the validator, whatever stops it.
        self._process = context.Process(target=_main, args=(job, sending), name="validator-first-half",
                                        daemon=True)
        self._process.start()
        sending.close()

    async def checked(self) -> Checked:
        """The worker's answer; its error re-raised here."""
        try:
            outcome = await asyncio.to_thread(self._results.recv)
        except EOFError:
            raise RuntimeError(f"the first-half worker exited ({self._process.exitcode}) without an answer") from None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def close(self) -> None:
        """Stop the worker if it still runs (an error or a cancellation in the validator's half) and
        remove the files."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        self._results.close()
        for path in (self.job.findings_path, self.job.rows_path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


PREFIX = "tributary-first-half-"


def new_paths(directory: str | None) -> tuple[str, str]:
    """Two new files for a worker's findings and rows, named after this process. Files a validator
    killed outright left behind (its pid gone) are removed first."""
    _remove_stale(directory or tempfile.gettempdir())
    paths = []
    for what in ("findings", "rows"):
        fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-{what}-", dir=directory)
        os.close(fd)
        paths.append(path)
    return paths[0], paths[1]


def _remove_stale(directory: str) -> None:
    try:
        names = [n for n in os.listdir(directory) if n.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _main(job: Job, results: Connection) -> None:
    started = time.perf_counter()
    try:
        outcome: Checked | BaseException = asyncio.run(_check(job, started))
    except BaseException as exc:  # noqa: BLE001 - sent to the validator, which raises it
        outcome = exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}")
    results.send(outcome)
    results.close()


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return False
    return True


async def _check(job: Job, started: float) -> Checked:
    # Imported here: the validation module imports this one.
    from .rules import checker_for
    from .validation import Columns, check_chunk, sample_of

    checker = checker_for(job.category, reference_time=job.reference_time, units=job.mapping.units)
    columns = Columns(job.mapping, job.category)
    # The validator's own session settings, through the same plumbing: a pool of one connection.
    db = await Database.connect(job.dsn, job.schema, min_size=1, max_size=1)
    validator = os.getppid()
    rows, kept = 0, True
    sample: list[tuple[int, dict[str, str | None]]] = []
    try:
        with open(job.findings_path, "wb") as findings, open(job.rows_path, "wb") as normalised:
            async with db.transaction() as conn:
                async for chunk in staging.iter_rows(conn, job.import_id, job.chunk_rows,
                                                     before_row=job.before_row):
                    if os.getppid() != validator:  # the validator was killed outright: stop
                        raise SystemExit(1)
                    found, checked = check_chunk(checker, columns, chunk)
                    sample_of(columns, chunk, sample, job.sample_rows)
                    uploaded: list[Finding] = [columns.as_uploaded(f) for f in found]
                    pickle.dump(uploaded, findings, protocol=pickle.HIGHEST_PROTOCOL)
                    if kept:
                        pickle.dump(checked, normalised, protocol=pickle.HIGHEST_PROTOCOL)
                        kept = job.rows_max_bytes is None or normalised.tell() <= job.rows_max_bytes
                    rows += len(chunk)
    finally:
        await db.close()
    return Checked(rows=rows, rows_kept=kept, sample=sample, seconds=time.perf_counter() - started)
