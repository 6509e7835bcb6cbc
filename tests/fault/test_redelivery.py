"""At-least-once delivery, taken literally: every event of finished imports arrives again.

Two ways, against the undisturbed reference stack once its imports are finished:

1. *Republish*: every message of those imports is read back from the three topics the
   consumers read (records, lifecycle events, validated records; selected by their
   import-id key) and produced again, byte for byte with its headers, to the same partition.
2. *Rewind*: the consumers are stopped, their stored offsets (``consumer_offsets`` in each
   service's own schema, the only offsets that count) are set to 0, and they are started
   again, so each re-reads its topics from the beginning.

Both times every table's checksum must stay what it was, the services must publish
nothing new (no status snapshot, no completion marker, no dead letter), and every stage
must still have exactly one completion event id.
"""

from __future__ import annotations

from collections import Counter

import pytest

import harness
from contracts import topics

pytestmark = [pytest.mark.fault, pytest.mark.timeout(harness.env_int("TRIBUTARY_FAULT_TIMEOUT_S", 2700))]

CONSUMED = (topics.RECORDS, topics.EVENTS, topics.VALIDATED_RECORDS)
WATCHED = (*CONSUMED, topics.FLOW_STATUS, *(topics.dlq(t) for t in CONSUMED))


def topic_sizes(stack: harness.Stack) -> dict[str, int]:
    ends = harness.end_offsets(stack, WATCHED)
    return {t: sum(off for (topic, _), off in ends.items() if topic == t) for t in WATCHED}


def assert_unchanged(run: harness.Run, tenant, expected_sizes: dict[str, int], what: str) -> None:
    stack = run.stack
    harness.wait_caught_up(stack)
    problems = harness.diff_checksums(run.checksums, harness.checksums(stack, run.imports, tenant))
    assert not problems, f"tables changed after {what}:\n" + "\n".join(problems)
    assert harness.duplicate_rows(stack) == {}
    assert topic_sizes(stack) == expected_sizes, f"the services published something after {what}"
    completions = harness.completion_summary(harness.lifecycle_events(stack, run.imports))
    assert completions == run.completions


def test_republished_events_change_nothing(reference_run: harness.Run, fault_tenant) -> None:
    stack = reference_run.stack
    stack.start()
    try:
        harness.wait_caught_up(stack)
        keys = {str(i.import_id).encode() for i in reference_run.imports}
        again = [m for t in CONSUMED for m in harness.read_topic(stack, t) if m.key in keys]
        before = topic_sizes(stack)
        by_topic = Counter(m.topic for m in again)
        print(f"\nrepublishing {len(again)} messages: {dict(by_topic)} "
              f"({dict(harness.count_by_type(again))})")
        assert by_topic[topics.RECORDS] and by_topic[topics.EVENTS] and by_topic[topics.VALIDATED_RECORDS]
        harness.produce(stack, again)
        # The copies themselves are the only growth: nobody reacts to a duplicate.
        expected = {t: before[t] + by_topic.get(t, 0) for t in WATCHED}
        assert_unchanged(reference_run, fault_tenant, expected, "republishing every event")
    finally:
        stack.stop()


def test_consumers_rewound_to_offset_zero_change_nothing(reference_run: harness.Run, fault_tenant) -> None:
    stack = reference_run.stack
    stack.start()
    try:
        harness.wait_caught_up(stack)
        before = topic_sizes(stack)
        consumers = tuple(harness.GROUPS)
        # Offsets live beside the effects; rewinding is an UPDATE while the consumer is down.
        stack.stop(consumers)
        with stack.connect() as conn:
            for group, schema, _ in harness.GROUPS.values():
                rewound = conn.execute(f"UPDATE {schema}.consumer_offsets SET next_offset = 0 WHERE group_id = %s",
                                       (group,)).rowcount
                assert rewound, f"{group} had no stored offsets"
        assert harness.lag(stack), "nothing to re-read after the rewind"
        stack.start(consumers)
        assert_unchanged(reference_run, fault_tenant, before, "rewinding every consumer group to offset 0")
        # They really re-read everything: stored offsets are back at the ends of their topics.
        assert harness.lag(stack) == {}
    finally:
        stack.stop()
