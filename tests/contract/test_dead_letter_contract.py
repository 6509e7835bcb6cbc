"""The AsyncAPI document's dead-letter message matches what the consumer loop writes.

contracts cannot import the runtime (the runtime depends on contracts), so the header
names and error codes published in contracts.asyncapi are checked here against
tributary_runtime.dlq and the codes the consumer loop passes to it.
"""

from __future__ import annotations

import ast
import inspect
from types import SimpleNamespace

from contracts import topics
from contracts.asyncapi import DLQ_HEADERS, dead_letter_codes
from contracts.topic_config import MAX_MESSAGE_BYTES
from tributary_runtime import broker, consumer
from tributary_runtime.dlq import dead_letter


def test_header_names() -> None:
    message = SimpleNamespace(topic=topics.EVENTS, partition=2, offset=41, key=b"k", value=b"{",
                              headers=[("event_type", b"ImportUploaded"), ("dlq.error", b"old")])
    topic, key, value, headers = dead_letter(message, code="malformed", reason="not JSON", consumer_group="g")
    assert (topic, key, value) == (topics.dlq(topics.EVENTS), b"k", b"{")
    names = [name for name, _ in headers]
    assert {n for n in names if n.startswith("dlq.")} == set(DLQ_HEADERS)
    assert "event_type" in names and names.count("dlq.error") == 1


def _literal_codes(source: str) -> set[str]:
    """String literals passed as the code of a dead-letter call in ``source``."""
    codes = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name not in {"dead_letter", "_dead_letter", "_send_dead_letter"}:
            continue
        args = [kw.value for kw in node.keywords if kw.arg == "code"] + list(node.args)
        codes |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                  and a.value.islower() and " " not in a.value}
    return codes


def test_error_codes_are_published() -> None:
    codes = _literal_codes(inspect.getsource(consumer))
    assert codes, "found no dead-letter code in the consumer loop"
    assert codes <= set(dead_letter_codes()), f"unpublished dlq.error_code: {codes - set(dead_letter_codes())}"


def test_topic_accepts_the_largest_message() -> None:
    assert broker.MAX_MESSAGE_BYTES == MAX_MESSAGE_BYTES
