"""Where the time goes: py-spy on every service process, pg_stat_activity sampled for the database.

py-spy (a locked development dependency) samples each service's Python
stacks without touching the service (``--nonblocking``). Its collapsed output is reduced to
the functions that hold the most samples, by self time and inclusive of callees (project code
only for the latter). Without py-spy only the database side is profiled.

The database side: ``pg_stat_activity`` polled every 50 ms for this database; each active
backend counts one sample for its (service, statement) — the poor man's pg_stat_statements,
which needs no server configuration.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

# py-spy names files relative to their import root: the project's packages start with these.
PROJECT_PACKAGES = ("ingest/", "validator/", "enricher/", "flow_state/", "tributary_runtime/", "tributary_cli/",
                    "contracts/")
# Frames under which every sample sits (the process's main): left out of the inclusive list.
ROOT_FRAMES = ("<module> (", "service_main (", "EventConsumer.run (")
# A sample whose innermost frame is one of these is the event loop waiting (for the database or the broker).
IDLE_LEAVES = ("EpollSelector.select", "select (selectors.py", "Condition.wait", "Queue.get")


def py_spy_binary() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


class PySpy:
    def __init__(self, pids: dict[str, int], out_dir: Path, rate: int = 67) -> None:
        self.binary = py_spy_binary()
        self.pids, self.out_dir, self.rate = pids, out_dir, rate
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> bool:
        if not self.binary:
            return False
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.out_dir / f"{name}.collapsed"
            self.procs[name] = subprocess.Popen(
                [self.binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--nonblocking",
                 "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=open(self.out_dir / f"{name}.py-spy.log", "wb"),
                start_new_session=True)
        return True

    def stop(self) -> dict[str, Any]:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        results = {}
        for name, p in self.procs.items():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            path = self.out_dir / f"{name}.collapsed"
            if path.exists():
                results[name] = summarize(path)
        return results


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:]*)(?::(?P<line>\d+))?\)$")


def _frame_name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m.group("file")
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({file})"


def _is_project(frame: str) -> bool:
    m = _FRAME.match(frame)
    return bool(m) and m.group("file").startswith(PROJECT_PACKAGES)


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Samples (all, and busy: not the event loop waiting); hottest functions by self samples; hottest
    project functions including callees. Percentages are of the busy samples."""
    total = idle = 0
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        # py-spy puts "process ..." / "thread ..." pseudo-frames first.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        leaf = _frame_name(frames[-1])
        if leaf.startswith(IDLE_LEAVES):
            idle += n
            continue
        total += n
        self_counts[leaf] += n
        for name in {_frame_name(f) for f in frames if _is_project(f) and not f.startswith(ROOT_FRAMES)}:
            inclusive[name] += n

    def pct(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": k, "samples": v, "pct": round(100 * v / max(total, 1), 1)} for k, v in c.most_common(top)]

    return {"samples": total + idle, "busy_samples": total, "idle_samples": idle, "self": pct(self_counts),
            "inclusive_project": pct(inclusive)}


class PgActivitySampler:
    """Samples active statements of one database every ``interval`` seconds."""

    QUERY = ("SELECT application_name, coalesce(wait_event_type, 'CPU') AS wait, left(regexp_replace(query, '\\s+', ' ',"
             " 'g'), 110) AS q FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
             " AND pid <> pg_backend_pid()")

    def __init__(self, database_url: str, interval: float = 0.05) -> None:
        self.database_url, self.interval = database_url, interval
        self.counts: Counter[tuple[str, str]] = Counter()
        self.waits: Counter[tuple[str, str]] = Counter()
        self.samples = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.database_url)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for r in await self._conn.fetch(self.QUERY):
                self.counts[(r["application_name"] or "?", r["q"])] += 1
                self.waits[(r["application_name"] or "?", r["wait"])] += 1
            self.samples += 1
            await asyncio.sleep(self.interval)

    async def stop(self, top: int = 15) -> dict[str, Any]:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._conn.close()
        return {
            "samples": self.samples, "interval_s": self.interval,
            "statements": [{"service": a, "statement": q, "active_samples": n,
                            "active_seconds": round(n * self.interval, 2)} for (a, q), n in self.counts.most_common(top)],
            "waits": [{"service": a, "wait": w, "active_seconds": round(n * self.interval, 2)}
                      for (a, w), n in self.waits.most_common(top)],
        }
