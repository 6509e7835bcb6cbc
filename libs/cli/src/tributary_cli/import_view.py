"""What ``tributary import`` shows, computed from the flow API's answers (pure: no I/O).

A flow (``GET /v1/flows/{id}``) carries each phase's state in ``child.phase_state``:
``status`` (running, paused, completed, failed), ``rows_done``/``rows_total`` while it runs,
its counts when it completes and ``code``/``reason`` when it fails. This module turns that
into phase views, into log lines for output that is not a terminal, into the summary table
and into the findings table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.table import Table

PHASES = ("upload", "validation", "enrichment")
FINAL = ("completed", "failed", "skipped")
FINDINGS_SHOWN = 10


@dataclass(frozen=True)
class PhaseView:
    name: str
    status: str  # pending, running, paused, completed, failed or skipped
    done: int | None = None
    total: int | None = None
    detail: str = ""


def _state(flow: dict[str, Any]) -> dict[str, Any]:
    return (flow.get("child") or flow["master"]).get("phase_state") or {}


def _count(values: dict[str, Any], key: str) -> int:
    return int(values.get(key) or 0)


def _detail(name: str, ps: dict[str, Any]) -> str:
    status = ps.get("status")
    if status == "failed":
        return f"{ps.get('code', 'failed')}: {ps.get('reason', '')}".rstrip(": ")
    if status != "completed":
        return ""
    if name == "upload":
        return f"{_count(ps, 'record_count')} rows"
    if name == "validation":
        return (f"{_count(ps, 'valid_count')} valid, {_count(ps, 'invalid_count')} invalid, "
                f"{_count(ps, 'error_count')} errors, {_count(ps, 'warning_count')} warnings")
    return (f"assets {_count(ps, 'assets_created')} created, {_count(ps, 'assets_updated')} updated, "
            f"{_count(ps, 'assets_unchanged')} unchanged; {_dependencies(ps)} dependencies, "
            f"{_count(ps, 'parked_edges')} parked")


def _dependencies(enrichment: dict[str, Any]) -> int:
    # The edges this import asserted that are in the inventory now, whatever each did to it.
    return sum(_count(enrichment, f"dependencies_{k}") for k in ("created", "updated", "unchanged"))


def phases(flow: dict[str, Any]) -> list[PhaseView]:
    """Each phase of the import as the flow shows it now."""
    state = _state(flow)
    master = flow["master"]
    validate_only = bool(state.get("validation", {}).get("validate_only"))
    views = []
    for name in PHASES:
        ps = state.get(name) or {}
        status = ps.get("status") or "pending"
        if name == "enrichment" and status == "pending" and validate_only and master["status"] == "completed":
            status = "skipped"  # --validate-only: the inventory is not touched
        done, total = ps.get("rows_done"), ps.get("rows_total")
        if status == "completed":
            total = ps.get("record_count") if name != "enrichment" else ps.get("rows_applied", total)
            done = total
        views.append(PhaseView(name, status, done, total, _detail(name, ps)))
    return views


class PhaseLog:
    """One line per phase change, for output that is not a terminal (logs, CI, pipes).

    Polling may miss a state (a phase can start and finish between two polls), so a phase
    seen finished is logged as started first: the same import always logs the same lines.
    Row progress is not logged: how much of it a poll sees is chance.
    """

    def __init__(self) -> None:
        self.logged: dict[str, str] = {}

    def start(self, name: str, detail: str = "") -> list[str]:
        if name in self.logged:
            return []
        self.logged[name] = "running"
        return [f"{name}: started" + (f" ({detail})" if detail else "")]

    def update(self, views: list[PhaseView]) -> list[str]:
        lines: list[str] = []
        for v in views:
            last = self.logged.get(v.name)
            if v.status == "pending" or v.status == last or last in FINAL:
                continue
            if v.status != "skipped":
                lines += self.start(v.name)
            if v.status == "running" and self.logged[v.name] == "running":
                continue
            self.logged[v.name] = v.status
            lines.append(f"{v.name}: {v.status}" + (f" ({v.detail})" if v.detail else ""))
        return lines


def duration_seconds(flow: dict[str, Any]) -> float | None:
    master = flow["master"]
    if not master.get("completed_at") or not master.get("created_at"):
        return None
    end, start = (datetime.fromisoformat(str(master[k])) for k in ("completed_at", "created_at"))
    return max((end - start).total_seconds(), 0.0)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def summary(flow: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the summary table (None: the phase did not get that far)."""
    state = _state(flow)
    upload, validation, enrichment = (state.get(p) or {} for p in PHASES)
    validated = validation.get("status") == "completed"
    enriched = enrichment.get("status") == "completed"
    child = flow.get("child") or {}

    def of(done: bool, values: dict[str, Any], key: str) -> int | None:
        return _count(values, key) if done else None

    return {
        "status": flow["master"]["status"], "verdict": child.get("status"),
        "rows": upload.get("record_count"),
        "valid": of(validated, validation, "valid_count"), "invalid": of(validated, validation, "invalid_count"),
        "assets_created": of(enriched, enrichment, "assets_created"),
        "assets_updated": of(enriched, enrichment, "assets_updated"),
        "assets_unchanged": of(enriched, enrichment, "assets_unchanged"),
        "dependencies": _dependencies(enrichment) if enriched else None,
        "parked": of(enriched, enrichment, "parked_edges"),
        "duration_seconds": duration_seconds(flow),
    }


SUMMARY_LABELS = (("rows", "rows"), ("valid", "valid"), ("invalid", "invalid"),
                  ("assets_created", "assets created"), ("assets_updated", "assets updated"),
                  ("assets_unchanged", "assets unchanged"), ("dependencies", "dependencies"),
                  ("parked", "parked dependencies"))


def summary_table(numbers: dict[str, Any]) -> Table:
    table = Table(title="Summary", box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("status", f"{numbers['status']}" + (f" ({numbers['verdict']})" if numbers.get("verdict")
                                                        and numbers["verdict"] != numbers["status"] else ""))
    for key, label in SUMMARY_LABELS:
        table.add_row(label, "-" if numbers[key] is None else str(numbers[key]))
    table.add_row("duration", format_duration(numbers["duration_seconds"]))
    return table


def findings_table(page: dict[str, Any]) -> Table:
    """The first findings of ``GET /v1/imports/{id}/issues`` (ordered by row, column, rule)."""
    items, total = page["items"], page["total"]
    shown = f"first {len(items)} of {total}" if total > len(items) else f"{total}"
    table = Table(title=f"Findings ({shown})", box=box.SIMPLE, title_justify="left")
    for col, justify in (("row", "right"), ("column", "left"), ("rule", "left"), ("severity", "left"),
                         ("message", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for i in items:
        table.add_row("-" if i.get("row_number") is None else str(i["row_number"]), i.get("column") or "-",
                      i["rule_id"], i["severity"], i["message"])
    return table


def failure(flow: dict[str, Any]) -> tuple[str, str] | None:
    """(phase, reason) of a failed flow."""
    if flow["master"]["status"] != "failed":
        return None
    state = _state(flow)
    for name in (*PHASES, "complete"):
        ps = state.get(name) or {}
        if ps.get("status") == "failed":
            code = f" ({ps['code']})" if ps.get("code") else ""
            return name, f"{ps.get('reason') or (flow.get('child') or {}).get('error_message') or 'no reason given'}{code}"
    return flow["master"].get("current_phase") or "?", (flow.get("child") or {}).get("error_message") or "no reason given"
