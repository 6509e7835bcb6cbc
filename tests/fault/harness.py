"""Fault-injection harness: whole stacks of real processes, a seeded kill scheduler,
an import driver that survives its services dying, and per-table checksums that can be
compared across two independent runs.

Why two stacks. Every id the pipeline derives (asset ids, dependency ids) is a hash of
the tenant and the row's identifiers, while import and flow ids are random (ingest draws
them). Running the undisturbed and the disturbed imports for the *same tenant* in two
separate stacks (own tansu broker, own database, own four processes) keeps every derived
id identical, so only import and flow ids have to be mapped: each is replaced by the
label of the file it belongs to (``cmdb:import``), and so is every id derived from them
(child flow ids, deterministic event ids).

Times. Events carry the producer's wall clock in ``occurred_at`` (and ``started_at`` in
some payloads), and the projections copy those times into their tables. Two runs can
never agree on them, but each stored time must be *the time of a specific event*. So a
time is not dropped: it is replaced by the name of the event it equals (``cmdb:
ValidationCompleted@``), read from the stack's own flow timeline. A time that matches no
event shows up as itself and makes the comparison fail. Only columns written from a
service's clock at commit time (``now()``, ``datetime.now()``) are left out; each table
spec says which and why.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import Tenant, deterministic_event_id, topics
from tributary_cli import devstack, processes, testing
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

from datagen import ImportFile

SERVICES = tuple(processes.SERVICES)  # ingest, validator, enricher, flow-state
# Consumer groups, the schema holding their offsets, and the topics they read.
GROUPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "validator": ("validator", "validator", (topics.RECORDS, topics.EVENTS)),
    "enricher": ("enricher", "enricher", (topics.VALIDATED_RECORDS, topics.EVENTS)),
    "flow-state": ("flow-state", "flow_state", (topics.EVENTS,)),
}
TERMINAL = ("completed", "failed")
LIFECYCLE_TYPES = ("ImportUploaded", "ValidationCompleted", "EnrichmentCompleted", "ImportFailed")
# Stage keys the services use for deterministic ids ("" for the three stage markers).
STAGE_KEYS = ("", "validation", "enrichment", "revert")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_range(name: str, default: tuple[float, float]) -> tuple[float, float]:
    value = os.environ.get(name)
    if not value:
        return default
    lo, hi = (float(x) for x in value.split(","))
    return lo, hi


@dataclass(frozen=True)
class FaultSettings:
    seed: int
    rows: int
    kills: int
    gap_s: tuple[float, float]
    restart_s: tuple[float, float]


@dataclass
class Run:
    """A finished run of every file in one stack."""

    stack: Stack
    imports: list[Imported]
    seconds: float
    checksums: dict[str, Checksum]
    completions: dict[str, dict[str, Any]]


# --------------------------------------------------------------------------- stacks


def postgres_server(workdir: Path) -> tuple[str, Path | None]:
    """A PostgreSQL server URL (as the session fixtures pick one) and the data dir when we started it."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    if testing._reachable(testing.LOCAL_POSTGRES):
        return testing.LOCAL_POSTGRES, None
    pgdata = workdir / "pgdata"
    return devstack.start_postgres(pgdata), pgdata


@dataclass
class Stack:
    """One complete, isolated Tributary: its own broker, its own database, its four processes."""

    name: str
    server_url: str
    database: str
    bootstrap: str
    broker: subprocess.Popen[bytes]
    log_dir: Path
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    api_keys: dict[Tenant, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return testing._with_database(self.server_url, self.database)

    @property
    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "TRIBUTARY_LOG_LEVEL": "INFO"}

    @classmethod
    def create(cls, name: str, server_url: str, log_dir: Path) -> Stack:
        log_dir.mkdir(parents=True, exist_ok=True)
        broker, bootstrap = devstack.start_broker(log_path=log_dir / "tansu.log")
        database = f"tributary_fault_{name}_{uuid.uuid4().hex[:8]}"
        testing._create_database(server_url, database)
        stack = cls(name, server_url, database, bootstrap, broker, log_dir)
        processes.migrate(stack.env)
        ports = {n: devstack.free_port() for n in processes.SERVICES}
        stack.procs = {n: ServiceProcess(n, ports[n], stack.env, log_dir) for n in processes.SERVICES}
        return stack

    def start(self, names: Iterable[str] = SERVICES) -> None:
        names = list(names)
        for n in names:
            self.procs[n].start()
        for n in names:
            self.procs[n].wait_healthy()

    def stop(self, names: Iterable[str] = SERVICES) -> None:
        processes.stop_all([self.procs[n] for n in names])

    def close(self) -> None:
        self.stop()
        testing._drop_database(self.server_url, self.database)
        self.broker.terminate()
        try:
            self.broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.broker.kill()

    def client(self, tenant: Tenant) -> TributaryClient:
        """A client holding an API key of ``tenant`` (created once per stack; the services are running)."""
        if tenant not in self.api_keys:
            self.api_keys[tenant] = processes.create_api_key(
                self.env, str(tenant.client_account_id), str(tenant.engagement_id), "fault-harness")["api_key"]
        p = self.procs
        client = TributaryClient(p["ingest"].url, p["flow-state"].url, tenant, user_id="fault-harness",
                                 validator_url=p["validator"].url, enricher_url=p["enricher"].url, timeout=300,
                                 api_key=self.api_keys[tenant])
        processes.wait_for_key(p.values(), client.headers)
        return client

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)


# --------------------------------------------------------------------------- driving imports


@dataclass(frozen=True)
class Imported:
    label: str
    category: str
    import_id: uuid.UUID
    flow_id: uuid.UUID
    upload_attempts: int  # requests until one was answered (interrupted ones and refused connections included)
    status: str
    seconds: float


class Driver:
    """Imports files one after another through ingest's HTTP API, surviving kills.

    The next file is uploaded once the previous import has settled: the inventory depends
    on the order imports are enriched in (an app-discovery edge to an unknown host is
    parked, to a known one it is linked), so both runs must apply them in the same order.
    Kills land in the middle of every stage anyway, and the flows of several files never
    overlap, which keeps each kill attributable to one import in the report.
    """

    def __init__(self, stack: Stack, tenant: Tenant, *, timeout_s: float = 1200) -> None:
        self.stack = stack
        self.client = stack.client(tenant)
        self.timeout_s = timeout_s
        self.current: tuple[str, str, uuid.UUID | None] = ("", "idle", None)  # (file, step, flow id)
        self.finished = threading.Event()
        self.file_index = -1  # the file being imported
        self.attempt: tuple[str, int, float] | None = None  # the upload request in flight: (file, attempt, since)

    def upload(self, f: ImportFile) -> tuple[dict[str, Any], int]:
        """Upload until ingest answers; a kill mid-request is retried under the same Idempotency-Key,
        which binds the retry to the import id (and flow id) of the interrupted attempt."""
        key = f"fault-{f.label}"
        attempts = 0
        deadline = time.monotonic() + self.timeout_s
        while True:
            attempts += 1
            self.attempt = (f.label, attempts, time.monotonic())
            try:
                response = self.client.upload(f.path, f.category, idempotency_key=key, filename=f.path.name)
            except httpx.HTTPError:
                response = None
            finally:
                self.attempt = None
            if response is not None and response.status_code in (200, 202):
                return response.json(), attempts
            if response is not None and response.status_code < 500:
                raise AssertionError(f"upload of {f.label} refused: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"upload of {f.label} did not succeed in {self.timeout_s}s")
            time.sleep(0.2)

    def wait_settled(self, import_id: uuid.UUID, flow_id: uuid.UUID, label: str) -> str:
        """Until the flow is terminal *and* the enricher's effect of a completed import is committed.

        Polls the tables directly: the query API dies with flow-state, the database does not.
        The flow alone is not enough before the next (dependent) import: the enricher publishes
        EnrichmentCompleted before its transaction commits (publish, then commit), so a kill in
        between shows a completed flow whose inventory is rolled back and only re-applied after
        the restart, possibly after the next import's rows (see the report of this harness).
        """
        deadline = time.monotonic() + self.timeout_s
        with self.stack.connect() as conn:
            while time.monotonic() < deadline:
                row = conn.execute("SELECT status FROM flow_state.master_flows WHERE flow_id = %s",
                                   (flow_id,)).fetchone()
                if row is not None and row[0] in TERMINAL:
                    if row[0] != "completed":
                        return row[0]
                    applied = conn.execute("SELECT status FROM enricher.staged_imports WHERE import_id = %s",
                                           (import_id,)).fetchone()
                    if applied is not None and applied[0] == "applied":
                        return row[0]
                time.sleep(0.1)
        raise TimeoutError(f"import {label} ({import_id}, flow {flow_id}) not settled after {self.timeout_s}s:\n"
                           + diagnose(self.stack))

    def analyze_inventory(self) -> None:
        """Give the planner statistics of the inventory the previous import just filled.

        WORKAROUND, not part of what is tested: the enricher joins its temp tables to
        ``asset_identifiers``; until autovacuum has analysed that table (autovacuum_naptime is a
        minute) the planner takes a tenant for one identifier and resolves app-discovery
        endpoints with a nested loop over all identifiers per endpoint: 159 s for 2,000
        endpoints against 10,000 identifiers instead of 0.5 s, hours at 20,000 rows (reported
        separately). Analysing here stands in for autovacuum having run, in both runs alike.
        """
        with self.stack.connect() as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'enricher'")]
            conn.execute(f"ANALYZE {', '.join(tables)}")

    def run(self, files: list[ImportFile]) -> list[Imported]:
        done = []
        for index, f in enumerate(files):
            started = time.monotonic()
            self.file_index = index
            self.current = (f.label, "upload", None)
            receipt, attempts = self.upload(f)
            import_id, flow_id = uuid.UUID(receipt["import_id"]), uuid.UUID(receipt["flow_id"])
            self.current = (f.label, "processing", flow_id)
            status = self.wait_settled(import_id, flow_id, f.label)
            self.analyze_inventory()
            done.append(Imported(f.label, f.category, import_id, flow_id, attempts, status,
                                 round(time.monotonic() - started, 1)))
            print(f"  {f.label}: {status} after {done[-1].seconds}s ({attempts} upload requests)")
        self.current = ("", "idle", None)
        self.finished.set()
        return done

    def moment(self) -> str:
        """What the pipeline is doing now: the file and its step, or its flow's phase as projected."""
        label, step, flow_id = self.current
        if flow_id is None:
            return f"{label}: {step}" if label else step
        try:
            with psycopg.connect(self.stack.database_url, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT current_phase, status FROM flow_state.master_flows WHERE flow_id = %s",
                                   (flow_id,)).fetchone()
        except psycopg.Error:
            row = None
        return f"{label}: {row[0]} ({row[1]})" if row else f"{label}: {step}"


def diagnose(stack: Stack) -> str:
    """Where a stuck pipeline stands: staged imports per consumer, flows, stored offsets vs end offsets."""
    lines = []
    with stack.connect() as conn:
        for schema in ("validator", "enricher"):
            rows = conn.execute(f"SELECT import_id, status, expected_batches, (SELECT count(*) FROM {schema}"
                                f".staged_batches b WHERE b.import_id = s.import_id) FROM {schema}.staged_imports s"
                                ).fetchall()
            lines.append(f"{schema}.staged_imports: {rows}")
        lines.append("flows: " + str(conn.execute(
            "SELECT flow_id, status, current_phase, version FROM flow_state.master_flows").fetchall()))
    lines.append("lag: " + str(lag(stack)))
    return "\n".join(lines)


# --------------------------------------------------------------------------- killing


@dataclass(frozen=True)
class Kill:
    """One planned kill: wait ``gap_s`` after the previous one, SIGKILL ``service``, restart it after
    ``restart_after_s`` (0: at once).

    Ingest only works while a file is being uploaded, a few seconds per file; a kill of ingest
    at a uniformly random moment would nearly always hit it idle. So the first few ingest kills
    are ``aimed``: they wait for the next upload to begin and fire ``into_upload_s`` after that
    (an interrupted upload is retried, which opens the next window). The later ones fire at
    their moment like every other kill, so that waiting for uploads cannot hold back the rest.
    """

    index: int
    gap_s: float
    service: str
    restart_after_s: float
    into_upload_s: float
    aimed: bool = False
    file_index: int = 0  # the import it belongs to (plain kills are spread evenly over the files)


def kill_schedule(seed: int, count: int, *, gap_s: tuple[float, float], restart_s: tuple[float, float],
                  files: int = 1, services: tuple[str, ...] = SERVICES, aimed_ingest: int = 3) -> list[Kill]:
    """A seeded schedule of ``count`` kills in which every service is killed at least once.

    Plain kills come in ``files`` consecutive blocks, one per import: a block starts when its
    import does (and carries over to the next import if its own ends first), so every
    import is hit, not only the first one.
    """
    if count < len(services):
        raise ValueError(f"{count} kills cannot cover {len(services)} services")
    rng = random.Random(seed)
    victims = list(services) + [rng.choice(services) for _ in range(count - len(services))]
    rng.shuffle(victims)
    kills = []
    for i, victim in enumerate(victims):
        aimed = victim == "ingest" and sum(k.service == "ingest" for k in kills) < aimed_ingest
        kills.append(Kill(i + 1, round(rng.uniform(*gap_s), 3), victim,
                          0.0 if rng.random() < 0.5 else round(rng.uniform(*restart_s), 3),
                          # An upload of the test's files takes about half a second: aimed later, the kill
                          # found no upload in flight and never fired.
                          round(rng.uniform(0.02, 0.3), 3), aimed))
    plain = [k for k in kills if not k.aimed]
    block = {k.index: i * files // max(len(plain), 1) for i, k in enumerate(plain)}
    return [replace(k, file_index=block.get(k.index, 0)) for k in kills]


def describe(schedule: list[Kill]) -> str:
    return "; ".join(f"#{k.index} {'' if k.aimed else f'file {k.file_index} '}+{k.gap_s}s {k.service}"
                     + (f" {k.into_upload_s}s into an upload" if k.aimed else "")
                     + (f" restart+{k.restart_after_s}s" if k.restart_after_s else " restart at once")
                     for k in schedule)


@dataclass(frozen=True)
class Executed:
    kill: Kill
    at_s: float
    during: str


class KillScheduler(threading.Thread):
    """Runs a kill schedule against a stack's processes while the driver imports.

    The plain kills run in schedule order: wait the gap, wait until the victim is up and
    ready (a kill interrupts a process that was working, never one still starting), SIGKILL
    it, restart it at once or later. Aimed ingest kills fire in between, as soon as an upload
    request has been in flight for their ``into_upload_s`` (one per upload attempt).
    Everything happens in this one thread, so no process is touched from two threads.
    """

    def __init__(self, stack: Stack, schedule: list[Kill], driver: Driver,
                 log: Callable[[str], None] = print) -> None:
        super().__init__(name="kill-scheduler", daemon=True)
        self.stack = stack
        self.plain = [k for k in schedule if not k.aimed]
        self.aimed = [k for k in schedule if k.aimed]
        self.driver = driver
        self.log = log
        self.executed: list[Executed] = []
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()
        self._pending: dict[str, float] = {}  # service -> monotonic time of its restart
        self._aimed_at: set[tuple[str, int]] = set()  # upload attempts already hit
        self._t0 = 0.0

    def stop(self) -> None:
        self._stop_requested.set()
        self.join(timeout=180)

    def _over(self) -> bool:
        return self._stop_requested.is_set() or self.driver.finished.is_set()

    def _ready(self, service: str) -> bool:
        proc = self.stack.procs[service]
        if service in self._pending or proc.process is None or proc.process.poll() is not None:
            return False
        try:
            return httpx.get(proc.url + "/ready", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def _sleep_until(self, when: float, until: Callable[[], bool] | None = None) -> bool:
        """Sleep until ``when`` or until ``until()`` holds, meanwhile restarting services as they fall due
        and firing aimed kills; False once the imports are over or a stop was asked for."""
        while True:
            now = time.monotonic()
            for s in [s for s, t in self._pending.items() if t <= now]:
                self._restart(s)
            self._fire_aimed()
            if self._over():
                return False
            if now >= when or (until is not None and until()):
                return True
            wake = min([when, *self._pending.values()])
            if until is not None:
                wake = min(wake, now + 0.1)
            if self.aimed and self.driver.attempt is not None:
                wake = min(wake, now + 0.01)
            self._stop_requested.wait(max(0.0, wake - time.monotonic()))

    def _fire_aimed(self) -> None:
        attempt = self.driver.attempt
        if not self.aimed or attempt is None or self._over():
            return
        label, n, since = attempt
        proc = self.stack.procs["ingest"]
        if ((label, n) in self._aimed_at or "ingest" in self._pending or proc.process is None
                or proc.process.poll() is not None or time.monotonic() - since < self.aimed[0].into_upload_s):
            return
        self._aimed_at.add((label, n))
        self._kill(self.aimed.pop(0), f"{label}: upload attempt {n}, {time.monotonic() - since:.2f}s in")

    def _restart(self, service: str) -> None:
        del self._pending[service]
        self.stack.procs[service].start()

    def _kill(self, k: Kill, during: str) -> None:
        proc = self.stack.procs[k.service]
        proc.kill(signal.SIGKILL)
        at = time.monotonic() - self._t0
        self.executed.append(Executed(k, at, during))
        self.log(f"  kill #{k.index:>2} t={at:7.2f}s SIGKILL {k.service:<10} during [{during}],"
                 f" restart {'at once' if not k.restart_after_s else f'after {k.restart_after_s}s'}")
        if k.restart_after_s:
            self._pending[k.service] = time.monotonic() + k.restart_after_s
        else:
            proc.start()

    def run(self) -> None:
        try:
            self._t0 = time.monotonic()
            next_at = self._t0
            file_index = 0
            for k in self.plain:
                if k.file_index > file_index:  # the next import's block: it starts when that import does
                    if not self._sleep_until(time.monotonic() + self.driver.timeout_s,
                                             until=lambda: self.driver.file_index >= k.file_index):
                        break
                    file_index = k.file_index
                    next_at = max(next_at, time.monotonic())
                next_at += k.gap_s
                if not self._sleep_until(next_at):
                    break
                if k.service in self._pending:
                    self._restart(k.service)
                # The probe that saw it ready decides: a second one may time out while the victim is
                # busy checking a chunk in its event loop, which is no reason to give up on it.
                seen_ready = False

                def victim_ready(service: str = k.service) -> bool:
                    nonlocal seen_ready
                    seen_ready = self._ready(service)
                    return seen_ready

                if not self._sleep_until(time.monotonic() + 180, until=victim_ready):
                    break
                if not seen_ready:
                    raise TimeoutError(f"{k.service} not ready 180s after its restart")
                self._kill(k, self.driver.moment())
                next_at = max(next_at, time.monotonic())
            while self.aimed and self._sleep_until(time.monotonic() + 1):
                pass  # aimed kills left: they wait for the next upload
        except BaseException as exc:  # surfaced by the test after join
            self.error = exc
        finally:
            for s in list(self._pending):
                self._restart(s)


# --------------------------------------------------------------------------- offsets and topics


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _true_ends(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The offset after each partition's last message.

    Not ``end_offsets()`` alone: tansu (0.6) answers ListOffsets(latest) with the base offset
    of the partition's last record *batch* plus one, so a last batch of several messages
    hides all but its first (7 messages in batches of 4 and 3: 5, not 7). The high watermark
    in a fetch response is right, so fetch once from just before the listed end and take it.
    """
    listed = await consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(listed[tp] - 1, 0))
    deadline = time.monotonic() + 30
    while any(consumer.highwater(tp) is None for tp in tps):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no high watermark for {[tp for tp in tps if consumer.highwater(tp) is None]}")
        await consumer.getmany(*[tp for tp in tps if consumer.highwater(tp) is None], timeout_ms=200)
    return {tp: max(listed[tp], consumer.highwater(tp)) for tp in tps}


async def _end_offsets(bootstrap: str, names: Iterable[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await _true_ends(consumer, tps) if tps else {}
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await consumer.stop()


def end_offsets(stack: Stack, names: Iterable[str]) -> dict[tuple[str, int], int]:
    return _run(_end_offsets(stack.bootstrap, list(names)))


def stored_offsets(stack: Stack) -> dict[tuple[str, str, int], int]:
    """Every consumer group's stored next offsets: (group, topic, partition) -> offset."""
    out = {}
    with stack.connect() as conn:
        for group, schema, _ in GROUPS.values():
            for topic, partition, off in conn.execute(
                    f"SELECT topic, partition, next_offset FROM {schema}.consumer_offsets WHERE group_id = %s",
                    (group,)).fetchall():
                out[(group, topic, partition)] = off
    return out


def lag(stack: Stack) -> dict[tuple[str, str, int], int]:
    """Messages each group has not applied yet, per partition (only partitions with a lag)."""
    stored = stored_offsets(stack)
    ends = end_offsets(stack, {t for _, _, ts in GROUPS.values() for t in ts})
    behind = {}
    for group, _, group_topics in GROUPS.values():
        for (topic, partition), end in ends.items():
            if topic in group_topics and end > stored.get((group, topic, partition), 0):
                behind[(group, topic, partition)] = end - stored.get((group, topic, partition), 0)
    return behind


def wait_caught_up(stack: Stack, timeout_s: float = 180) -> None:
    """Until every consumer group has applied every message on its topics (and the lag stays zero)."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if not lag(stack) else 0
        if quiet >= 3:  # zero lag three times in a row: nothing in flight produced more work
            return
        time.sleep(0.5)
    raise TimeoutError(f"consumers did not catch up in {timeout_s}s:\n{diagnose(stack)}")


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.value) if self.value else {}

    @property
    def event_type(self) -> str | None:
        for k, v in self.headers:
            if k == "event_type":
                return v.decode()
        return None


async def _read_topic(bootstrap: str, topic: str) -> list[Message]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        ends = await _true_ends(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Message] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, msgs in batches.items():
                for m in msgs:
                    if m.offset < ends[tp]:
                        out.append(Message(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ())))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        await consumer.stop()


def read_topic(stack: Stack, topic: str) -> list[Message]:
    """Every message on ``topic`` up to its current end."""
    return _run(_read_topic(stack.bootstrap, topic))


async def _produce(bootstrap: str, messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(m.topic, key=m.key, value=m.value, headers=list(m.headers),
                                       partition=m.partition) for m in messages]
        for fut in futures:
            await fut
    finally:
        await producer.stop()


def produce(stack: Stack, messages: list[Message]) -> None:
    """Publish the given messages again: same topic, partition, key, value and headers."""
    _run(_produce(stack.bootstrap, messages))


# --------------------------------------------------------------------------- canonical form and checksums

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)$")


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class Names:
    """What run-specific values mean: ids of a stack's imports and the times of its events, by name."""

    ids: dict[str, str] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, stack: Stack, imports: list[Imported]) -> Names:
        from flow_state.projection import child_flow_id  # the projection's own derivation

        names = cls()
        for imp in imports:
            names.ids[str(imp.import_id)] = f"{imp.label}:import"
            names.ids[str(imp.flow_id)] = f"{imp.label}:flow"
            names.ids[str(child_flow_id(imp.flow_id))] = f"{imp.label}:child-flow"
            for event_type in (*LIFECYCLE_TYPES, "ValidatedBatch", "RecordBatch"):
                for key in STAGE_KEYS:
                    eid = deterministic_event_id(imp.import_id, event_type, key)
                    names.ids[str(eid)] = f"{imp.label}:{event_type}[{key}]"
        with stack.connect() as conn:
            for imp in imports:
                for event_type, occurred_at, detail in conn.execute(
                        "SELECT event_type, occurred_at, detail FROM flow_state.flow_timeline"
                        " WHERE flow_id = %s AND event_type <> 'PhaseProgress' ORDER BY seq", (imp.flow_id,)):
                    names.times.setdefault(_utc(occurred_at), f"{imp.label}:{event_type}@")
                    if detail.get("started_at"):
                        started = _utc(datetime.fromisoformat(detail["started_at"]))
                        names.times.setdefault(started, f"{imp.label}:{event_type}.started_at")
        return names

    def canon(self, value: Any) -> Any:
        """The value with run-specific ids and event times replaced by their names."""
        if isinstance(value, dict):
            return {k: self.canon(v) for k, v in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [self.canon(v) for v in value]
        if isinstance(value, uuid.UUID):
            return self.ids.get(str(value), str(value))
        if isinstance(value, datetime):
            at = _utc(value)
            return self.times.get(at, at)
        if isinstance(value, str):
            if _ISO.match(value):
                at = _utc(datetime.fromisoformat(value))
                return self.times.get(at, at)
            return _UUID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), value)
        if isinstance(value, float | int | bool) or value is None:
            return value
        return str(value)  # Decimal, inet, ...


def drop_keys(value: Any, keys: frozenset[str]) -> Any:
    """A JSON value without ``keys`` at any depth."""
    if isinstance(value, dict):
        return {k: drop_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [drop_keys(v, keys) for v in value]
    return value


@dataclass(frozen=True)
class TableSpec:
    """How one table is compared: the columns, a total order, and the rows belonging to one import.

    ``scope`` selects the rows: ``import`` (``import_id = %s``), ``flow`` (``flow_id = %s``) or
    ``tenant`` (``client_account_id = %s``). ``drop`` removes keys from JSON columns that carry
    timing rather than content. ``left_out`` documents the columns not compared.
    """

    table: str
    columns: tuple[str, ...]
    order_by: str
    scope: str
    where: str = ""
    drop: frozenset[str] = frozenset()
    left_out: str = ""

    def query(self) -> str:
        param = {"import": "import_id", "flow": "flow_id", "tenant": "client_account_id"}[self.scope]
        extra = f" AND ({self.where})" if self.where else ""
        return (f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {param} = %s{extra}"
                f" ORDER BY {self.order_by}")


_STAGING = (
    TableSpec("{s}.staged_imports", ("import_id", "client_account_id", "engagement_id", "flow_id", "marker",
                                     "expected_batches", "checksum", "status"), "import_id", "import",
              left_out="created_at, finished_at: now() of the committing transaction"),
    TableSpec("{s}.staged_batches", ("import_id", "batch_seq", "columns", "row_count", "digest"), "batch_seq",
              "import"),
    TableSpec("{s}.staged_rows", ("import_id", "row_number", "batch_seq", "cells"), "row_number", "import"),
)

TABLES: tuple[TableSpec, ...] = (
    # ingest
    TableSpec("ingest.data_imports",
              ("import_id", "flow_id", "client_account_id", "engagement_id", "user_id", "category", "filename",
               "file_format", "content_type", "size_bytes", "sha256", "record_count", "batch_count", "checksum",
               "source", "validate_only", "status", "idempotency_key"), "import_id", "import",
              left_out="created_at, uploaded_at: ingest's clock when the request came in"),
    TableSpec("ingest.idempotency_keys", ("client_account_id", "engagement_id", "key", "import_id"), "key",
              "import", left_out="created_at: now()"),
    # validator
    *(TableSpec(t.table.format(s="validator"), t.columns, t.order_by, t.scope, left_out=t.left_out)
      for t in _STAGING),
    TableSpec("validator.row_issues",
              ("import_id", "row_number", "column_name", "rule_id", "agent", "severity", "message", "value"),
              "row_number NULLS FIRST, column_name NULLS FIRST, rule_id, message, value", "import"),
    TableSpec("validator.validation_runs",
              ("import_id", "client_account_id", "engagement_id", "category", "verdict", "record_count",
               "valid_count", "invalid_count", "error_count", "warning_count", "field_mapping", "failure_code",
               "failure_reason", "validate_only", "mapping", "agent_results", "findings_by_rule", "max_error_rate"),
              "import_id", "import",
              left_out="started_at, finished_at: the validator's clock in the attempt that committed (an attempt"
                       " killed earlier may have published its own started_at first)"),
    # enricher
    *(TableSpec(t.table.format(s="enricher"), t.columns, t.order_by, t.scope, left_out=t.left_out)
      for t in _STAGING),
    TableSpec("enricher.enrichment_runs",
              ("import_id", "client_account_id", "engagement_id", "category", "counts", "applied_at", "source"),
              "import_id", "import", drop=frozenset({"started_at"}),
              left_out="counts.started_at: the enricher's clock in the attempt that committed"),
    TableSpec("enricher.assets",
              ("asset_id", "client_account_id", "engagement_id", "name", "asset_type", "hostname", "fqdn",
               "ip_address", "mac_address", "serial_number", "external_id", "source", "environment", "criticality",
               "operating_system", "attributes", "performance", "classification", "compliance_flags", "provenance",
               "is_placeholder", "created_by_import", "last_import_id", "created_at", "updated_at"),
              "asset_id", "tenant"),
    TableSpec("enricher.asset_claims",
              ("asset_id", "import_id", "category", "source", "asserted_at", "row_number", "claims"),
              "asset_id", "import"),
    TableSpec("enricher.asset_identifiers", ("client_account_id", "engagement_id", "kind", "value", "asset_id"),
              "kind, value, asset_id", "tenant"),
    TableSpec("enricher.asset_dependencies",
              ("dependency_id", "client_account_id", "engagement_id", "source_asset_id", "target_asset_id", "port",
               "protocol", "dependency_type", "criticality", "confidence", "provenance", "created_by_import",
               "last_import_id", "created_at", "updated_at"), "dependency_id", "tenant"),
    TableSpec("enricher.dependency_claims",
              ("dependency_id", "import_id", "asserted_at", "row_number", "source_ref", "target_ref", "source_type",
               "target_type", "claims"), "dependency_id", "import"),
    TableSpec("enricher.parked_dependencies",
              ("import_id", "row_number", "client_account_id", "engagement_id", "asserted_at", "source_ref",
               "target_ref", "source_type", "target_type", "port", "protocol", "claims", "missing"),
              "row_number", "import"),
    TableSpec("enricher.duplicate_candidates",
              ("import_id", "row_number", "client_account_id", "engagement_id", "category", "matched_on", "reason",
               "asset_ids", "identifiers", "claims", "status"), "row_number", "import"),
    # flow-state
    TableSpec("flow_state.master_flows",
              ("flow_id", "client_account_id", "engagement_id", "user_id", "flow_type", "flow_name", "status",
               "current_phase", "progress_percentage", "configuration", "import_category", "created_at",
               "completed_at"), "flow_id", "flow",
              left_out="version, updated_at: count and latest time of all events applied, PhaseProgress included;"
                       " progress is emitted by the clock (at most once a second) and a killed validation's"
                       " progress events stay on the topic"),
    TableSpec("flow_state.child_flows",
              ("id", "flow_id", "master_flow_id", "client_account_id", "engagement_id", "user_id", "flow_name",
               "status", "current_phase", "progress_percentage", "phase_state", "agent_state", "data_import_id",
               "import_category", "data_import_completed", "data_validation_completed", "field_mapping_completed",
               "asset_enrichment_completed", "error_message", "created_at", "completed_at"), "id", "flow",
              drop=frozenset({"rows_done", "rows_total"}),
              left_out="updated_at (as master_flows); phase_state.*.rows_done/rows_total: the last PhaseProgress"),
    TableSpec("flow_state.processing_steps",
              ("flow_id", "step_name", "step_order", "status", "description", "records_processed", "output",
               "error_message", "started_at", "completed_at"), "step_order", "flow"),
    TableSpec("flow_state.flow_timeline",
              ("flow_id", "event_id", "event_type", "phase", "producer", "occurred_at", "detail"), "seq", "flow",
              where="event_type <> 'PhaseProgress'",
              left_out="seq and PhaseProgress entries: their number depends on the clock (see master_flows)"),
)


@dataclass(frozen=True)
class Checksum:
    rows: int
    digest: str
    sample: tuple[Any, ...]  # the first canonical rows, to show what differs

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checksum) and (self.rows, self.digest) == (other.rows, other.digest)

    def __hash__(self) -> int:
        return hash((self.rows, self.digest))


def table_checksum(conn: psycopg.Connection, spec: TableSpec, param: uuid.UUID, names: Names) -> Checksum:
    """sha256 over the canonical JSON of every row, in the spec's order."""
    h = sha256()
    rows = 0
    sample = []
    with conn.cursor(name=f"checksum_{uuid.uuid4().hex[:8]}") as cur:
        cur.itersize = 5000
        cur.execute(spec.query(), (param,))
        for record in cur:
            row = [drop_keys(v, spec.drop) if spec.drop else v for v in record]
            text = json.dumps(names.canon(dict(zip(spec.columns, row, strict=True))), sort_keys=True,
                              separators=(",", ":"), default=str)
            h.update(text.encode())
            h.update(b"\n")
            rows += 1
            if len(sample) < 3:
                sample.append(text)
    return Checksum(rows, h.hexdigest(), tuple(sample))


def checksums(stack: Stack, imports: list[Imported], tenant: Tenant) -> dict[str, Checksum]:
    """Every compared table of one stack: per import (``table[label]``) or per tenant (``table``)."""
    names = Names.of(stack, imports)
    out: dict[str, Checksum] = {}
    with psycopg.connect(stack.database_url) as conn:  # named cursors need a transaction
        for spec in TABLES:
            if spec.scope == "tenant":
                out[spec.table] = table_checksum(conn, spec, tenant.client_account_id, names)
                continue
            for imp in imports:
                param = imp.flow_id if spec.scope == "flow" else imp.import_id
                out[f"{spec.table}[{imp.label}]"] = table_checksum(conn, spec, param, names)
    return out


def diff_checksums(expected: dict[str, Checksum], actual: dict[str, Checksum]) -> list[str]:
    problems = []
    for name in sorted(set(expected) | set(actual)):
        e, a = expected.get(name), actual.get(name)
        if e != a:
            problems.append(f"{name}: expected {e.rows if e else '-'} rows {e.digest[:12] if e else ''},"
                            f" got {a.rows if a else '-'} rows {a.digest[:12] if a else ''}\n"
                            f"    expected first rows: {e.sample if e else ()}\n"
                            f"    actual first rows:   {a.sample if a else ()}")
    return problems


def duplicate_rows(stack: Stack) -> dict[str, int]:
    """Rows that occur more than once in tables without a primary key (the others cannot hold any)."""
    with stack.connect() as conn:
        n = conn.execute("SELECT count(*) - count(DISTINCT (import_id, row_number, column_name, rule_id, agent,"
                         " severity, message, value)) FROM validator.row_issues").fetchone()[0]
    return {"validator.row_issues": n} if n else {}


# --------------------------------------------------------------------------- completion events


def lifecycle_events(stack: Stack, imports: list[Imported]) -> dict[str, list[dict[str, Any]]]:
    """The lifecycle events of each import as they are on the topic (copies included), by file label."""
    by_import = {str(i.import_id): i.label for i in imports}
    out: dict[str, list[dict[str, Any]]] = {i.label: [] for i in imports}
    for m in read_topic(stack, topics.EVENTS):
        label = by_import.get(m.key.decode() if m.key else "")
        if label is not None and m.event_type in LIFECYCLE_TYPES:
            out[label].append(m.event)
    return out


COMPLETION_VOLATILE = frozenset({"started_at"})


def completion_summary(events: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per file and completion type: how many distinct event ids, how many copies, and the payload
    (without its clock-read started_at). Raises when two copies of one event disagree on content."""
    out: dict[str, dict[str, Any]] = {}
    for label, evs in events.items():
        for event_type in LIFECYCLE_TYPES:
            copies = [e for e in evs if e["event_type"] == event_type]
            payloads = {json.dumps(drop_keys(e["payload"], COMPLETION_VOLATILE), sort_keys=True) for e in copies}
            if len(payloads) > 1:
                raise AssertionError(f"{label}: copies of {event_type} differ in content: {sorted(payloads)}")
            out[f"{label}:{event_type}"] = {
                "event_ids": len({e["event_id"] for e in copies}),
                "payload": json.loads(payloads.pop()) if payloads else None,
            }
    return out


def count_by_type(messages: list[Message]) -> Counter[str]:
    return Counter(m.event_type or "?" for m in messages)
