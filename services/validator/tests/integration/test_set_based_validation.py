"""No query per row: validating an import runs the same statements for 10 rows or 2,000."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Envelope, ImportUploaded, Tenant, batch_digest
from tributary_runtime.consumer import Unit
from tributary_cli.testing import CountingConnection, last_analyzed
from tributary_runtime.db import Database
from validator import SCHEMA
from validator import duplicates, validation
from validator.llm_usage import PgUsageLedger
from validator.normalised_rows import NormalisedRows
from validator.rules.cmdb import CmdbChecker
from validator.settings import ValidatorSettings
from validator.validation import Validation, validate_import

HEADER = ["Host Name", "IP Address", "Type", "Env", "RAM"]




def cells(i: int) -> list[str]:
    # Every 7th row has a bad address, every 11th repeats an earlier host: findings of both kinds.
    host = f"web-{i - 1 if i % 11 == 0 else i:05d}"
    ip = "10.0.0.999" if i % 7 == 0 else f"10.2.{i // 256}.{i % 256}"
    return [host, ip, "server", "prod", "16 GB"]


@pytest.fixture
async def db(database_url: str) -> Database:
    database = await Database.connect(database_url, SCHEMA, min_size=1, max_size=3)
    yield database
    await database.close()


async def statements_for(db: Database, producer: AIOKafkaProducer, rows: int,
                         settings: ValidatorSettings | None = None, *, staged_before: bool = False,
                         issues: list[tuple[Any, ...]] | None = None,
                         row: Callable[[int], list[str]] = cells) -> tuple[int, dict[str, Any]]:
    """Stage ``rows`` rows (``row(i)``: the cells of row i) and validate them; the statements of the
    validation and its run. ``staged_before``: the rows are committed first (as batches staged by
    earlier units are), otherwise staged in the validation's own transaction. ``issues``: gets the
    findings."""
    tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
    import_id = uuid.uuid4()
    values = [row(i) for i in range(1, rows + 1)]
    marker = Envelope.wrap(
        ImportUploaded(category="cmdb_export", filename="x.csv", file_format="csv", record_count=rows,
                       batch_count=1, checksum="-", columns=HEADER),
        tenant=tenant, import_id=import_id, flow_id=uuid.uuid4(), producer="test",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC))

    async def stage(conn: asyncpg.Connection) -> None:
        await conn.execute("INSERT INTO staged_batches (import_id, batch_seq, columns, row_count, digest)"
                           " VALUES ($1, 1, $2, $3, $4)", import_id, HEADER, rows,
                           batch_digest(1, list(range(1, rows + 1)), values))
        await conn.copy_records_to_table("staged_rows", columns=("import_id", "row_number", "batch_seq", "cells"),
                                         records=[(import_id, i, 1, v) for i, v in enumerate(values, start=1)])

    if staged_before:
        async with db.transaction() as conn:
            await stage(conn)
    async with db.transaction() as conn:
        if not staged_before:
            await stage(conn)
        counting = CountingConnection(conn)
        unit = Unit(conn=counting, producer=producer, group_id="test")  # type: ignore[arg-type]
        await validate_import(unit, marker, Validation(settings or ValidatorSettings(), PgUsageLedger(db.pool)))
        await unit.flush()
        run = dict(await conn.fetchrow("SELECT verdict, record_count, invalid_count, warning_count"
                                       " FROM validation_runs WHERE import_id = $1", import_id))
        if issues is not None:
            issues.extend(tuple(r) for r in await conn.fetch(
                "SELECT row_number, column_name, rule_id, severity, message, value FROM row_issues"
                " WHERE import_id = $1 ORDER BY 1, 2, 3, 5", import_id))
    return counting.statements, run


async def test_statements_do_not_grow_with_rows(db: Database, producer: AIOKafkaProducer) -> None:
    small, small_run = await statements_for(db, producer, 10)
    large, large_run = await statements_for(db, producer, 2000)
    assert small == large, (small, large)
    # Each a round trip in the validation's transaction, which a small import pays for like a large one.
    assert small <= 11, small
    assert small_run == {"verdict": "completed_with_errors", "record_count": 10, "invalid_count": 1,
                         "warning_count": 0}
    # 285 bad addresses (every 7th row) and 181 repeated hosts (every 11th, minus the 25 rows that are both
    # and the repeats of a row itself rejected for its address, which are no duplicates of a valid row).
    assert large_run["verdict"] == "completed_with_errors" and large_run["record_count"] == 2000
    assert large_run["invalid_count"] == 285 + 181 - 25 - 26


def repeating(i: int) -> list[str]:
    """Rows whose host names repeat (an error), whose addresses repeat in threes (a warning) or are
    bad (an error) or blank, so that rows rejected by one key are no first occurrence for the next."""
    host = f"db-{i - 1 if i % 11 == 0 else i:05d}"
    ip = "" if i % 13 == 0 else "10.0.0.999" if i % 7 == 0 else f"10.9.{i // 3 // 256}.{i // 3 % 256}"
    return [host, ip, "server", "prod", "16 GB"]


async def test_duplicates_found_from_parallel_candidates_are_those_one_statement_finds(
        db: Database, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch) -> None:
    found = {}
    for way, parallel_from in (("one statement", 10**9), ("candidates", 0)):
        monkeypatch.setattr(duplicates, "CANDIDATES_IN_PARALLEL_FROM", parallel_from)
        issues: list[tuple[Any, ...]] = []
        await statements_for(db, producer, 3000, issues=issues, row=repeating)
        found[way] = [issue for issue in issues if issue[2].startswith("duplicate_")]
    assert found["candidates"] == found["one statement"]
    rules = Counter(rule for _, _, rule, *_ in found["one statement"])
    assert rules == {"duplicate_hostname": 200, "duplicate_ip_address": 1194}
    # Row 66 repeats row 65's host, so the address 10.9.0.22 (rows 66-68) is first held by row 67.
    assert (68, "IP Address", "duplicate_ip_address", "warning", "IP Address 10.9.0.22 also appears in row 67",
            "10.9.0.22") in found["candidates"]


async def test_a_large_validation_is_planned_on_statistics_that_count_its_rows(
        db: Database, producer: AIOKafkaProducer) -> None:
    # Statistics taken before the import was staged (as autovacuum takes them) do not know its rows:
    # the validation analyzes the staging tables before its statements read them (staging's
    # FRESH_STATISTICS_FROM); a small one does not.
    for rows, analyzes in ((500, False), (12_000, True)):
        async with db.connection() as conn:
            await conn.execute("ANALYZE staged_rows; ANALYZE staged_batches")
            before = {t: await last_analyzed(conn, t) for t in ("staged_rows", "staged_batches")}
        await statements_for(db, producer, rows)
        async with db.connection() as conn:
            after = {t: await last_analyzed(conn, t) for t in ("staged_rows", "staged_batches")}
        assert all((after[t] > before[t]) is analyzes for t in after), (rows, before, after)


async def test_every_row_is_checked_once_and_pass_2_publishes_what_checking_again_would(
        db: Database, producer: AIOKafkaProducer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pass 2 publishes the rows as pass 1 normalised them: held in memory for an import of one
    chunk, in a temp file beyond that (here: chunks of 5 rows). Where that file cannot be written,
    pass 2 reads and checks the staged rows again. All three publish the same rows."""
    checked: Counter[int] = Counter()
    published: list[list[Any]] = []
    check = CmdbChecker.check

    def counted(self: CmdbChecker, row_number: int, row: Any) -> Any:
        checked[row_number] += 1
        return check(self, row_number, row)

    async def capture(unit: Unit, marker: Any, batch: Any, attempt: int) -> None:
        published[-1].extend(batch.model_dump(mode="json")["rows"])

    spilled: list[bool] = []
    close = NormalisedRows.close

    def noting(self: NormalisedRows) -> None:
        spilled.append(self.spilled)
        close(self)

    monkeypatch.setattr(CmdbChecker, "check", counted)
    monkeypatch.setattr(validation, "_publish_batch", capture)
    monkeypatch.setattr(NormalisedRows, "close", noting)
    runs = {}
    for label, settings in (("held", ValidatorSettings()),
                            ("spilled", ValidatorSettings(validation_chunk_rows=5, validation_spill_dir=str(tmp_path))),
                            ("checked again", ValidatorSettings(validation_chunk_rows=5,
                                                                validation_spill_dir=str(tmp_path / "missing")))):
        checked.clear()
        spilled.clear()
        published.append([])
        _, runs[label] = await statements_for(db, producer, 30, settings)
        valid = 30 - runs[label]["invalid_count"]
        assert len(checked) == 30
        if label == "checked again":
            assert sum(checked.values()) == 30 + valid  # the valid rows a second time
        else:
            assert set(checked.values()) == {1}  # every row once
        assert spilled[-1] is (label == "spilled")
    assert list(tmp_path.iterdir()) == []  # the file is anonymous
    assert runs["held"] == runs["spilled"] == runs["checked again"]
    assert published[0] == published[1] == published[2] and len(published[0]) == 30 - runs["held"]["invalid_count"]


async def test_a_worker_process_checks_the_first_half_as_the_validator_would(
        db: Database, producer: AIOKafkaProducer, database_url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Pass 1 split between a worker process and the validator (``validator.first_half``): the same
    findings, verdict and published rows as one process checking every row, in chunks of 7 rows
    spilled to a file. Where the worker cannot see its half (rows staged in the validation's own
    transaction), or fails (it cannot connect), the validator writes that half's findings itself
    and pass 2 checks the rows again, with the same result."""
    checked: Counter[int] = Counter()
    published: list[list[Any]] = []
    check = CmdbChecker.check

    def counted(self: CmdbChecker, row_number: int, row: Any) -> Any:  # counts this process's checks only
        checked[row_number] += 1
        return check(self, row_number, row)

    async def capture(unit: Unit, marker: Any, batch: Any, attempt: int) -> None:
        published[-1].extend(batch.model_dump(mode="json")["rows"])

    monkeypatch.setattr(CmdbChecker, "check", counted)
    monkeypatch.setattr(validation, "_publish_batch", capture)
    runs, issues = {}, {}
    # The worker connects to the database the settings name: a database that does not exist fails it.
    missing = database_url.rsplit("/", 1)[0] + "/no_such_database"
    for label, from_rows, staged_before, url in (
            ("one process", 0, True, database_url), ("two processes", 1, True, database_url),
            ("staged in the transaction", 1, False, database_url), ("worker failed", 1, True, missing)):
        checked.clear()
        published.append([])
        issues[label] = []
        settings = ValidatorSettings(database_url=url, validation_chunk_rows=7,
                                     validation_spill_dir=str(tmp_path), validation_worker_from_rows=from_rows)
        _, runs[label] = await statements_for(db, producer, 60, settings, staged_before=staged_before,
                                              issues=issues[label])
        valid = 60 - runs[label]["invalid_count"]
        if label == "two processes":  # the worker took rows 1-30
            assert sorted(checked) == list(range(31, 61)) and set(checked.values()) == {1}
        elif label == "one process":
            assert sorted(checked) == list(range(1, 61)) and set(checked.values()) == {1}
        else:  # every row here in pass 1, the valid ones again in pass 2
            assert sorted(checked) == list(range(1, 61)) and sum(checked.values()) == 60 + valid
    assert runs["one process"] == runs["two processes"] == runs["staged in the transaction"] == runs["worker failed"]
    assert runs["one process"]["invalid_count"] > 0
    assert issues["one process"] == issues["two processes"] == issues["staged in the transaction"] \
        == issues["worker failed"]
    assert {r[0] for r in issues["one process"]} & set(range(1, 31))  # the worker's half has findings
    assert published[0] == published[1] == published[2] == published[3]
    assert len(published[0]) == 60 - runs["one process"]["invalid_count"]
    assert list(tmp_path.iterdir()) == []  # the worker's files are gone
