"""Guarantee 1 against real processes: SIGKILL any service at any instant, restart it, and
the tables end exactly as in an undisturbed run.

The same seeded files are imported twice, for the same tenant, in two separate stacks:
once undisturbed (the ``reference_run`` fixture), once while a seeded scheduler SIGKILLs
a chosen service at random moments and restarts it (at once or after a short delay).
Then every table is compared by checksum (see ``harness.TABLES`` for the columns and
why a few are left out), duplicates are looked for, and the completion events on the
topic must match the reference ones: same counts, one event id per stage however many
copies a crash left behind.

Replay a failure with the printed ``TRIBUTARY_FAULT_SEED`` (and the other knobs printed
with it); the kill report says what the pipeline was doing at each kill. Timing on a
real machine is never identical, so a replay reproduces the schedule, not every instant.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

import harness
from contracts import Tenant, topics

# The reference run (a session fixture) counts towards the first test's time.
pytestmark = [pytest.mark.fault, pytest.mark.timeout(harness.env_int("TRIBUTARY_FAULT_TIMEOUT_S", 2700))]


def test_sigkill_any_service_any_time_ends_in_the_same_tables(
        reference_run: harness.Run, fault_settings: harness.FaultSettings, import_files: list, fault_tenant: Tenant,
        pg_server: str, fault_log_dir: Path) -> None:
    schedule = harness.kill_schedule(fault_settings.seed, fault_settings.kills, gap_s=fault_settings.gap_s,
                                     restart_s=fault_settings.restart_s, files=len(import_files))
    print(f"\nkill schedule (seed {fault_settings.seed}): {harness.describe(schedule)}")

    stack = harness.Stack.create("disturbed", pg_server, fault_log_dir / "disturbed")
    try:
        stack.start()
        driver = harness.Driver(stack, fault_tenant)
        scheduler = harness.KillScheduler(stack, schedule, driver)
        started = time.monotonic()
        scheduler.start()
        try:
            imports = driver.run(import_files)
        finally:
            scheduler.stop()
        seconds = time.monotonic() - started
        assert scheduler.error is None, f"kill scheduler failed: {scheduler.error!r}"
        kills = scheduler.executed
        by_service = Counter(k.kill.service for k in kills)
        print(f"disturbed run: {seconds:.1f}s (reference {reference_run.seconds:.1f}s), {len(kills)} kills"
              f" ({dict(by_service)}) while importing " + ", ".join(f"{i.label}={i.status}" for i in imports))
        # Everything restarted and ready; then let every consumer drain what the crashes left
        # (late copies of events) before reading the tables.
        for proc in stack.procs.values():
            if proc.process is None or proc.process.poll() is not None:
                proc.start()
            proc.wait_healthy(timeout=120)
        harness.wait_caught_up(stack)

        # The faults really happened: enough kills, every service hit, all while imports flowed.
        assert len(kills) >= min(20, fault_settings.kills), (
            f"only {len(kills)} of {fault_settings.kills} kills happened before the imports finished"
            " (too few rows for the schedule? lower TRIBUTARY_FAULT_GAP_S)")
        assert {k.kill.service for k in kills} == set(harness.SERVICES)
        assert all(k.during != "idle" for k in kills), "a kill happened when no import was in flight"

        # Same verdicts as the reference run.
        assert [(i.label, i.status) for i in imports] == [(i.label, i.status) for i in reference_run.imports]

        # Every table, by checksum.
        actual = harness.checksums(stack, imports, fault_tenant)
        problems = harness.diff_checksums(reference_run.checksums, actual)
        assert not problems, f"tables differ from the undisturbed run (seed {fault_settings.seed}):\n" + "\n".join(
            problems)
        assert harness.duplicate_rows(stack) == {}

        # Completion events: one id per stage, copies identical, counts as in the reference run.
        completions = harness.completion_summary(harness.lifecycle_events(stack, imports))
        for name, summary in completions.items():
            assert summary["event_ids"] <= 1, f"{name}: {summary['event_ids']} distinct events"
        assert completions == reference_run.completions

        # Nothing was dead-lettered.
        for topic in (topics.RECORDS, topics.EVENTS, topics.VALIDATED_RECORDS):
            assert harness.read_topic(stack, topics.dlq(topic)) == [], f"{topics.dlq(topic)} is not empty"
    finally:
        stack.close()
