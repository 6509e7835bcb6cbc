"""Staged rows of finished phases are deleted once the retention has passed; nothing else is.

``tributary_runtime.retention`` against the real database: which sets are due, what stays of
them (the set, its batches, the rows a service keeps), that a batch delivered again after the
purge is still recognised, that two purgers never take the same set, and the service task.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import pytest

from tributary_runtime import metrics, retention, staging
from tributary_runtime.db import Database
from tributary_runtime.resources import Resources
from tributary_runtime.settings import ServiceSettings

COLUMNS = ["hostname", "ip_address"]
DDL = staging.STAGING_DDL + staging.FLOW_CONTROL_DDL + retention.RETENTION_DDL


@pytest.fixture
async def db(schema_db: Callable[..., Awaitable[Database]]) -> Database:
    return await schema_db("staged_retention", DDL, max_size=3)


def batch(seq: int, per_batch: int = 10) -> tuple[list[int], list[list[str]]]:
    numbers = list(range((seq - 1) * per_batch + 1, seq * per_batch + 1))
    return numbers, [[f"host-{n}.example", f"10.0.0.{n % 250}"] for n in numbers]


async def staged_set(db: Database, status: str, finished_days_ago: float | None, batches: int = 3) -> uuid.UUID:
    """A set of ``batches`` batches of 10 rows in ``status``, finished that many days ago (None: not finished)."""
    import_id = uuid.uuid4()
    async with db.transaction() as conn:
        for seq in range(1, batches + 1):
            assert await staging.stage_rows(conn, import_id, seq, COLUMNS, *batch(seq))
        await conn.execute(
            "INSERT INTO staged_imports (import_id, client_account_id, engagement_id, marker, expected_batches,"
            " checksum, status, finished_at) VALUES ($1, $2, $3, '{}', $4, 'sha256:x', $5,"
            " now() - make_interval(secs => $6))",
            import_id, uuid.uuid4(), uuid.uuid4(), batches, status,
            None if finished_days_ago is None else finished_days_ago * 86400)
    return import_id


async def counts(db: Database, import_id: uuid.UUID) -> tuple[int, int, bool]:
    """(staged rows, staged batches, rows purged) of one set."""
    async with db.connection() as conn:
        return (await conn.fetchval("SELECT count(*) FROM staged_rows WHERE import_id = $1", import_id),
                await conn.fetchval("SELECT count(*) FROM staged_batches WHERE import_id = $1", import_id),
                await conn.fetchval("SELECT rows_purged_at IS NOT NULL FROM staged_imports WHERE import_id = $1",
                                    import_id))


async def cutoff(db: Database, days: float) -> datetime:
    async with db.connection() as conn:
        return await conn.fetchval("SELECT now()") - timedelta(days=days)


async def test_only_sets_finished_for_good_before_the_cutoff_lose_their_rows_and_keep_their_batches(
        db: Database) -> None:
    old = await staged_set(db, "validated", 40)
    older = await staged_set(db, "applied", 45, batches=2)
    recent = await staged_set(db, "validated", 1)
    failed = await staged_set(db, staging.FAILED, 40)  # a retry starts from its rows
    held = await staged_set(db, staging.HELD, None)
    waiting = await staged_set(db, "staging", None)

    counted = metrics.STAGED_ROWS_PURGED.value()
    purged = await retention.purge_due(db, await cutoff(db, 30))

    assert purged == [retention.Purged(older, 20), retention.Purged(old, 30)]  # oldest first
    assert metrics.STAGED_ROWS_PURGED.value() - counted == 50
    assert await counts(db, old) == (0, 3, True)
    assert await counts(db, older) == (0, 2, True)
    for kept in (recent, failed, held, waiting):
        assert await counts(db, kept) == (30, 3, False)
    assert await retention.purge_due(db, await cutoff(db, 30)) == []  # nothing twice

    # A batch of a purged set delivered again is the duplicate it was: not staged anew.
    async with db.transaction() as conn:
        assert not await staging.stage_rows(conn, old, 2, COLUMNS, *batch(2))
    assert await counts(db, old) == (0, 3, True)


async def test_rows_the_service_keeps_stay_and_only_the_deleted_are_counted(db: Database) -> None:
    import_id = await staged_set(db, "validated", 10)
    purged = await retention.purge_due(db, await cutoff(db, 5), keep="r.row_number % 10 = 0")
    assert purged == [retention.Purged(import_id, 27)]
    async with db.connection() as conn:
        assert [r[0] for r in await conn.fetch(
            "SELECT row_number FROM staged_rows WHERE import_id = $1 ORDER BY 1", import_id)] == [10, 20, 30]


async def test_two_purgers_never_take_the_same_set(db: Database) -> None:
    first = await staged_set(db, "validated", 50)
    second = await staged_set(db, "validated", 40)
    async with db.transaction() as conn:
        # Another member's purge has the oldest set in hand (its row locked until it commits).
        assert await conn.fetchval(retention._NEXT_DUE, await cutoff(db, 30)) == first  # noqa: SLF001
        # Bounded: a purger that waited for the locked set would wait for this very transaction.
        assert await asyncio.wait_for(retention.purge_next(db, await cutoff(db, 30)), 5) == retention.Purged(second, 30)
        assert await asyncio.wait_for(retention.purge_next(db, await cutoff(db, 30)), 5) is None
    assert await counts(db, first) == (30, 3, False)
    assert await retention.purge_next(db, await cutoff(db, 30)) == retention.Purged(first, 30)


def settings_for(env: dict[str, str], **values: float) -> ServiceSettings:
    return ServiceSettings(database_url=env["DATABASE_URL"], kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                           **values)


async def wait_until_purged(db: Database, import_id: uuid.UUID, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (await counts(db, import_id))[2]:
        assert asyncio.get_running_loop().time() < deadline, "the purge task never purged the set"
        await asyncio.sleep(0.05)


async def test_the_service_task_purges_what_is_due_and_stops_when_told(db: Database,
                                                                       stack_env: dict[str, str]) -> None:
    due = await staged_set(db, "validated", 3)
    recent = await staged_set(db, "validated", 1)
    settings = settings_for(stack_env, staged_rows_retention_days=2, staged_rows_purge_interval_s=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(retention.purger(keep="r.row_number = 1")(Resources(settings, db, None))(stop))
    await wait_until_purged(db, due)
    assert await counts(db, due) == (1, 3, True)
    # A set that finishes after the task started is purged by a later pass, once it is due.
    async with db.transaction() as conn:
        await conn.execute("UPDATE staged_imports SET finished_at = finished_at - interval '2 days'"
                           " WHERE import_id = $1", recent)
    await wait_until_purged(db, recent)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_the_service_task_with_no_interval_keeps_every_row(db: Database, stack_env: dict[str, str]) -> None:
    old = await staged_set(db, "applied", 400)
    settings = settings_for(stack_env, staged_rows_purge_interval_s=0)
    stop = asyncio.Event()
    task = asyncio.create_task(retention.purger()(Resources(settings, db, None))(stop))
    await asyncio.sleep(0.3)  # what would have been three passes at the interval of the test above
    assert not task.done()
    assert await counts(db, old) == (30, 3, False)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_failed_pass_is_logged_and_the_next_one_goes_on(db: Database, stack_env: dict[str, str],
                                                               caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    due = await staged_set(db, "validated", 3)
    settings = settings_for(stack_env, staged_rows_retention_days=2, staged_rows_purge_interval_s=0.1)
    # The first pass names a row condition the server refuses (as a database gone away would fail it).
    conditions = iter(["no_such_column = 1"])
    original = retention.purge_due

    async def first_fails(db_: Database, finished_before: datetime, keep: str | None = None,
                          stop: asyncio.Event | None = None) -> list[retention.Purged]:
        return await original(db_, finished_before, next(conditions, keep), stop)

    monkeypatch.setattr(retention, "purge_due", first_fails)
    stop = asyncio.Event()
    task = asyncio.create_task(retention.purger(keep="r.row_number = 1")(Resources(settings, db, None))(stop))
    await wait_until_purged(db, due)
    failures = [r for r in caplog.records if r.getMessage().startswith("purging staged rows failed")]
    assert len(failures) == 1 and isinstance(failures[0].exc_info[1], asyncpg.UndefinedColumnError)
    assert await counts(db, due) == (1, 3, True)  # the next pass, with the service's condition
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_pass_run_now_takes_its_own_retention_and_keeps_what_the_service_keeps(
        db: Database, stack_env: dict[str, str]) -> None:
    settings = ServiceSettings(database_url=stack_env["DATABASE_URL"],
                               kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    two_days = await staged_set(db, "validated", 2)
    just_now = await staged_set(db, "applied", 0.0001)
    failed = await staged_set(db, staging.FAILED, 2)

    # Within the service's 30 days, yet older than the one asked for.
    assert await retention.purge_now(settings, db.schema, 1, keep="r.row_number = 2") == [
        retention.Purged(two_days, 29)]
    assert await counts(db, two_days) == (1, 3, True)
    assert await counts(db, just_now) == (30, 3, False)
    # 0: every import finished before the pass.
    assert await retention.purge_now(settings, db.schema, 0) == [retention.Purged(just_now, 30)]
    assert await counts(db, failed) == (30, 3, False)


def test_a_pass_run_now_against_an_unreachable_database_says_so_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/tributary")
    with pytest.raises(SystemExit) as exited:
        retention.command("validator", "validator", argv=["--older-than-days", "0"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("validator: staged rows not purged: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
