"""Replay = rebuild (Guarantee 3), against the four services running as processes.

* ``tributary flow-state rebuild --swap`` replays ``imports.events.v1`` into a fresh schema while
  imports keep flowing, verifies it against the live tables at the live consumer's exact
  position, and swaps it in under the running flow-state process, which carries on: the API
  answers the same flows, the imports in flight finish, a new import completes, and a second
  rebuild of the swapped-in tables verifies equal again (and publishes nothing).
* ``tributary enricher rebuild --swap`` does the same for the inventory.
* ``tributary replay IMPORT_ID`` re-publishes an import's events byte for byte; every table of
  every service keeps its checksum.

The rebuild speed is printed (``-s``); nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts import Tenant, topics
from contracts.producer import ImportSubmitter
from tributary_cli.client import TributaryClient
from tributary_cli.processes import ServiceProcess

# Imports in flight while three rebuilds replay every one of them: more than the default 300 s on a busy
# 2-core machine (about 4 minutes when it is quiet).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SAMPLES = resources.files("tributary_cli") / "samples"
CATEGORIES = ("cmdb_export", "app_discovery", "infrastructure", "sensitive_data")
SERVICE_SCHEMAS = ("ingest", "validator", "enricher", "flow_state")
ALL_TOPICS = tuple(topics.ALL) + tuple(topics.dlq(t) for t in topics.ALL)


# --- helpers ----------------------------------------------------------------------------------

def tributary(env: dict[str, str], *args: str, timeout: float = 240) -> tuple[dict[str, Any], int]:
    """Run the `tributary` command (a process of its own) with --json; its log goes to our stderr."""
    with tempfile.NamedTemporaryFile("w+", prefix="tributary-", suffix=".log", delete=False) as err:
        try:
            proc = subprocess.run([sys.executable, "-m", "tributary_cli.main", *args, "--json"],
                                  env=os.environ | env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout)
        finally:
            err.seek(0)
            log = err.read()
            if "proc" not in locals():
                sys.stderr.write(f"tributary {' '.join(args)} timed out; its log:\n{log[-6000:]}")
    os.unlink(err.name)
    sys.stderr.write(log[-6000:])
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no report from tributary {' '.join(args)} (exit {proc.returncode}):\n{log[-4000:]}"
    return json.loads(lines[-1]), proc.returncode


def upload(client: TributaryClient, content: bytes, filename: str, category: str, **kw: Any) -> dict[str, Any]:
    response = client.upload_bytes(content, filename, category, **kw)
    assert response.status_code == 202, response.text
    return response.json()


def upload_sample(client: TributaryClient, category: str, **kw: Any) -> dict[str, Any]:
    return upload(client, (SAMPLES / f"{category}.csv").read_bytes(), f"{category}.csv", category, **kw)


def new_tenant() -> Tenant:
    return Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())


def cmdb_rows(prefix: str, n: int, net: int) -> bytes:
    """``n`` servers named ``<prefix>-…`` in 10.<net>.0.0/16: files with distinct prefixes and nets share no
    identifier, so their imports do not interact (in whatever order a tenant's imports are applied)."""
    lines = ["hostname,ip_address,asset_type,environment"]
    lines += [f"{prefix}-{i:05d}.corp.example,10.{net}.{i // 256 % 256}.{i % 256},server,production"
              for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def flows_seen_by_api(client: TributaryClient) -> dict[str, Any]:
    """What the flow API answers for the tenant: the list and every flow in full."""
    listed = client.list_flows(page_size=500)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    full = {}
    for item in items:
        response = client.get_flow(item["flow_id"])
        assert response.status_code == 200, response.text
        full[item["flow_id"]] = response.json()
    return {"list": listed.json(), "flows": full}


def assert_timeline_sound(flow: dict[str, Any]) -> None:
    """Every event once, numbered 1..n: nothing applied twice or lost across the swap."""
    timeline = flow["timeline"]
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert len({e["event_id"] for e in timeline}) == len(timeline)
    assert flow["master"]["version"] == len(timeline)


async def _table_checksums(database_url: str) -> dict[str, tuple[int, str]]:
    """Independent of the code under test: md5 of every row's text, per table, in row-text order."""
    conn = await asyncpg.connect(database_url, server_settings={"TimeZone": "UTC"})
    try:
        out = {}
        for schema in SERVICE_SCHEMAS:
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema):
                if r["tablename"] == "consumer_offsets":  # consuming (even duplicates) moves it on, by design
                    continue
                name = f'"{schema}"."{r["tablename"]}"'
                row = await conn.fetchrow(f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n'"
                                          f" ORDER BY t::text), '')) AS d FROM {name} t")
                out[f"{schema}.{r['tablename']}"] = (row["n"], row["d"])
        return out
    finally:
        await conn.close()


def table_checksums(database_url: str) -> dict[str, tuple[int, str]]:
    return asyncio.run(_table_checksums(database_url))


async def _topic_sizes(bootstrap: str) -> dict[str, int]:
    """Messages per topic, counted by reading every partition to its end (tansu's ListOffsets reports the
    end of a partition whose last batch holds several records as that batch's first offset + 1)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=5000)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(t, p) for t in ALL_TOPICS for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        ends = dict.fromkeys(partitions, 0)
        quiet = 0
        while quiet < 3:
            got = await consumer.getmany(timeout_ms=200)
            for tp, messages in got.items():
                ends[tp] = max(ends[tp], messages[-1].offset + 1)
            quiet = 0 if got else quiet + 1
        return {t: sum(o for tp, o in ends.items() if tp.topic == t) for t in ALL_TOPICS}
    finally:
        await consumer.stop()


def topic_sizes(env: dict[str, str]) -> dict[str, int]:
    return asyncio.run(_topic_sizes(env["KAFKA_BOOTSTRAP_SERVERS"]))


async def _submit_many(bootstrap: str, count: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        submitter = ImportSubmitter(producer, producer_name="upstream:bulk", batch_rows=2)
        flows = []
        for i in range(count):
            tenant = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
            rows = [{"hostname": f"bulk-{i}-{j}.corp.example", "ip_address": f"10.77.{i % 256}.{j}"} for j in range(3)]
            submitted = await submitter.submit(tenant=tenant, category="cmdb_export",
                                               records=enumerate(rows, start=1), filename=f"bulk-{i}")
            flows.append(str(submitted.flow_id))
        return flows
    finally:
        await producer.stop()


async def _wait_terminal(database_url: str, flow_ids: list[str], timeout: float) -> None:
    conn = await asyncpg.connect(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = await conn.fetchval("SELECT count(*) FROM flow_state.master_flows WHERE flow_id = ANY($1::uuid[])"
                                       " AND status IN ('completed', 'failed')", flow_ids)
            if done == len(flow_ids):
                return
            assert time.monotonic() < deadline, f"only {done} of {len(flow_ids)} flows finished in {timeout}s"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def wait_terminal(database_url: str, flow_ids: list[str], timeout: float = 120) -> None:
    asyncio.run(_wait_terminal(database_url, flow_ids, timeout))


async def _fetch(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def fetch(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(_fetch(database_url, sql, *args))


def print_speed(report: dict[str, Any]) -> None:
    bulk = report["bulk"]
    print(f"\n[rebuild speed] {report['service']}: {bulk['messages']} events replayed in {bulk['seconds']}s = "
          f"{bulk['events_per_s']} events/s (catch-up rounds {report['catch_up_rounds']}; "
          f"{report['stats']['transactions']} transactions)")


# --- flow-state -------------------------------------------------------------------------------

PARTLY_INVALID = b"hostname,ip_address\nok-1,10.0.0.1\nbad-1,10.0.0.999\nok-2,10.0.0.3\n"
MISSING_COLUMN = b"os,ram\nlinux,16\n"


def test_flow_state_rebuild_while_importing_verifies_and_swaps_under_the_live_service(
        client: TributaryClient, client_for: Callable[[Tenant], TributaryClient],
        pipeline: dict[str, ServiceProcess], stack_env: dict[str, str], database_url: str) -> None:
    flows = {c: client.wait_for_flow(upload_sample(client, c)["flow_id"]) for c in CATEGORIES}
    flows["with_errors"] = client.wait_for_flow(upload(client, PARTLY_INVALID, "partial.csv", "cmdb_export")["flow_id"])
    flows["failed"] = client.wait_for_flow(upload(client, MISSING_COLUMN, "noid.csv", "cmdb_export")["flow_id"])
    assert {k: (f["master"]["status"], f["child"]["status"]) for k, f in flows.items()} == {
        **{c: ("completed", "completed") for c in CATEGORIES},
        "with_errors": ("completed", "completed_with_errors"), "failed": ("failed", "failed")}
    # Imports an upstream system submits as events, beside those uploaded over HTTP. (Speed is measured by
    # flow_state.speed.rebuild_speed(); every import here is replayed again by both enricher rebuilds.)
    wait_terminal(database_url, asyncio.run(_submit_many(stack_env["KAFKA_BOOTSTRAP_SERVERS"], 10)))
    before = flows_seen_by_api(client)

    # Imports keep flowing while the rebuild runs: one large, and small ones every 250 ms.
    big_client = client_for(new_tenant())
    flowing = client_for(new_tenant())
    big = upload(big_client, cmdb_rows("big", 2000, 0), "big.csv", "cmdb_export")
    stop = threading.Event()
    during: list[tuple[TributaryClient, str, float]] = []

    def keep_importing() -> None:
        n = 0
        while not stop.is_set():
            receipt = upload(flowing, cmdb_rows(f"flowing-{n}", 20, n % 250), f"flowing-{n}.csv", "cmdb_export")
            during.append((flowing, receipt["flow_id"], time.monotonic()))
            n += 1
            time.sleep(0.25)

    importer = threading.Thread(target=keep_importing, daemon=True)
    importer.start()
    started = time.monotonic()
    try:
        report, code = tributary(stack_env, "flow-state", "rebuild", "--swap")
    finally:
        finished = time.monotonic()
        stop.set()
        importer.join(timeout=30)
    print_speed(report)
    swap = report.get("swap", {})
    print(f"[swap] old tables in {swap.get('old_schema')}; live consumer fenced for {swap.get('fenced_seconds')}s; "
          f"{swap.get('terminated_sessions')} live sessions ended; imports started during the rebuild: "
          f"{sum(1 for *_, at in during if started < at < finished)}")
    assert code == 0, json.dumps(report)[:4000]
    # The bulk ran in reader processes side by side (one per core), the catch-up in the command's own.
    assert report["readers"] == report["bulk"]["readers"] == min(os.cpu_count() or 1, 8)
    assert report["verification"]["equal"], report["verification"]
    assert swap["swapped"] and swap["verification"]["equal"], swap
    assert any(started < at < finished for *_, at in during), "no import was flowing during the rebuild"
    # Status publishing was switched off: the projector did not even try (the guard producer counted nothing).
    assert report["suppressed_publishes"] == {}
    # The live group's offsets were carried over, exactly those of the moment of the swap.
    carried = fetch(database_url, "SELECT group_id, topic, partition, next_offset FROM flow_state.consumer_offsets")
    assert {r["group_id"] for r in carried} == {"flow-state"}
    old = swap["old_schema"]
    assert fetch(database_url, "SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1", old)[0]["n"] == 1

    # The live process was not restarted: it reconnected and finishes every import that was in flight.
    assert pipeline["flow-state"].process is not None and pipeline["flow-state"].process.poll() is None
    for other, flow_id, _ in during:
        flow = other.wait_for_flow(flow_id, timeout=120)
        state = flow["child"]["phase_state"]
        assert flow["master"]["status"] == "completed", state
        assert (state["validation"]["valid_count"], state["enrichment"]["assets_created"]) == (20, 20), state
        assert_timeline_sound(flow)
    big_flow = big_client.wait_for_flow(big["flow_id"], timeout=120)
    assert big_flow["child"]["phase_state"]["enrichment"]["assets_created"] == 2000
    assert_timeline_sound(big_flow)

    # The API answers the same flows, and a new import completes.
    assert flows_seen_by_api(client) == before
    fresh = client.wait_for_flow(upload_sample(client, "cmdb_export")["flow_id"])
    assert fresh["master"]["status"] == "completed"
    assert fresh["child"]["phase_state"]["enrichment"]["assets_unchanged"] == 5
    assert_timeline_sound(fresh)

    # Rebuilding the swapped-in tables (and everything projected into them since) verifies equal
    # again, and a rebuild publishes nothing: with the system quiet, no topic grows.
    sizes = topic_sizes(stack_env)
    again, code = tributary(stack_env, "flow-state", "rebuild", "--discard")
    print_speed(again)
    assert code == 0 and again["verification"]["equal"], again["verification"]
    assert topic_sizes(stack_env) == sizes


# --- enricher ---------------------------------------------------------------------------------

INFRA_WITH_UNKNOWN = (b"hostname,cpu_avg,memory_avg,collected_at\n"
                      b"web-01.corp.example,12.5,40.0,2026-11-02T00:00:00Z\n"
                      b"ghost-01.corp.example,50.0,70.0,2026-11-02T00:00:00Z\n")


def inventory_seen_by_api(client: TributaryClient) -> dict[str, Any]:
    assets = client.list_assets(page_size=500).json()
    return {"assets": assets, "details": {a["asset_id"]: client.get_asset(a["asset_id"]).json()
                                          for a in assets["items"]},
            "dependencies": client.list_dependencies(page_size=500).json(),
            "parked": client.list_parked(page_size=500).json(),
            "candidates": client.list_duplicate_candidates(page_size=500).json()}


def test_enricher_rebuild_verifies_and_swaps(client: TributaryClient, stack_env: dict[str, str],
                                            database_url: str) -> None:
    # A tenant with a policy that changes between imports (its versions are carried over, not rebuilt),
    # all four categories, a placeholder, a revert.
    assert client.put_inventory_policy(source_priorities={"servicenow": 10}).status_code == 200
    done = {c: client.wait_for_flow(upload_sample(client, c, source_system="servicenow")["flow_id"])
            for c in CATEGORIES}
    before_change = client.wait_for_flow(upload(client, INFRA_WITH_UNKNOWN, "infra1.csv", "infrastructure")["flow_id"])
    assert before_change["child"]["phase_state"]["enrichment"]["placeholders_created"] == 0
    assert client.put_inventory_policy(create_placeholders=True, source_priorities={"servicenow": 10}).status_code \
        == 200
    # The same rows under the changed policy: the rebuild must apply each import under its own version.
    infra = client.wait_for_flow(upload(client, INFRA_WITH_UNKNOWN, "infra2.csv", "infrastructure")["flow_id"])
    assert infra["child"]["phase_state"]["enrichment"]["placeholders_created"] == 1
    discovery = done["app_discovery"]["child"]["data_import_id"]
    assert client.revert_import(discovery, reason="rebuild test").status_code == 202
    deadline = time.monotonic() + 60
    while client.get_flow(done["app_discovery"]["master"]["flow_id"]).json()["child"]["status"] != "reverted":
        assert time.monotonic() < deadline, "revert not applied"
        time.sleep(0.05)
    before = inventory_seen_by_api(client)
    assert before["assets"]["total"] >= 5

    report, code = tributary(stack_env, "enricher", "rebuild", "--swap")
    print_speed(report)
    assert set(report["carried_tables"]) == {"inventory_policy_versions"}
    assert code == 0 and report["verification"]["equal"], report["verification"]
    assert report["readers"] == 1  # the enricher's replay keeps one order across partitions
    assert report["swap"]["swapped"], report["swap"]
    # Nothing the rebuild's handler would have published left the process.
    assert any("EnrichmentCompleted" in k for k in report["suppressed_publishes"])

    # The inventory API answers the same; the live enricher carries on in the new tables.
    assert inventory_seen_by_api(client) == before
    again = client.wait_for_flow(upload_sample(client, "cmdb_export", source_system="servicenow")["flow_id"])
    counts = again["child"]["phase_state"]["enrichment"]
    assert (counts["assets_created"], counts["assets_unchanged"]) == (0, 5), counts
    check, code = tributary(stack_env, "enricher", "rebuild", "--discard")
    assert code == 0 and check["verification"]["equal"], check["verification"]


# --- replay -----------------------------------------------------------------------------------

def test_replay_republishes_an_import_and_changes_no_table(client: TributaryClient, stack_env: dict[str, str],
                                                         database_url: str) -> None:
    completed = upload_sample(client, "cmdb_export")
    with_errors = upload(client, PARTLY_INVALID, "partial.csv", "cmdb_export")
    failed = upload(client, MISSING_COLUMN, "noid.csv", "cmdb_export")
    for receipt in (completed, with_errors, failed):
        client.wait_for_flow(receipt["flow_id"])
    flow = client.get_flow(completed["flow_id"]).json()

    before = table_checksums(database_url)
    sizes = topic_sizes(stack_env)
    republished = 0
    for receipt in (completed, with_errors, failed):
        report, code = tributary(stack_env, "replay", receipt["import_id"], "--verify")
        assert code == 0, report
        assert report["consumers"]["caught_up"] and report["changed"] == [], report
        print(f"\n[replay] {receipt['import_id']}: {report['by_topic']} -> {report['partitions']}")
        republished += report["republished"]
        if receipt is completed:
            # raw batches, validated batches and the lifecycle (uploaded, validated, enriched, progress)
            assert all(report["by_topic"][t] > 0 for t in (topics.RECORDS, topics.VALIDATED_RECORDS, topics.EVENTS))
            assert {"RecordBatch", "ImportUploaded", "ValidatedBatch", "ValidationCompleted",
                    "EnrichmentCompleted"} <= set(report["event_types"])
        if receipt is failed:
            assert "ImportFailed" in report["event_types"] and report["by_topic"][topics.VALIDATED_RECORDS] == 0
    after_sizes = topic_sizes(stack_env)
    grown = {t: after_sizes[t] - sizes[t] for t in ALL_TOPICS if after_sizes[t] != sizes[t]}
    print(f"\n[replay] re-published {republished} messages: {grown}")
    # Exactly the replayed messages were added; no consumer emitted anything in answer.
    assert sum(grown.values()) == republished
    assert set(grown) <= {topics.RECORDS, topics.VALIDATED_RECORDS, topics.EVENTS}
    assert table_checksums(database_url) == before
    assert client.get_flow(completed["flow_id"]).json() == flow
