"""Earlier versions of events, and the upcasters that lift them to the next version.

An event changes its ``SCHEMA_VERSION`` when its payload changes shape. Its previous
model moves here, unchanged (same class name, so its exported JSON Schema stays the
same file), with an upcaster from that version to the next. Consumers decode an older
event by validating it against its own model, then upcasting step by step to the
current one (``contracts.codec``); producers only ever emit the current version.

History:

* ``ImportFailed`` v1 -> v2: ``code``, ``reason`` and ``details`` moved from the top
  level of the payload into ``error`` {code, reason, details}.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import Field

from .categories import Phase
from .envelope import Payload

# (event_type, version) -> function turning a payload dict of that version into the next.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


# ImportFailed v1: the error's fields flat beside ``phase``. (No docstring: it would become
# the schema's description and change the published ImportFailed.v1.json.)
class ImportFailed(Payload):
    EVENT_TYPE = "ImportFailed"
    SCHEMA_VERSION = 1

    phase: Phase
    code: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime | None = None


def import_failed_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    rest = dict(payload)
    error = {"code": rest.pop("code"), "reason": rest.pop("reason"), "details": rest.pop("details", {})}
    return rest | {"error": error}


# Every earlier version's model, by (event_type, version).
MODELS: dict[tuple[str, int], type[Payload]] = {
    (ImportFailed.EVENT_TYPE, ImportFailed.SCHEMA_VERSION): ImportFailed,
}

UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("ImportFailed", 1): import_failed_v1_to_v2,
}
