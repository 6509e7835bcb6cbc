"""The status topic is enough to know every flow: folding ``flows.status.v1`` gives the flow tables.

A dashboard that reads the (compacted) topic from the beginning and keeps the latest
``FlowStatus`` per flow_id (highest ``version``) has exactly what ``flow_state.master_flows``
and ``child_flows`` hold for the tenant.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from importlib import resources
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Tenant, topics
from tributary_cli.client import TributaryClient

pytestmark = pytest.mark.e2e

SAMPLES = resources.files("tributary_cli") / "samples"
COMPARED = ("status", "child_status", "current_phase", "progress_percentage", "phase_state", "error_message",
            "version", "category", "child_flow_id", "import_id", "updated_at")


async def _read_topic(bootstrap: str) -> list[Any]:
    """Every message on the status topic, from the beginning to the end offsets seen at the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata
        partitions = [TopicPartition(topics.FLOW_STATUS, p)
                      for p in sorted(consumer.partitions_for_topic(topics.FLOW_STATUS) or ())]
        assert partitions, f"{topics.FLOW_STATUS} does not exist"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        messages: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                messages += batch
        return messages
    finally:
        await consumer.stop()


def fold(messages: list[Any], tenant: Tenant) -> dict[str, dict[str, Any]]:
    """The latest snapshot (highest version) of each of the tenant's flows."""
    latest: dict[str, dict[str, Any]] = {}
    for m in messages:
        if dict(m.headers).get("client_account_id") != str(tenant.client_account_id).encode():
            continue
        envelope = json.loads(m.value)
        assert envelope["event_type"] == "FlowStatus"
        assert envelope["tenant"] == {"client_account_id": str(tenant.client_account_id),
                                      "engagement_id": str(tenant.engagement_id)}
        status = envelope["payload"]
        assert m.key == status["flow_id"].encode(), "the status topic is keyed by flow_id"
        seen = latest.get(status["flow_id"])
        if seen is None or status["version"] > seen["version"]:
            latest[status["flow_id"]] = status
    return {flow_id: {k: s[k] for k in COMPARED} | {"updated_at": datetime.fromisoformat(s["updated_at"])}
            for flow_id, s in latest.items()}


async def _tables(database_url: str, tenant: Tenant) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT m.flow_id, m.status, c.status AS child_status, m.current_phase, c.current_phase AS child_phase,"
            " m.progress_percentage, c.progress_percentage AS child_progress, c.phase_state::text AS phase_state,"
            " c.error_message, m.version, m.import_category AS category, c.id AS child_flow_id,"
            " c.data_import_id AS import_id, m.updated_at"
            " FROM flow_state.master_flows m JOIN flow_state.child_flows c ON c.master_flow_id = m.flow_id"
            " WHERE m.client_account_id = $1 AND m.engagement_id = $2",
            tenant.client_account_id, tenant.engagement_id)
    finally:
        await conn.close()
    flows = {}
    for r in rows:
        # master and child agree on where the flow is
        assert (r["current_phase"], r["progress_percentage"]) == (r["child_phase"], r["child_progress"])
        flows[str(r["flow_id"])] = {
            "status": r["status"], "child_status": r["child_status"], "current_phase": r["current_phase"],
            "progress_percentage": r["progress_percentage"], "phase_state": json.loads(r["phase_state"]),
            "error_message": r["error_message"], "version": r["version"], "category": r["category"],
            "child_flow_id": str(r["child_flow_id"]), "import_id": str(r["import_id"]),
            "updated_at": r["updated_at"]}
    return flows


def upload(client: TributaryClient, content: bytes, filename: str, category: str, **kw: Any) -> str:
    response = client.upload_bytes(content, filename, category, **kw)
    assert response.status_code == 202, response.text
    return response.json()["flow_id"]


def test_folding_the_status_topic_gives_the_flow_tables(client: TributaryClient, stack_env: dict[str, str],
                                                        database_url: str, tenant: Tenant) -> None:
    sample = (SAMPLES / "app_discovery.csv").read_bytes()
    expected = {
        upload(client, sample, "apps.csv", "app_discovery"): ("completed", "completed"),
        upload(client, b"hostname,ip_address\nok-1,10.0.0.1\nbad-1,10.0.0.999\nok-2,10.0.0.3\n", "partial.csv",
               "cmdb_export"): ("completed", "completed_with_errors"),
        upload(client, b"os,ram\nlinux,16\n", "noid.csv", "cmdb_export"): ("failed", "failed"),
        upload(client, b"hostname,ip_address\nbad-1,10.0.0.999\nbad-2,x\nok-1,10.0.0.1\n", "mostly-bad.csv",
               "cmdb_export"): ("failed", "failed"),
        upload(client, b"hostname\ndry-1\n", "dry.csv", "cmdb_export", validate_only=True): ("completed", "completed"),
    }
    for flow_id, (status, child_status) in expected.items():
        flow = client.wait_for_flow(flow_id)
        assert (flow["master"]["status"], flow["child"]["status"]) == (status, child_status), flow["child"]

    tables = asyncio.run(_tables(database_url, tenant))
    folded = fold(asyncio.run(_read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"])), tenant)

    assert set(tables) == set(expected)
    assert set(folded) == set(tables), "a flow in the tables has no status on the topic, or the reverse"
    for flow_id, row in tables.items():
        assert folded[flow_id] == row, flow_id
    # The failures carry their reasons, the partial import its counts: what a dashboard needs is there.
    errors = sorted(s["error_message"] for s in folded.values() if s["status"] == "failed")
    assert errors[0].startswith("2 of 3 rows are invalid") and errors[1].startswith("required column(s) missing")
    partial = next(s for s in folded.values() if s["child_status"] == "completed_with_errors")
    assert (partial["phase_state"]["validation"]["invalid_count"], partial["progress_percentage"]) == (1, 100.0)
