"""The benchmark harness, small: a 10k-row CMDB import through the four service processes, a few
small imports, the raw broker/COPY limits, the row-by-row baseline and a flow-state rebuild.

Correctness only (exact counts); no timing is asserted — CI machines are shared and noisy.
``make bench`` runs the real thing (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import __main__ as bench_main  # noqa: E402
from bench import datagen  # noqa: E402
from tributary_runtime.settings import ServiceSettings  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_datagen_is_seeded_and_streams_distinct_rows(tmp_path: Path) -> None:
    a = datagen.write_cmdb(tmp_path / "a.csv", 2_000, 7)
    b = datagen.write_cmdb(tmp_path / "b.csv", 2_000, 7)
    assert a == b and (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert a["valid"] + a["invalid"] == 2_000 and 0 < a["invalid"] < 50
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert len(lines) == 2_001 and len({line.split(",")[0] for line in lines[1:]}) == 2_000
    apps = datagen.write_app_discovery(tmp_path / "apps.csv", 3_000, 8, hosts=2_000)
    edges = [tuple(r.split(",")[i] for i in (0, 1, 4, 5)) for r in (tmp_path / "apps.csv").read_text().splitlines()[1:]]
    assert len(edges) == len(set(edges)) == 3_000
    assert apps["to_applications"] + apps["to_hosts"] + apps["to_unknown_hosts"] == 3_000


def test_bench_smoke_10k(tmp_path: Path) -> None:
    args = argparse.Namespace(sizes="10k", scenarios="cmdb,raw,latency,baseline,rebuild", reps=1, reps_100k=1,
                              reps_1m=1, rebuild_imports=500, rebuild_reps=2, app_edges=1_000, small_imports=5, concurrency=5,
                              seed=bench_main.SEED, workdir=str(tmp_path / "bench"))
    results = asyncio.run(bench_main.run_bench(args))

    failed = [c for c in results["checks"] if not c["ok"]]
    assert not failed, failed
    run = results["cmdb"]["10k"]["runs"][0]
    _, meta = datagen.cached(tmp_path / "bench" / "files", f"cmdb-10k-s{bench_main.SEED}.csv",
                             lambda p: datagen.write_cmdb(p, 10_000, bench_main.SEED))
    assert run["status"] == "completed"
    assert run["record_count"] == 10_000
    assert (run["validation"]["valid_count"], run["validation"]["invalid_count"]) == (meta["valid"], meta["invalid"])
    assert run["enrichment"]["assets_created"] == meta["valid"]
    assert run["enrichment"]["assets_updated"] == 0
    assert set(run["stages"]) >= {"upload", "validation", "enrichment", "projection"}
    assert set(run["peak_rss_bytes"]) >= {"ingest", "validator", "enricher", "flow-state"}
    assert all(v > 0 for v in run["peak_rss_bytes"].values())

    limits = results["cmdb"]["10k"]["raw"]["runs"][0]
    assert limits["broker"]["messages"] == 10 and limits["broker"]["bytes"] > 0
    assert limits["copy"]["rows"] == 10_000

    latency = results["latency"]
    assert (latency["imports"], latency["completed"], latency["timeouts"]) == (5, 5, 0)
    assert latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
    # Every process of the stack and the services' database sessions are metered; each service worked.
    cpu = latency["cpu_ms_per_import"]
    assert {"ingest", "validator", "enricher", "flow-state", "tansu", "benchmark client"} <= set(cpu)
    assert {"database: tributary-enricher", "database: tributary-validator"} <= set(cpu)
    assert all(cpu[name] > 0 for name in ("ingest", "validator", "enricher", "flow-state"))

    baseline = results["baseline"]
    assert (baseline["rows"], baseline["created"], baseline["updated"]) == (meta["valid"], meta["valid"], 0)

    rebuild = results["rebuild"]
    assert rebuild["ok"], rebuild
    assert rebuild["verified_equal"] is True
    # Warm-up + 10k + 5 small imports: at least ImportUploaded, ValidationCompleted, EnrichmentCompleted each.
    assert rebuild["events"] >= 3 * 7

    names = {t["target"] for t in results["targets"]}
    assert "small import p50 (accepted → completed)" in names and "flow-state rebuild" in names
    assert results["machine"]["cpu_count"] and results["load_after"]
    assert rebuild["synthetic"]["ok"] and rebuild["synthetic"]["events"] > 500, rebuild["synthetic"]
    assert set(results["settled_s"]) == {"latency", "rebuild"}  # checkpoint and autovacuum idle before each
    # The rebuild beside the idle stack in its steady state: the services' consumers gone dormant.
    assert results["settled_s"]["rebuild"] >= ServiceSettings().fetch_dormant_after_s
    # Two runs, the median reported; the replay by reader processes side by side (one per core).
    runs = rebuild["synthetic"]["events_per_s_runs"]
    assert len(runs) == 2 and rebuild["synthetic"]["events_per_s"] in runs
    assert rebuild["synthetic"]["readers"] == min(os.cpu_count() or 1, 8)
