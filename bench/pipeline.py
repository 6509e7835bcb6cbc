"""Driving imports through the running stack and timing them.

End-to-end time runs from the first byte of the upload request (client clock) until the
status topic shows the flow ``completed`` (the moment a dashboard would learn it). The flow's
timeline splits it into stages: upload (request body received + parsed + published, until
``ImportUploaded``), validation (until ``ValidationCompleted``), enrichment (until
``EnrichmentCompleted``) and projection (until the status topic says completed). Event times
come from the services' clocks on this same machine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from contracts import Tenant

from .stack import BenchStack, StatusWatcher


def new_tenant() -> Tenant:
    return Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


async def upload(client: httpx.AsyncClient, stack: BenchStack, tenant: Tenant, path: Path, category: str
                 ) -> tuple[dict[str, Any], float, float]:
    """Stream the file from disk; returns (receipt, first byte time, accepted time)."""
    headers = stack.headers(tenant)
    with path.open("rb") as fh:
        t0 = time.time()
        response = await client.post(f"{stack.url('ingest')}/v1/imports", headers=headers,
                                     files={"file": (path.name, fh, "text/csv")}, data={"category": category})
        accepted = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"upload of {path.name} refused: {response.status_code} {response.text[:500]}")
    return response.json(), t0, accepted


async def get_flow(client: httpx.AsyncClient, stack: BenchStack, tenant: Tenant, flow_id: str) -> dict[str, Any]:
    response = await client.get(f"{stack.url('flow-state')}/v1/flows/{flow_id}", headers=stack.headers(tenant))
    response.raise_for_status()
    return response.json()


async def settled_flow(client: httpx.AsyncClient, stack: BenchStack, tenant: Tenant, flow_id: str, status: str,
                       timeout: float = 30) -> dict[str, Any]:
    """The flow as the API shows it once it shows ``status``.

    flow-state publishes a snapshot on the status topic within the transaction that projects it,
    before that transaction commits: a reader that saw ``completed`` there and asks the API at
    once can be answered from the state just before (enrichment still running, no counts).
    """
    deadline = time.monotonic() + timeout
    while True:
        flow = await get_flow(client, stack, tenant, flow_id)
        if flow.get("master", {}).get("status") == status or time.monotonic() > deadline:
            return flow
        await asyncio.sleep(0.02)


def stages(flow: dict[str, Any], t0: float, done: float) -> dict[str, float | None]:
    """Seconds spent in each stage, from the timeline's event times."""
    at: dict[str, float] = {}
    for entry in flow.get("timeline", []):
        when = _ts(entry.get("occurred_at"))
        if when is not None:
            at.setdefault(entry["event_type"], when)
    up, val, enr = at.get("ImportUploaded"), at.get("ValidationCompleted"), at.get("EnrichmentCompleted")

    def diff(a: float | None, b: float | None) -> float | None:
        return round(b - a, 3) if a is not None and b is not None else None

    return {"upload": diff(t0, up), "validation": diff(up, val), "enrichment": diff(val, enr),
            "projection": diff(enr, done)}


async def run_import(stack: BenchStack, watcher: StatusWatcher, tenant: Tenant, path: Path, category: str,
                     *, timeout: float) -> dict[str, Any]:
    """One import, start to finish: timings, stage split, the flow's counts."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        receipt, t0, accepted = await upload(client, stack, tenant, path, category)
        flow_id = str(receipt["flow_id"])
        try:
            status, done = await watcher.wait_terminal(flow_id, timeout)
        except TimeoutError:
            flow = await get_flow(client, stack, tenant, flow_id)
            child = flow.get("child", {})
            at = time.time()
            return {"status": "timeout", "flow_id": flow_id, "import_id": receipt["import_id"],
                    "seconds_until_timeout": round(at - t0, 1), "upload_request_seconds": round(accepted - t0, 3),
                    "current_phase": child.get("current_phase"),
                    "progress_percentage": child.get("progress_percentage"),
                    "stages_so_far": stages(flow, t0, at), "phase_state": child.get("phase_state")}
        flow = await settled_flow(client, stack, tenant, flow_id, status)
    child = flow.get("child", {})
    return {
        "status": status, "flow_id": flow_id, "import_id": receipt["import_id"],
        "record_count": receipt.get("record_count"),
        "seconds": round(done - t0, 3), "upload_request_seconds": round(accepted - t0, 3),
        "accepted_to_completed_seconds": round(done - accepted, 3),
        "stages": stages(flow, t0, done),
        "validation": (child.get("phase_state") or {}).get("validation"),
        "enrichment": (child.get("phase_state") or {}).get("enrichment"),
        "error_message": child.get("error_message"),
    }


async def latency_run(stack: BenchStack, watcher: StatusWatcher, tenant: Tenant, files: list[Path],
                      *, concurrency: int, timeout: float = 300) -> dict[str, Any]:
    """Small imports, ``concurrency`` in flight at a time: accepted -> completed per import."""
    gate = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any]] = []
    timeouts: list[str] = []

    async def one(client: httpx.AsyncClient, path: Path) -> None:
        async with gate:
            receipt, t0, accepted = await upload(client, stack, tenant, path, "cmdb_export")
            try:
                status, done = await watcher.wait_terminal(str(receipt["flow_id"]), timeout)
            except TimeoutError:
                timeouts.append(str(receipt["flow_id"]))
                return
            results.append({"status": status, "accepted_to_completed": done - accepted, "upload": accepted - t0,
                            "first_byte_to_completed": done - t0, "flow_id": str(receipt["flow_id"])})

    started = time.time()
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one(client, f) for f in files))
    wall = time.time() - started
    if not results:
        return {"imports": len(files), "concurrency": concurrency, "completed": 0, "timeouts": len(timeouts),
                "timeout_s": timeout, "wall_seconds": round(wall, 3)}
    lat = sorted(r["accepted_to_completed"] for r in results)
    e2e = sorted(r["first_byte_to_completed"] for r in results)
    return {
        "imports": len(files), "concurrency": concurrency, "wall_seconds": round(wall, 3),
        "imports_per_s": round(len(files) / wall, 2),
        "completed": sum(r["status"] == "completed" for r in results), "timeouts": len(timeouts),
        "timeout_s": timeout,
        "p50_ms": round(percentile(lat, 50) * 1000, 1), "p95_ms": round(percentile(lat, 95) * 1000, 1),
        "p99_ms": round(percentile(lat, 99) * 1000, 1), "max_ms": round(lat[-1] * 1000, 1),
        "upload_request_p50_ms": round(percentile(sorted(r["upload"] for r in results), 50) * 1000, 1),
        "first_byte_to_completed_p50_ms": round(percentile(e2e, 50) * 1000, 1),
        "first_byte_to_completed_p99_ms": round(percentile(e2e, 99) * 1000, 1),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(1, int(-(-q * len(values) // 100)))  # ceil(q/100 * n)
    return values[min(rank, len(values)) - 1]
