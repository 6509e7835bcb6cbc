"""``tributary import FILE --category …``: upload a file, follow its flow, print what it did.

Progress comes from the flow API (``GET /v1/flows/{id}``, polled every half second): on a
terminal, one live bar per phase; otherwise one line per phase change. Then a summary
table and the first findings (validator ``GET /v1/imports/{id}/issues``). Exit status 0
when the import completed, 1 when it failed or was rejected (with the reason), 2 when the
command was used wrongly (no such file, unknown category).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from contracts import Category

from . import import_view as view
from .client import TERMINAL
from .connection import (ApiKeyOption, Connection, DEFAULT_URLS, FlowUrlOption, IngestUrlOption, UserIdOption,
                         ValidatorUrlOption, connect)
from .errors import CliError, usage

POLL_SECONDS = 0.5


class LineDisplay:
    """Output that is not a terminal: one line per phase change."""

    def __init__(self, console: Console) -> None:
        self.console, self.log = console, view.PhaseLog()

    def started(self, name: str, detail: str) -> None:
        self._print(self.log.start(name, detail))

    def update(self, views: list[view.PhaseView]) -> None:
        self._print(self.log.update(views))

    def _print(self, lines: list[str]) -> None:
        for line in lines:
            self.console.print(line, markup=False)

    def close(self) -> None:
        pass


class BarDisplay:
    """A terminal: one live progress bar per phase."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)
        self.tasks: dict[str, TaskID] = {
            name: self.progress.add_task(name, total=None, start=False, status="pending") for name in view.PHASES}
        self.progress.start()

    def started(self, name: str, detail: str) -> None:
        self.progress.start_task(self.tasks[name])
        self.progress.update(self.tasks[name], status=f"uploading {detail}")

    def update(self, views: list[view.PhaseView]) -> None:
        for v in views:
            task = self.tasks[v.name]
            if v.status != "pending" and not self.progress.tasks[task].started:
                self.progress.start_task(task)
            status = v.status + (f": {v.detail}" if v.detail else "")
            if v.total is not None:
                self.progress.update(task, total=v.total, completed=v.done or 0, status=status)
            else:
                self.progress.update(task, status=status)
            if v.status in view.FINAL:
                self.progress.stop_task(task)

    def close(self) -> None:
        self.progress.stop()


class NoDisplay:
    def started(self, name: str, detail: str) -> None:
        pass

    def update(self, views: list[view.PhaseView]) -> None:
        pass

    def close(self) -> None:
        pass


def _check_arguments(path: Path, category: str) -> None:
    if not path.exists():
        raise usage(f"File {str(path)!r} not found.", "check the path (relative paths start in the current directory)")
    if not path.is_file():
        raise usage(f"{str(path)!r} is not a file.", "upload one CSV, XLSX, JSON or NDJSON file")
    valid = [c.value for c in Category]
    if category not in valid:
        raise usage(f"Unknown category {category!r}: use one of {', '.join(valid)}.")


def _follow(conn: Connection, flow_id: str, display: Any, timeout: float) -> dict[str, Any]:
    """Poll the flow until it completes or fails."""
    deadline = time.monotonic() + timeout
    while True:
        response = conn.call("flow-state", lambda: conn.client.get_flow(flow_id))
        # 404 until flow-state has projected the upload's first event: the flow exists, it is on its way.
        flow = None if response.status_code == 404 else conn.json("flow-state", lambda: response)
        if flow is not None:
            display.update(view.phases(flow))
            if flow["master"]["status"] in TERMINAL:
                return flow
        if time.monotonic() > deadline:
            raise CliError(f"The import had not finished after {timeout:.0f}s; it goes on without this command.",
                           f"`tributary flows show {flow_id}` shows where it is")
        time.sleep(POLL_SECONDS)


def _findings(conn: Connection, flow: dict[str, Any], import_id: str) -> dict[str, Any] | None:
    validation = (view._state(flow).get("validation") or {}).get("status")
    if validation not in ("completed", "failed"):
        return None  # nothing was validated, so there are no findings to show
    return conn.json("validator", lambda: conn.client.list_issues(import_id, page=1, page_size=view.FINDINGS_SHOWN))


def run_import(conn: Connection, out: Console, path: Path, category: str, *, validate_only: bool,
               source_system: str | None, idempotency_key: str | None, wait: bool, as_json: bool,
               timeout: float) -> None:
    _check_arguments(path, category)
    display: Any = NoDisplay() if as_json else BarDisplay(out) if out.is_terminal else LineDisplay(out)
    try:
        display.started("upload", f"{path.name}, {path.stat().st_size} bytes, {category}")
        receipt = conn.json("ingest", lambda: conn.client.upload(
            path, category, idempotency_key=idempotency_key, validate_only=validate_only,
            source_system=source_system))
        import_id, flow_id = str(receipt["import_id"]), str(receipt["flow_id"])
        if not wait:
            display.close()
            if as_json:
                print(json.dumps({"import_id": import_id, "flow_id": flow_id, "status": "submitted"}))
            else:
                out.print(f"import {import_id} submitted, flow {flow_id}", markup=False)
                out.print(f"follow it with `tributary flows show {flow_id}`", markup=False)
            return
        try:
            flow = _follow(conn, flow_id, display, timeout)
        except KeyboardInterrupt:
            raise CliError("Stopped waiting; the import goes on without this command.",
                           f"`tributary flows show {flow_id}` shows where it is") from None
    finally:
        display.close()
    findings = _findings(conn, flow, import_id)
    numbers = view.summary(flow)
    failed = view.failure(flow)
    if as_json:
        print(json.dumps({"import_id": import_id, "flow_id": flow_id, **numbers,
                          "failed": {"phase": failed[0], "reason": failed[1]} if failed else None,
                          "findings": findings and {"total": findings["total"], "items": findings["items"]}},
                         default=str))
    else:
        out.print(f"import {import_id}  flow {flow_id}", markup=False)
        out.print(view.summary_table(numbers))
        if findings and findings["items"]:
            out.print(view.findings_table(findings))
        if findings and findings["total"] > len(findings["items"]):
            out.print(f"all findings: {conn.client.validator_url}/v1/imports/{import_id}/issues.csv", markup=False)
    if failed:
        raise CliError(f"The import failed in {failed[0]}: {failed[1]}",
                       "fix the cause, then `tributary flows retry " + flow_id + "`, or upload a corrected file")


def register(app: typer.Typer, out: Console) -> None:
    @app.command("import")
    def import_(
        file: Annotated[Path, typer.Argument(help="CSV, XLSX, JSON array or NDJSON", show_default=False)],
        category: Annotated[str, typer.Option(
            "--category", "-c", show_default=False,
            help=f"what the file holds: {', '.join(c.value for c in Category)}")],
        validate_only: Annotated[bool, typer.Option("--validate-only", help="validate only; the inventory is "
                                                    "not touched")] = False,
        source_system: Annotated[str | None, typer.Option(help="the system the data comes from, e.g. servicenow "
                                                          "(ranks its values)")] = None,
        idempotency_key: Annotated[str | None, typer.Option(help="a repeat with the same key returns the first "
                                                            "import")] = None,
        wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the import until it ends")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")] = False,
        timeout: Annotated[float, typer.Option(help="seconds to follow the import")] = 3600.0,
        api_key: ApiKeyOption = None,
        ingest_url: IngestUrlOption = DEFAULT_URLS["ingest"],
        validator_url: ValidatorUrlOption = DEFAULT_URLS["validator"],
        flow_url: FlowUrlOption = DEFAULT_URLS["flow-state"],
        user_id: UserIdOption = "cli",
    ) -> None:
        """Upload a file, show each phase's progress, then the summary and the first findings."""
        conn = connect(api_key, ingest_url=ingest_url, validator_url=validator_url, flow_url=flow_url,
                       user_id=user_id)
        run_import(conn, out, file, category, validate_only=validate_only, source_system=source_system,
                   idempotency_key=idempotency_key, wait=wait, as_json=as_json, timeout=timeout)
        sys.stdout.flush()
