"""Validating a fully staged import: findings, verdict, accepted rows, completion marker.

Pass 1 runs the category's agents over every staged row (chunked, bounded memory) and
writes the findings; cross-row agents follow (duplicates set-based in SQL, the
dependency graph from the checker); then the optional LLM review. The verdict comes
from the findings store, so it is exact however the work was chunked. Pass 2 publishes
the accepted rows, normalised, and the completion marker last.
"""

from __future__ import annotations

import logging
import re
import time

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts import (
    AgentResult,
    Category,
    Envelope,
    ErrorInfo,
    ImportFailed,
    ImportUploaded,
    Phase,
    ValidatedBatch,
    ValidationCompleted,
    topics,
)
from contracts.producer import RecordBatcher
from tributary_runtime import staging
from tributary_runtime.consumer import Unit
from tributary_runtime.progress import ProgressReporter

from . import SCHEMA, first_half
from . import findings as store
from .duplicates import flag_duplicates
from .field_mapping import CANONICAL, ColumnMapping, map_columns, missing_required
from .llm_review import ReviewConfig, UsageLedger, review_import
from .policies import VerdictPolicy, policy_for
from .normalised_rows import Chunk, NormalisedRows
from .rules import AGENTS, RULES, Finding, Rule, RowChecker, checker_for
from .settings import ValidatorSettings

log = logging.getLogger(__name__)

PRODUCER = "validator"
LLM_AGENT = "llm_review"
# Import-level rules raised here rather than by a category's agents.
IMPORT_RULES = (
    Rule("required_column", "schema", "error", "a column the category needs is missing from the header"),
    Rule("no_rows", "schema", "error", "the import has no data rows"),
    Rule("llm_review", LLM_AGENT, "warning", "an observation of the LLM review agent on a sampled row"),
    Rule("llm_review_unavailable", LLM_AGENT, "warning", "the LLM review could not run or answer usably"),
)
# Columns of our own failed-rows download: ignored when a corrected file comes back.
OWN_COLUMNS = frozenset({"tributary_errors"})


@dataclass(frozen=True)
class Validation:
    """What one validation needs besides the unit of work."""

    settings: ValidatorSettings
    ledger: UsageLedger

    @property
    def review(self) -> ReviewConfig:
        s = self.settings
        return ReviewConfig(model=s.llm_model, sample_rows=s.llm_sample_rows, budget_usd=s.llm_budget_usd,
                            timeout_s=s.llm_timeout_s, mock_response=s.llm_mock_response)


def rules_of(category: Category) -> dict[str, Rule]:
    return {r.rule_id: r for r in (*RULES[category], *IMPORT_RULES)}


class Columns:
    """The uploaded header seen through the mapping: canonical names in, uploaded names out."""

    def __init__(self, mapping: ColumnMapping, category: Category) -> None:
        self.mapping = mapping
        self.kept = {col: name for col, name in mapping.columns.items() if name not in OWN_COLUMNS}
        self.uploaded_name = {name: col for col, name in self.kept.items()}
        self._names = list(self.uploaded_name)
        self._canonical = frozenset(CANONICAL[category])
        snake = sorted((n for n in self.uploaded_name if "_" in n), key=len, reverse=True)
        self._snake_names = re.compile(r"\b(" + "|".join(map(re.escape, snake)) + r")\b" if snake else r"(?!x)x")

    def canonical_row(self, row: dict[str, str | None]) -> dict[str, str | None]:
        return {name: row.get(col) for col, name in self.kept.items()}

    def published(self, row: dict[str, Any]) -> dict[str, Any]:
        """A normalised row as pass 2 publishes it: the uploaded columns, plus the values an agent
        derived (e.g. every address of a multi-address cell); the canonical columns the file lacks
        stay behind."""
        out = {name: row.get(name) for name in self._names}
        out.update((k, v) for k, v in row.items() if k not in self._canonical and k not in out)
        return out

    def as_uploaded(self, f: Finding) -> Finding:
        """Findings name the column as the user's file does, so they can find and fix it."""
        if f.column is None or f.column not in self.uploaded_name:
            return f
        return Finding(f.row_number, self.uploaded_name[f.column], f.rule_id, f.severity,
                       self._renamed(f.message, f.column), f.value)

    def _renamed(self, message: str, column: str) -> str:
        """The message with column names as uploaded: the finding's own column where the message opens
        with it, and any other snake_case column name wherever it appears (plain words such as
        "environment" or "port" are left alone in running text)."""
        own = self.uploaded_name[column]
        if message.startswith(column) and message[len(column):len(column) + 1] in (" ", ":", ""):
            message = own + message[len(column):]
        return self._snake_names.sub(lambda m: self.uploaded_name[m.group(0)], message)


async def validate_import(unit: Unit, marker: Envelope[ImportUploaded], ctx: Validation) -> None:
    upload = marker.payload
    category = Category(upload.category)
    conn, settings = unit.conn, ctx.settings
    started_at = datetime.now(UTC)
    mapping = map_columns(category, upload.columns)
    columns = Columns(mapping, category)
    rules = rules_of(category)
    agent_of = {rule_id: r.agent for rule_id, r in rules.items()}
    policy = await policy_for(conn, marker.tenant, category, settings.max_error_rate)
    # A retried validation (PhaseRetryRequested) starts clean and publishes under its own ids.
    attempt = await staging.attempt_of(conn, marker.import_id)
    await store.clear_findings(conn, marker.import_id)
    await staging.refresh_statistics(conn, marker.import_id, upload.record_count, upload.batch_count)
    run: dict[str, Any] = {
        "import_id": marker.import_id, "client_account_id": marker.tenant.client_account_id,
        "engagement_id": marker.tenant.engagement_id, "category": category.value, "field_mapping": mapping.columns,
        "mapping": mapping.report(), "validate_only": upload.validate_only, "max_error_rate": policy.max_error_rate,
        "started_at": started_at,
    }

    missing = missing_required(category, mapping)
    if missing:
        found = [Finding(None, None, "required_column", "error", f"required column missing: {m}") for m in missing]
        await store.write_findings(conn, marker.import_id, found, agent_of)
        reason = f"required column(s) missing: {'; '.join(missing)}"
        await _fail(unit, marker, run, upload.record_count, "required_column", reason,
                    {"missing_columns": missing, "mapping": mapping.report()}, started_at, attempt)
        return

    checker = checker_for(category, reference_time=marker.occurred_at, units=mapping.units)
    # Pass 2 publishes the rows as pass 1's checker normalised them, where each row's is its own
    # (kept as they are published: ``Columns.published``).
    with NormalisedRows(settings.validation_chunk_rows, settings.validation_spill_dir,
                        keep=checker.normalises_per_row,
                        max_bytes=settings.validation_spill_max_bytes) as normalised:
        # Where a validation's time goes, logged at its end (seconds by part).
        took: dict[str, float] = {}
        started = time.perf_counter()
        record_count = await _run_agents(unit, marker, ctx, checker, columns, rules, agent_of, attempt, normalised,
                                         took)
        tally = await store.counts(conn, marker.import_id)
        invalid = tally["invalid_rows"]
        counts = {"record_count": record_count, "valid_count": record_count - invalid, "invalid_count": invalid,
                  "error_count": tally["errors"], "warning_count": tally["warnings"]}
        agent_results = _agent_results(category, tally["by_rule"], llm=settings.llm_model is not None)
        by_rule = _by_rule(tally["by_rule"])
        summary = counts | {"findings_by_rule": by_rule, "agent_results": [a.model_dump() for a in agent_results],
                            "policy": policy.as_dict()}
        run |= {"agent_results": summary["agent_results"], "findings_by_rule": by_rule}

        failure = _verdict_failure(record_count, invalid, by_rule, tally["by_rule"], policy)
        if failure is not None:
            code, reason = failure
            await _fail(unit, marker, run | counts, record_count, code, reason, summary, started_at, attempt)
            return

        batcher = RecordBatcher(category, max_rows=settings.validated_batch_rows, payload_type=ValidatedBatch)
        if not upload.validate_only:
            publishing = time.perf_counter()
            await _publish_accepted(unit, marker, category, columns, batcher, settings, attempt, normalised)
            took["pass 2"] = time.perf_counter() - publishing

        verdict = "completed_with_errors" if invalid else "completed"
        done = ValidationCompleted(
            category=category, verdict=verdict, batch_count=batcher.batch_count, checksum=batcher.checksum,
            validate_only=upload.validate_only, field_mapping=columns.kept, rules_applied=sorted(rules),
            mapping_template=mapping.template, extra_columns=list(mapping.extras), agent_results=agent_results,
            findings_by_rule=by_rule, started_at=started_at,
            source_system=upload.source_system or mapping.template, **counts,
        )
        await unit.publish(topics.EVENTS, marker.follow(done, producer=PRODUCER,
                                                        stage_key=staging.attempt_key("", attempt)))
        await store.record_run(conn, run | counts | {"verdict": verdict})
        await staging.finish(conn, marker.import_id, "validated")
        log.info("validated %d rows in %.1f s: %s", record_count, time.perf_counter() - started,
                 ", ".join(f"{part} {seconds:.1f} s" for part, seconds in took.items()))


Rows = list[tuple[int, dict[str, str | None]]]


def check_chunk(checker: RowChecker, columns: Columns, chunk: list[tuple[int, dict[str, str | None]]]
                ) -> tuple[list[Finding], Chunk]:
    """A chunk of staged rows checked: their findings, and the rows as normalised and published."""
    found: list[Finding] = []
    checked: Chunk = []
    canonical_row, published, check = columns.canonical_row, columns.published, checker.check
    for row_number, row in chunk:
        row_normalised, row_findings = check(row_number, canonical_row(row))
        found.extend(row_findings)
        checked.append((row_number, published(row_normalised)))
    return found, checked


def sample_of(columns: Columns, chunk: list[tuple[int, dict[str, str | None]]], sample: Rows, size: int) -> None:
    """Fill ``sample`` (the LLM review's) up to ``size`` with the chunk's first rows, canonical."""
    if len(sample) < size:
        sample.extend((n, columns.canonical_row(row)) for n, row in chunk[:size - len(sample)])


async def _run_agents(unit: Unit, marker: Envelope[ImportUploaded], ctx: Validation, checker: RowChecker,
                      columns: Columns, rules: dict[str, Rule], agent_of: dict[str, str], attempt: int,
                      normalised: NormalisedRows, took: dict[str, float]) -> int:
    """Every agent over every row; findings go to the store, the rows as normalised to ``normalised``
    (where it keeps them); ``took`` gets the seconds of each part. Returns the number of rows."""
    conn, settings = unit.conn, ctx.settings
    category = Category(marker.payload.category)
    progress = ProgressReporter(unit, marker, Phase.VALIDATION, marker.payload.record_count, PRODUCER,
                                attempt=attempt)
    sample: Rows = []
    started = time.perf_counter()
    worker = await _first_half(conn, marker, checker, columns, settings, normalised)
    try:
        record_count = 0
        from_row = worker.job.before_row if worker is not None else 0
        async for chunk in staging.iter_rows(conn, marker.import_id, settings.validation_chunk_rows,
                                             from_row=from_row):
            record_count += await _check_and_store(conn, marker, checker, columns, agent_of, normalised, chunk)
            sample_of(columns, chunk, sample, settings.llm_sample_rows)
            await progress.advance(record_count)
        took["pass 1"] = time.perf_counter() - started
        if worker is not None:
            waiting = time.perf_counter()
            first, sample = await _take_first_half(conn, marker, worker, checker, columns, agent_of, normalised,
                                                   took)
            took["first half waited for and taken"] = time.perf_counter() - waiting
            record_count += first
            await progress.advance(record_count)
    finally:
        if worker is not None:
            worker.close()
    await store.write_findings(conn, marker.import_id, map(columns.as_uploaded, checker.finish()), agent_of)
    if record_count == 0:
        return 0
    if category is Category.CMDB_EXPORT:
        flagging = time.perf_counter()
        await flag_duplicates(conn, marker.import_id, columns.uploaded_name, rules, record_count)
        took["in-file duplicates"] = time.perf_counter() - flagging
    if settings.llm_model:
        reviewed = await review_import(
            ctx.ledger, ctx.review, client_account_id=marker.tenant.client_account_id,
            engagement_id=marker.tenant.engagement_id, import_id=marker.import_id, category=category,
            columns=list(columns.uploaded_name), sample=sample)
        await store.write_findings(conn, marker.import_id, map(columns.as_uploaded, reviewed), agent_of)
    return record_count


async def _check_and_store(conn: Any, marker: Envelope[ImportUploaded], checker: RowChecker, columns: Columns,
                           agent_of: dict[str, str], normalised: NormalisedRows,
                           chunk: list[tuple[int, dict[str, str | None]]]) -> int:
    found, checked = check_chunk(checker, columns, chunk)
    normalised.extend(checked)
    await store.write_findings(conn, marker.import_id, map(columns.as_uploaded, found), agent_of)
    return len(chunk)


async def _first_half(conn: Any, marker: Envelope[ImportUploaded], checker: RowChecker, columns: Columns,
                      settings: ValidatorSettings, normalised: NormalisedRows) -> first_half.Worker | None:
    """A worker checking the first half of the rows (``validator.first_half``), where it pays. The
    two halves' normalised rows share the spill bound."""
    upload = marker.payload
    threshold = settings.validation_worker_from_rows
    if threshold <= 0 or upload.record_count < threshold or not checker.independent_rows:
        return None
    before_row = await first_half.split_row(conn, marker.import_id, upload.record_count)
    if before_row is None:
        return None
    half = None if normalised.max_bytes is None else normalised.max_bytes // 2
    try:
        findings_path, rows_path = first_half.new_paths(settings.validation_spill_dir)
        worker = first_half.Worker(first_half.Job(
            dsn=settings.asyncpg_dsn, schema=SCHEMA, import_id=marker.import_id, before_row=before_row,
            category=Category(upload.category), mapping=columns.mapping, reference_time=marker.occurred_at,
            chunk_rows=settings.validation_chunk_rows, findings_path=findings_path, rows_path=rows_path,
            rows_max_bytes=half, sample_rows=settings.llm_sample_rows))
    except OSError as exc:  # no file or no process to be had: the validator checks every row itself
        log.warning("no first-half worker (%s): checking every row here", exc)
        return None
    normalised.max_bytes = half
    return worker


async def _take_first_half(conn: Any, marker: Envelope[ImportUploaded], worker: first_half.Worker,
                           checker: RowChecker, columns: Columns, agent_of: dict[str, str],
                           normalised: NormalisedRows, took: dict[str, float]) -> tuple[int, Rows]:
    """The worker's findings, and its rows before the validator's. Where it failed, or saw fewer
    rows than this transaction does, the validator writes that half's findings itself and keeps
    no rows (pass 2 checks the staged rows again). Returns the half's row count and its first rows."""
    job = worker.job
    checked: first_half.Checked | None
    try:
        checked = await worker.checked()
    except Exception as exc:  # noqa: BLE001 - whatever stopped it (its connection, say)
        log.warning("the first-half worker failed (%s: %s): checking its rows here", type(exc).__name__, exc)
        checked = None
    else:
        took["first half's worker"] = checked.seconds
    expected = await first_half.rows_before(conn, marker.import_id, job.before_row)
    if checked is None or checked.rows != expected:
        if checked is not None:
            log.warning("the first-half worker read %d of the %d rows before row %d: checking them here",
                        checked.rows, expected, job.before_row)
        normalised.give_up("the first half was checked again here")
        rows, sample = 0, []
        async for chunk in staging.iter_rows(conn, marker.import_id, job.chunk_rows, before_row=job.before_row):
            rows += await _check_and_store(conn, marker, checker, columns, agent_of, normalised, chunk)
            sample_of(columns, chunk, sample, job.sample_rows)
        return rows, sample
    for found in first_half.read_chunks(job.findings_path):
        await store.write_findings(conn, marker.import_id, found, agent_of)
    if checked.rows_kept:
        normalised.put_first(job.rows_path)
    else:
        normalised.give_up("the first half's normalised rows outgrew the spill bound")
    return checked.rows, checked.sample


async def _publish_accepted(unit: Unit, marker: Envelope[ImportUploaded], category: Category, columns: Columns,
                            batcher: RecordBatcher, settings: ValidatorSettings, attempt: int,
                            normalised: NormalisedRows) -> None:
    """Pass 2: the rows without errors, normalised and as published (``Columns.published``): as
    pass 1 kept them, or (where it did not) by a fresh run of the same agents over the staged rows."""
    conn = unit.conn
    invalid = {r["row_number"] for r in await conn.fetch(
        "SELECT DISTINCT row_number FROM row_issues WHERE import_id = $1 AND severity = 'error'"
        " AND row_number IS NOT NULL", marker.import_id)}

    async def accept(row_number: int, out: dict[str, Any]) -> None:
        batch = batcher.add(row_number, out)
        if batch is not None:
            await _publish_batch(unit, marker, batch, attempt)

    if normalised.kept:
        for row_number, row in normalised:
            if row_number not in invalid:
                await accept(row_number, row)
    else:
        checker = checker_for(category, reference_time=marker.occurred_at, units=columns.mapping.units)
        async for chunk in staging.iter_rows(conn, marker.import_id, settings.validation_chunk_rows):
            for row_number, row in chunk:
                if row_number not in invalid:
                    await accept(row_number, columns.published(checker.check(row_number,
                                                                             columns.canonical_row(row))[0]))
    batch = batcher.flush()
    if batch is not None:
        await _publish_batch(unit, marker, batch, attempt)


def _by_rule(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["rule_id"]] = out.get(r["rule_id"], 0) + r["n"]
    return out


def _agent_results(category: Category, rows: list[dict[str, Any]], *, llm: bool) -> list[AgentResult]:
    agents = list(AGENTS[category]) + ([LLM_AGENT] if llm else [])
    rules_by_agent: dict[str, list[str]] = {a: [] for a in agents}
    for r in (*RULES[category], *IMPORT_RULES):
        if r.agent in rules_by_agent:
            rules_by_agent[r.agent].append(r.rule_id)
    errors = dict.fromkeys(agents, 0)
    warnings = dict.fromkeys(agents, 0)
    for r in rows:
        agent = r["agent"] if r["agent"] in errors else agents[0]
        (errors if r["severity"] == "error" else warnings)[agent] += r["n"]
    return [AgentResult(agent=a, status="errors" if errors[a] else "warnings" if warnings[a] else "passed",
                        error_count=errors[a], warning_count=warnings[a], rules=sorted(rules_by_agent[a]))
            for a in agents]


def _verdict_failure(record_count: int, invalid: int, by_rule: dict[str, int], rows: list[dict[str, Any]],
                     policy: VerdictPolicy) -> tuple[str, str] | None:
    if record_count == 0:
        return "no_rows", "the import has no rows"
    blocking = sorted({r["rule_id"] for r in rows if r["severity"] == "error" and r["rule_id"] in
                       policy.blocking_rules})
    if blocking:
        listed = ", ".join(f"{rule} ({by_rule[rule]})" for rule in blocking)
        return "blocking_rule", f"blocking rule(s) failed: {listed}"
    rate = invalid / record_count
    if rate > policy.max_error_rate:
        return "error_threshold", (f"{invalid} of {record_count} rows are invalid ({rate:.1%}), above the "
                                   f"{policy.max_error_rate:.1%} threshold")
    return None


async def _publish_batch(unit: Unit, marker: Envelope[ImportUploaded], batch: ValidatedBatch, attempt: int) -> None:
    await unit.publish(topics.VALIDATED_RECORDS, marker.follow(
        batch, producer=PRODUCER, stage_key=staging.attempt_key(str(batch.batch_seq), attempt)))


async def _fail(unit: Unit, marker: Envelope[Any], run: dict[str, Any], record_count: int, code: str,
                reason: str, details: dict[str, Any], started_at: datetime, attempt: int) -> None:
    failed = ImportFailed(phase=Phase.VALIDATION, error=ErrorInfo(code=code, reason=reason, details=details),
                          started_at=started_at)
    await unit.publish(topics.EVENTS, marker.follow(failed, producer=PRODUCER,
                                                    stage_key=staging.attempt_key("validation", attempt)))
    defaults = {"record_count": record_count, "valid_count": 0, "invalid_count": 0, "error_count": 0,
                "warning_count": 0}
    await store.record_run(unit.conn, defaults | run | {
        "verdict": "failed", "failure_code": code, "failure_reason": reason})
    await staging.finish(unit.conn, marker.import_id, "failed")
