"""``tributary flows …``: list, show, pause, resume and retry flows through the flow-state API.

Where the API is and whose flows these are come from options or the environment:
``TRIBUTARY_FLOW_URL`` (default http://127.0.0.1:8004) and ``TRIBUTARY_API_KEY`` (the key
names the tenant); on a development stack that accepts tenant headers, without a key,
``TRIBUTARY_CLIENT_ACCOUNT_ID`` and ``TRIBUTARY_ENGAGEMENT_ID`` (default: the demo tenant).
``TRIBUTARY_USER_ID`` is recorded as the operation's user.
A refusal (unknown flow, impossible transition, unreachable service) is one sentence on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from contracts import Tenant

from .client import TributaryClient

DEMO_CLIENT_ACCOUNT_ID = "00000000-0000-4000-8000-000000000001"
DEMO_ENGAGEMENT_ID = "00000000-0000-4000-8000-000000000002"
PHASES = ("upload", "validation", "enrichment", "complete")

flows = typer.Typer(help="Flows: list, show, pause, resume, retry a failed phase.", no_args_is_help=True)
out = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Target:
    client: TributaryClient

    @property
    def tenant(self) -> str:
        if self.client.api_key:
            return "this API key's tenant"
        t = self.client.tenant
        return f"tenant {t.client_account_id}/{t.engagement_id}"


def _fail(message: str) -> typer.Exit:
    err.print(message, markup=False, soft_wrap=True)
    return typer.Exit(1)


@flows.callback()
def _target(
    ctx: typer.Context,
    flow_url: Annotated[str, typer.Option(envvar="TRIBUTARY_FLOW_URL", help="flow-state API")] = (
        "http://127.0.0.1:8004"),
    api_key: Annotated[str | None, typer.Option(envvar="TRIBUTARY_API_KEY", show_default=False,
                                                help="API key (names the tenant)")] = None,
    client_account_id: Annotated[str, typer.Option(envvar="TRIBUTARY_CLIENT_ACCOUNT_ID", help="tenant: client account"
                                                   )] = DEMO_CLIENT_ACCOUNT_ID,
    engagement_id: Annotated[str, typer.Option(envvar="TRIBUTARY_ENGAGEMENT_ID", help="tenant: engagement"
                                               )] = DEMO_ENGAGEMENT_ID,
    user_id: Annotated[str, typer.Option(envvar="TRIBUTARY_USER_ID", help="recorded as the operation's user")] = "cli",
) -> None:
    try:
        tenant = Tenant(client_account_id=uuid.UUID(client_account_id), engagement_id=uuid.UUID(engagement_id))
    except ValueError:
        if not api_key:
            raise _fail("The client account id and engagement id must be UUIDs.") from None
        # The key names the tenant; these are not sent.
        tenant = Tenant(client_account_id=uuid.UUID(DEMO_CLIENT_ACCOUNT_ID),
                        engagement_id=uuid.UUID(DEMO_ENGAGEMENT_ID))
    client = TributaryClient(ingest_url="", flow_url=flow_url.rstrip("/"), tenant=tenant, user_id=user_id,
                             api_key=api_key or None)
    ctx.obj = Target(client)


def _call(target: Target, flow_id: str | None, request: Any) -> dict[str, Any]:
    """Send a request; a refusal becomes one sentence and exit status 1."""
    if flow_id is not None:
        try:
            uuid.UUID(flow_id)
        except ValueError:
            raise _fail(f"{flow_id!r} is not a flow id (a UUID).") from None
    try:
        response = request()
    except httpx.HTTPError as exc:
        raise _fail(f"Cannot reach flow-state at {target.client.flow_url} ({type(exc).__name__}); "
                    f"is it running (TRIBUTARY_FLOW_URL)?") from None
    if response.status_code == 404 and flow_id is not None:
        raise _fail(f"Flow {flow_id} not found for {target.tenant}.")
    if response.status_code == 401:
        raise _fail(f"Not allowed: {_detail(response)} (set TRIBUTARY_API_KEY).")
    if response.status_code >= 400:
        raise _fail(f"Refused ({response.status_code}): {_detail(response)}.")
    return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(detail, list):  # request validation: name the field and what is wrong
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail).rstrip(".")


def _wait_applied(target: Target, flow_id: str, event_id: str, timeout: float) -> dict[str, Any]:
    """Until flow-state has projected the event (it is in the flow's timeline)."""
    deadline = time.monotonic() + timeout
    while True:
        flow = _call(target, flow_id, lambda: target.client.get_flow(flow_id))
        if any(e["event_id"] == event_id for e in flow["timeline"]):
            return flow
        if time.monotonic() > deadline:
            raise _fail(f"The request was accepted but flow-state had not applied it after {timeout:.0f}s.")
        time.sleep(0.1)


def _operation(ctx: typer.Context, flow_id: str, request: Any, wait: bool, timeout: float, done: str) -> None:
    target: Target = ctx.obj
    accepted = _call(target, flow_id, request)
    if not wait:
        out.print(f"{done} for flow {flow_id} (event {accepted['event_id']}).")
        return
    master = _wait_applied(target, flow_id, accepted["event_id"], timeout)["master"]
    out.print(f"{done} for flow {flow_id}: it is now {master['status']}, phase {master['current_phase']}.")


WaitOption = Annotated[bool, typer.Option("--wait/--no-wait", help="wait until flow-state has applied it")]
TimeoutOption = Annotated[float, typer.Option(help="seconds to wait with --wait")]


@flows.command("pause")
def pause(ctx: typer.Context, flow_id: str,
          reason: Annotated[str | None, typer.Option(help="why (kept in the flow's timeline)")] = None,
          wait: WaitOption = False, timeout: TimeoutOption = 30.0) -> None:
    """Pause a running flow at its next phase boundary (a running phase finishes first)."""
    _operation(ctx, flow_id, lambda: ctx.obj.client.pause_flow(flow_id, reason), wait, timeout, "Pause requested")


@flows.command("resume")
def resume(ctx: typer.Context, flow_id: str, wait: WaitOption = False, timeout: TimeoutOption = 30.0) -> None:
    """Resume a paused flow from the boundary where it waits."""
    _operation(ctx, flow_id, lambda: ctx.obj.client.resume_flow(flow_id), wait, timeout, "Resume requested")


@flows.command("retry")
def retry(ctx: typer.Context, flow_id: str,
          phase: Annotated[str | None, typer.Option(help=f"one of {', '.join(PHASES)}; default the failed one")
                           ] = None,
          wait: WaitOption = False, timeout: TimeoutOption = 30.0) -> None:
    """Run a failed flow's failed phase again from its staged rows."""
    if phase is not None and phase not in PHASES:
        raise _fail(f"Unknown phase {phase!r}: use one of {', '.join(PHASES)}.")
    _operation(ctx, flow_id, lambda: ctx.obj.client.retry_flow(flow_id, phase), wait, timeout,
               f"Retry of {phase or 'the failed phase'} requested")


@flows.command("list")
def list_(ctx: typer.Context,
          status: Annotated[str | None, typer.Option(help="running, paused, completed or failed")] = None,
          page_size: Annotated[int, typer.Option(min=1, max=500)] = 50) -> None:
    """The tenant's flows, newest first."""
    target: Target = ctx.obj
    params = {"page_size": page_size} | ({"status": status} if status else {})
    body = _call(target, None, lambda: target.client.list_flows(**params))
    table = Table(title=f"{body['total']} flow(s)")
    for col in ("flow", "category", "status", "phase", "progress", "error"):
        table.add_column(col)
    for f in body["items"]:
        table.add_row(str(f["flow_id"]), f["category"] or "-", f"{f['status']}/{f['child_status']}",
                      f["current_phase"], f"{f['progress_percentage']:.0f}%", f["error_message"] or "")
    out.print(table)


@flows.command("show")
def show(ctx: typer.Context, flow_id: str) -> None:
    """One flow: status, phase, steps and timeline."""
    target: Target = ctx.obj
    flow = _call(target, flow_id, lambda: target.client.get_flow(flow_id))
    master, child = flow["master"], flow["child"] or {}
    out.print(f"flow {flow_id}  import {child.get('data_import_id')}  {master.get('import_category') or ''}")
    out.print(f"status {master['status']}/{child.get('status')}  phase {master['current_phase']}  "
              f"progress {master['progress_percentage']:.0f}%")
    if child.get("error_message"):
        out.print(f"error: {child['error_message']}", markup=False)
    steps = Table(title="steps")
    for col in ("step", "status", "records", "error"):
        steps.add_column(col)
    for s in flow["steps"]:
        steps.add_row(s["step_name"], s["status"], str(s["records_processed"]), s["error_message"] or "")
    out.print(steps)
    timeline = Table(title="timeline")
    for col in ("seq", "event", "phase", "by", "at"):
        timeline.add_column(col)
    for e in flow["timeline"]:
        timeline.add_row(str(e["seq"]), e["event_type"], e["phase"], e["producer"], str(e["occurred_at"]))
    out.print(timeline)
