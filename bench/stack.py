"""A complete stack for the benchmark: its own tansu broker, its own database, the four
services each as its own OS process (``python -m <pkg> serve``), an RSS sampler over
their process trees, a meter of the CPU each process spends, and a watcher of the status
topic that timestamps flow changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Tenant, topics
from tributary_cli import devstack, processes, testing
from tributary_cli.processes import ServiceProcess
from tributary_runtime.settings import ServiceSettings

SERVICES = tuple(processes.SERVICES)
# Stacks created and not yet closed: closed on the way out of an interrupted run (bench.__main__).
OPEN: list[BenchStack] = []


def postgres_server(workdir: Path) -> tuple[str, Path | None]:
    """The server URL the test fixtures would pick (``DATABASE_URL``, 127.0.0.1:5432, or embedded)."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url, None
    if testing._reachable(testing.LOCAL_POSTGRES):
        return testing.LOCAL_POSTGRES, None
    pgdata = workdir / "pgdata"
    return devstack.start_postgres(pgdata), pgdata


# --------------------------------------------------------------------------- memory


def _read_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    out[name] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                found += kids
                todo += kids
        except OSError:
            continue
    return found


class RssSampler:
    """Polls VmRSS of each watched process and its descendants every ``interval`` seconds.

    ``window()`` starts a new measurement window; ``peaks()`` gives the highest RSS of each
    process tree seen in the window. ``hwm()`` is the kernel's own lifetime peak (VmHWM).
    """

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self._peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._lock = threading.Lock()
        self._paused = False

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def window(self) -> None:
        with self._lock:
            self._peaks = {}

    def pause(self, paused: bool = True) -> None:
        """Stop sampling (no import runs, nothing to measure) or go on again."""
        self._paused = paused

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._paused:
                continue
            for name, pid in list(self.pids.items()):
                total = sum(_read_status(p).get("VmRSS", 0) for p in [pid, *_descendants(pid)])
                with self._lock:
                    self._peaks[name] = max(self._peaks.get(name, 0), total)

    def peaks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._peaks)

    def hwm(self) -> dict[str, int]:
        return {name: _read_status(pid).get("VmHWM", 0) for name, pid in self.pids.items()}


# --------------------------------------------------------------------------- CPU

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has spent (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds each part of the stack spends over a window: the services (with their
    descendants), tansu, this benchmark process, and the database's sessions grouped by
    ``application_name``. Read from /proc, so the database server must run on this machine
    (the benchmark's always does); a session that ends inside the window is not counted."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self._start: dict[tuple[str, int], float] = {}

    async def _processes(self) -> dict[tuple[str, int], float]:
        import asyncpg

        found = {(name, pid): _cpu_seconds(pid) + sum(_cpu_seconds(p) for p in _descendants(pid))
                 for name, pid in self.stack.pids().items()}
        found[("tansu", self.stack.broker.pid)] = _cpu_seconds(self.stack.broker.pid)
        found[("benchmark client", os.getpid())] = _cpu_seconds(os.getpid())
        conn = await asyncpg.connect(self.stack.database_url)
        try:
            sessions = await conn.fetch("SELECT pid, application_name FROM pg_stat_activity"
                                        " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        finally:
            await conn.close()
        for r in sessions:
            found[(f"database: {r['application_name'] or 'other'}", r["pid"])] = _cpu_seconds(r["pid"])
        return found

    async def start(self) -> None:
        self._start = await self._processes()

    async def stop(self) -> dict[str, float]:
        """Seconds per part since ``start``, largest first."""
        spent: dict[str, float] = {}
        for (name, pid), seconds in (await self._processes()).items():
            spent[name] = spent.get(name, 0.0) + seconds - self._start.get((name, pid), 0.0)
        return dict(sorted(spent.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------- status watcher


class StatusWatcher:
    """Reads ``flows.status.v1`` from its end (as a dashboard would) and records, per flow, the
    wall-clock time at which each status was first seen and the last snapshot."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.first_seen: dict[str, dict[str, float]] = {}
        self.last: dict[str, dict] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        # Polled as the services poll while messages flow: a shorter wait than theirs would spend
        # the broker's and this process's CPU, which the services under measurement share.
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                          fetch_max_wait_ms=ServiceSettings().fetch_max_wait_ms,
                                          max_partition_fetch_bytes=4 << 20)
        await self._consumer.start()
        parts = self._consumer.partitions_for_topic(topics.FLOW_STATUS)
        for _ in range(100):
            if parts:
                break
            await asyncio.sleep(0.1)
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - topic made by flow-state
            parts = self._consumer.partitions_for_topic(topics.FLOW_STATUS)
        tps = [TopicPartition(topics.FLOW_STATUS, p) for p in sorted(parts or ())]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now = time.time()
            for messages in batches.values():
                for m in messages:
                    if m.value is None:
                        continue
                    payload = json.loads(m.value)["payload"]
                    flow_id = str(payload["flow_id"])
                    self.last[flow_id] = payload
                    self.first_seen.setdefault(flow_id, {}).setdefault(payload["status"], now)
                    if payload["status"] in ("completed", "failed") and flow_id in self._events:
                        self._events[flow_id].set()

    @contextlib.asynccontextmanager
    async def standing_still(self) -> AsyncIterator[None]:
        """No fetches while no import is timed: polling the status topic every few ms costs the broker
        and this process a tenth of a core, which a measurement of something else must not share."""
        assert self._consumer is not None and self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._consumer.pause(*self._consumer.assignment())
        try:
            yield
        finally:
            self._consumer.resume(*self._consumer.assignment())
            self._task = asyncio.create_task(self._run())

    async def wait_terminal(self, flow_id: str, timeout: float) -> tuple[str, float]:
        seen = self.first_seen.get(flow_id, {})
        for status in ("completed", "failed"):
            if status in seen:
                return status, seen[status]
        event = self._events.setdefault(flow_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        seen = self.first_seen[flow_id]
        status = "completed" if "completed" in seen else "failed"
        return status, seen[status]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()


# --------------------------------------------------------------------------- the stack


@dataclass
class BenchStack:
    server_url: str
    database: str
    bootstrap: str
    broker: subprocess.Popen
    workdir: Path
    pgdata: Path | None
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    api_keys: dict[Tenant, str] = field(default_factory=dict)
    sampler: RssSampler | None = None

    @property
    def database_url(self) -> str:
        return testing._with_database(self.server_url, self.database)

    @property
    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "TRIBUTARY_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO")}

    @classmethod
    def create(cls, workdir: Path) -> BenchStack:
        workdir.mkdir(parents=True, exist_ok=True)
        server_url, pgdata = postgres_server(workdir)
        broker, bootstrap = devstack.start_broker(log_path=workdir / "logs" / "tansu.log")
        database = f"tributary_bench_{uuid.uuid4().hex[:8]}"
        testing._create_database(server_url, database)
        stack = cls(server_url, database, bootstrap, broker, workdir, pgdata)
        OPEN.append(stack)
        try:
            processes.migrate(stack.env)
            ports = {n: devstack.free_port() for n in SERVICES}
            stack.procs = {n: ServiceProcess(n, ports[n], stack.env, workdir / "logs") for n in SERVICES}
            for p in stack.procs.values():
                p.start()
            for p in stack.procs.values():
                p.wait_healthy()
        except BaseException:
            stack.close()
            raise
        pids = {n: p.process.pid for n, p in stack.procs.items() if p.process}
        pids["broker (tansu)"] = broker.pid
        stack.sampler = RssSampler(pids).start()
        return stack

    def pids(self) -> dict[str, int]:
        return {n: p.process.pid for n, p in self.procs.items() if p.process}

    def headers(self, tenant: Tenant) -> dict[str, str]:
        if tenant not in self.api_keys:
            self.api_keys[tenant] = processes.create_api_key(
                self.env, str(tenant.client_account_id), str(tenant.engagement_id), "bench")["api_key"]
            headers = {"Authorization": f"Bearer {self.api_keys[tenant]}", "X-User-Id": "bench"}
            processes.wait_for_key(self.procs.values(), headers)
        return {"Authorization": f"Bearer {self.api_keys[tenant]}", "X-User-Id": "bench"}

    def url(self, service: str) -> str:
        return self.procs[service].url

    def close(self) -> None:
        if self in OPEN:
            OPEN.remove(self)
        if self.sampler:
            self.sampler.stop()
        if self.procs:
            processes.stop_all(self.procs)
        if os.environ.get("BENCH_KEEP_DATABASE") != "1":
            try:
                testing._drop_database(self.server_url, self.database)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.broker.terminate()
        try:
            self.broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.broker.kill()
        if self.pgdata is not None:
            devstack.stop_postgres(self.pgdata)
