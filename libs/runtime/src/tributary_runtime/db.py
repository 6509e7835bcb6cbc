"""Database access: an asyncpg pool whose connections live in the service's own schema."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

log = logging.getLogger(__name__)


class DatabaseUnavailable(ConnectionError):
    """The connection a unit of work was using died under it (server restart, terminated backend).

    asyncpg reports a lost connection in several shapes depending on where the loss lands:
    ``AdminShutdownError`` from the server, ``ConnectionDoesNotExistError``, an
    ``InterfaceError`` from ``Transaction.__aexit__`` on a closed connection, or an
    ``InternalClientError`` ("another operation is in progress") when the pool hands out a
    connection whose FATAL message has arrived but whose socket close has not been read yet.
    Whatever the shape, the work did not happen and must be retried, never dead-lettered.
    """


# Driver errors that say nothing about the message being processed, only that the database is away.
CONNECTION_LOST = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.TooManyConnectionsError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("json", encoder=dumps, decoder=json.loads, schema="pg_catalog")
    # jsonb in the binary protocol (a version byte, then the same JSON text): asyncpg's COPY only
    # sends binary, so a table with a jsonb column can be filled by COPY.
    await conn.set_type_codec("jsonb", encoder=dumps_jsonb, decoder=loads_jsonb, schema="pg_catalog",
                              format="binary")


def _lost(conn: asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.exceptions.InterfaceError:  # the pool took the proxy back the moment the socket closed
        return True


# Datetimes and dataclasses go through ``default=str`` as they always have (a datetime with a
# space, not orjson's "T"): jsonb written before and after compares equal, which a rebuild's
# checksums rely on.
_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: object) -> bytes:
    """Compact JSON, anything JSON has no type for as its ``str()``.

    orjson is several times the stdlib's speed on the projections' JSON-heavy writes and writes
    the same JSON; integers beyond 64 bits, which it refuses, take the stdlib's path. Results are
    read with the stdlib (orjson would read such integers back as floats).
    """
    try:
        return orjson.dumps(value, default=str, option=_DUMPS_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), default=str).encode()


def dumps(value: object) -> str:
    """JSON text for a json parameter (or a jsonb one sent as text and cast)."""
    return _json(value).decode()


JSONB_VERSION = b"\x01"  # the only version of jsonb's binary format


def dumps_jsonb(value: object) -> bytes:
    """A jsonb parameter in the binary protocol: the same JSON after the format's version byte."""
    return JSONB_VERSION + _json(value)


def loads_jsonb(data: bytes) -> object:
    if data[:1] != JSONB_VERSION:
        raise ValueError(f"unsupported jsonb binary format version {data[:1]!r}")
    return json.loads(data[1:])


# Set-based statements over a whole import sort, hash and fill temp tables of tens of MB: with
# the server's defaults (work_mem 4MB, temp_buffers 8MB) they spill to disk and evict each other's
# temp pages, which made a 100k-row import several times slower. Only memory actually used counts.
# No JIT: the server compiles a plan costed above ``jit_above_cost`` (a large import's every
# statement; a small import's never reach it) before running it, about 0.9 s for the 1M-row
# create statement alone, and the work it would speed up is not where those statements spend
# their time (jsonb functions, index inserts, sorts). A 1M-row apply, alternated: 63.8 / 59.4 s
# with it, 58.0 / 56.5 s without.
SESSION_SETTINGS = {"work_mem": "64MB", "temp_buffers": "256MB", "jit": "off"}

# Planner costs under which a statement over a large import reads it on parallel workers beside its
# own backend: their start and each row's hand-over costed at nothing. The planner cannot see what
# the work per row costs (building a row's JSON, normalising a key), and at its default costs keeps
# such a statement in one process while the machine's other core idles. Only a SELECT or a
# CREATE TABLE AS gets workers (an INSERT's SELECT never does), and workers cannot read temp tables.
PARALLEL_AT_ANY_COST = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0", "min_parallel_table_scan_size": "0"}


def parallel_at_any_cost(on: bool) -> str:
    """SQL that sets (``on``) or resets (to the session's own) ``PARALLEL_AT_ANY_COST`` for the rest of
    the transaction: around the one statement that should have workers."""
    if on:
        return "".join(f"SET LOCAL {name} = {value}; " for name, value in PARALLEL_AT_ANY_COST.items())
    return "".join(f"SET LOCAL {name} TO DEFAULT; " for name in PARALLEL_AT_ANY_COST)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection as it is: no reset statement.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: one more round trip per unit of work, four or five per small
    import in each service. Nothing here leaves that state on a session: units of work are
    transactions (advisory locks are ``pg_advisory_xact_lock``, settings ``SET LOCAL``, cursors
    live inside them), nothing LISTENs, and the enricher's temp tables are kept on purpose
    (``enricher.scratch``). The pool still rolls back a transaction left open (``Connection._reset``).
    """


class Database:
    """A pool bound to one schema (``search_path``), so SQL names tables unqualified."""

    # A pool whose connections are all checked out waits for one to come back; never forever.
    ACQUIRE_TIMEOUT_S = 60.0
    CLOSE_TIMEOUT_S = 10.0

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema

    @classmethod
    async def connect(cls, dsn: str, schema: str, *, min_size: int = 1, max_size: int = 5) -> Database:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"search_path": f"{schema},public", "application_name": f"tributary-{schema}",
                             **SESSION_SETTINGS},
        )
        return cls(pool, schema)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.ACQUIRE_TIMEOUT_S)
        except CONNECTION_LOST as exc:  # a fresh connection killed during its set-up
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            yield conn
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            # A dead connection makes any error the outage's, not the message's: the driver's own
            # InterfaceError from the rollback, or a handler's error that wraps the driver's.
            if isinstance(exc, CONNECTION_LOST) or _lost(conn):
                raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise
        finally:
            try:
                await self.pool.release(conn)
            except Exception as exc:
                # The pool terminated the connection it could not reset; the work's own outcome
                # (committed, or the error above) is what the caller needs to hear about.
                log.debug("releasing a connection failed: %r", exc)

    async def close(self, timeout: float | None = None) -> None:
        # A graceful close waits for every checked-out connection; a process that is stopping
        # because its consumer died must not hang on one that never comes back.
        try:
            await asyncio.wait_for(self.pool.close(), timeout=self.CLOSE_TIMEOUT_S if timeout is None else timeout)
        except (asyncio.TimeoutError, asyncpg.exceptions.InterfaceError, OSError) as exc:
            log.warning("closing the pool gracefully failed (%r); terminating its connections", exc)
            self.pool.terminate()
