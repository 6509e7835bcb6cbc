"""``tributary flows …``: list, show, pause, resume and retry flows through the flow-state API.

Where the API is and whose flows these are: ``--flow-url`` / ``TRIBUTARY_FLOW_URL`` and
``--api-key`` / ``TRIBUTARY_API_KEY``, as in every command (see ``connection.py``).
A refusal (unknown flow, impossible transition, unreachable service) is one sentence and a
hint on stderr, never a traceback (``errors.py``): exit status 1, or 2 for a malformed argument.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from .connection import (ApiKeyOption, ClientAccountOption, Connection, DEMO_CLIENT_ACCOUNT_ID,
                         DEMO_ENGAGEMENT_ID, DEFAULT_URLS, EngagementOption, FlowUrlOption, UserIdOption, connect,
                         stdout_console, valid_uuid)
from .errors import CliError, usage

PHASES = ("upload", "validation", "enrichment", "complete")

flows = typer.Typer(help="Flows: list, show, pause, resume, retry a failed phase.", no_args_is_help=True)
out = stdout_console()


@flows.callback()
def _target(
    ctx: typer.Context,
    flow_url: FlowUrlOption = DEFAULT_URLS["flow-state"],
    api_key: ApiKeyOption = None,
    client_account_id: ClientAccountOption = DEMO_CLIENT_ACCOUNT_ID,
    engagement_id: EngagementOption = DEMO_ENGAGEMENT_ID,
    user_id: UserIdOption = "cli",
) -> None:
    ctx.obj = connect(api_key, flow_url=flow_url, client_account_id=client_account_id, engagement_id=engagement_id,
                      user_id=user_id)


def _call(target: Connection, flow_id: str | None, request: Any) -> dict[str, Any]:
    """Send a request; a refusal becomes one sentence and exit status 1."""
    if flow_id is not None:
        valid_uuid(flow_id, "a flow id")
    return target.json("flow-state", request, not_found=f"Flow {flow_id} not found for {target.tenant}."
                       if flow_id is not None else None,
                       not_found_hint="`tributary flows list` shows the flows of this tenant")


def _wait_applied(target: Connection, flow_id: str, event_id: str, timeout: float) -> dict[str, Any]:
    """Until flow-state has projected the event (it is in the flow's timeline)."""
    deadline = time.monotonic() + timeout
    while True:
        flow = _call(target, flow_id, lambda: target.client.get_flow(flow_id))
        if any(e["event_id"] == event_id for e in flow["timeline"]):
            return flow
        if time.monotonic() > deadline:
            raise CliError(f"The request was accepted but flow-state had not applied it after {timeout:.0f}s.",
                           f"`tributary flows show {flow_id}` shows where the flow is")
        time.sleep(0.1)


def _operation(ctx: typer.Context, flow_id: str, request: Any, wait: bool, timeout: float, done: str) -> None:
    target: Connection = ctx.obj
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
        raise usage(f"Unknown phase {phase!r}: use one of {', '.join(PHASES)}.")
    _operation(ctx, flow_id, lambda: ctx.obj.client.retry_flow(flow_id, phase), wait, timeout,
               f"Retry of {phase or 'the failed phase'} requested")


@flows.command("list")
def list_(ctx: typer.Context,
          status: Annotated[str | None, typer.Option(help="running, paused, completed or failed")] = None,
          page_size: Annotated[int, typer.Option(min=1, max=500)] = 50) -> None:
    """The tenant's flows, newest first."""
    target: Connection = ctx.obj
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
    target: Connection = ctx.obj
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
