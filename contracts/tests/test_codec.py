"""Round trips of every event through the wire format, and the ways decoding refuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from contracts import (
    REGISTRY,
    EnrichmentCompleted,
    Envelope,
    ErrorInfo,
    FlowStatus,
    ImportFailed,
    ImportUploaded,
    MalformedEvent,
    PhaseProgress,
    RecordBatch,
    Tenant,
    UnknownEventType,
    UnsupportedSchemaVersion,
    ValidatedBatch,
    ValidationCompleted,
    decode,
    deterministic_event_id,
)
from contracts.producer import RecordBatcher
from contracts.schema_export import schemas

TENANT = Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4())
IMPORT = uuid.uuid4()

SAMPLES = [
    RecordBatch(category="cmdb_export", batch_seq=1, columns=["hostname"], row_numbers=[1, 2],
                rows=[["a"], [None]]),
    ValidatedBatch(category="app_discovery", batch_seq=3, columns=["source", "target"], row_numbers=[7],
                   rows=[["x", "y"]]),
    ImportUploaded(category="infrastructure", filename="perf.csv", file_format="csv", record_count=2,
                   batch_count=1, checksum="c" * 64, columns=["hostname"]),
    ValidationCompleted(category="sensitive_data", verdict="completed_with_errors", record_count=3, valid_count=2,
                        invalid_count=1, error_count=1, batch_count=1, checksum="d" * 64,
                        field_mapping={"Host": "hostname"}),
    EnrichmentCompleted(category="cmdb_export", rows_applied=2, assets_created=1, assets_updated=1),
    ImportFailed(phase="validation", error=ErrorInfo(code="required_column",
                                                     reason="required column(s) missing: hostname")),
    PhaseProgress(phase="enrichment", rows_done=10, rows_total=20),
    FlowStatus(flow_id=uuid.uuid4(), child_flow_id=uuid.uuid4(), import_id=IMPORT, category="cmdb_export",
               status="running", child_status="running", current_phase="validation", progress_percentage=25.0,
               phase_state={}, version=1, updated_at=datetime(2026, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: p.EVENT_TYPE)
def test_every_event_round_trips(payload) -> None:
    env = Envelope.wrap(payload, tenant=TENANT, import_id=IMPORT, producer="test", flow_id=uuid.uuid4())
    decoded = decode(env.encode(), env.headers())
    assert decoded == env
    assert type(decoded.payload) is type(payload)
    # Without headers the body alone is enough.
    assert decode(env.encode()) == env


def test_deterministic_ids_make_duplicates_recognisable() -> None:
    batch = SAMPLES[0]
    a = Envelope.wrap(batch, tenant=TENANT, import_id=IMPORT, producer="ingest", stage_key="1")
    b = Envelope.wrap(batch, tenant=TENANT, import_id=IMPORT, producer="ingest", stage_key="1")
    assert a.event_id == b.event_id == deterministic_event_id(IMPORT, "RecordBatch", "1")
    assert Envelope.wrap(batch, tenant=TENANT, import_id=IMPORT, producer="x", stage_key="2").event_id != a.event_id


def test_follow_keeps_tenant_import_and_correlation() -> None:
    cause = Envelope.wrap(SAMPLES[2], tenant=TENANT, import_id=IMPORT, producer="ingest", flow_id=uuid.uuid4())
    effect = cause.follow(SAMPLES[5], producer="validator", stage_key="validation")
    assert (effect.tenant, effect.import_id, effect.flow_id) == (cause.tenant, cause.import_id, cause.flow_id)
    assert effect.correlation_id == cause.correlation_id and effect.causation_id == cause.event_id


def _wire(payload, **overrides) -> tuple[bytes, list]:
    env = Envelope.wrap(payload, tenant=TENANT, import_id=IMPORT, producer="test")
    body = json.loads(env.encode()) | overrides
    headers = [(k, v) for k, v in env.headers() if k != "schema_version"]
    headers.append(("schema_version", str(body["schema_version"]).encode()))
    return json.dumps(body).encode(), headers


def test_refusals() -> None:
    with pytest.raises(MalformedEvent, match="not JSON"):
        decode(b"{not json", [("event_type", b"RecordBatch"), ("schema_version", b"1")])
    with pytest.raises(UnknownEventType):
        decode(*_wire(SAMPLES[4], event_type="AssetTeleported")[:1])
    with pytest.raises(UnsupportedSchemaVersion, match="newer"):
        decode(*_wire(SAMPLES[4], schema_version=2))
    body, headers = _wire(SAMPLES[4])
    without_tenant = json.loads(body)
    del without_tenant["tenant"]
    with pytest.raises(MalformedEvent, match="tenant"):
        decode(json.dumps(without_tenant).encode(), headers)
    with pytest.raises(MalformedEvent):
        decode(b"", [])


def test_row_batches_reject_ragged_rows() -> None:
    with pytest.raises(ValueError, match="row 2 has 1 cells"):
        RecordBatch(category="cmdb_export", batch_seq=1, columns=["a", "b"], row_numbers=[1, 2],
                    rows=[["x", "y"], ["z"]])


def test_decoded_cells_keep_their_json_types_and_other_cells_are_refused_as_ever() -> None:
    cells = ["text", "", None, 0, 7, 1.0, 2.5, True, False, 12345678901234567890123]
    batch = RecordBatch(category="cmdb_export", batch_seq=1, columns=[f"c{i}" for i in range(len(cells))],
                        row_numbers=[1, 2], rows=[cells, list(reversed(cells))])
    decoded = decode(*_wire(batch)).payload
    assert decoded.rows == [cells, list(reversed(cells))]
    assert [type(c) for c in decoded.rows[0]] == [type(c) for c in cells]  # 1.0 stays a float, True a bool

    body, headers = _wire(batch)
    for bad in ([1], {"a": 1}):
        wire = json.loads(body)
        wire["payload"]["rows"][1][3] = bad
        with pytest.raises(MalformedEvent, match=r"payload\.rows\.1\.3\.str"):
            decode(json.dumps(wire).encode(), headers)
    wire = json.loads(body)
    wire["payload"]["rows"][1] = "not a row"
    with pytest.raises(MalformedEvent, match=r"payload\.rows\.1"):
        decode(json.dumps(wire).encode(), headers)
    wire = json.loads(body)
    wire["payload"]["rows"][1] = cells[:3]
    with pytest.raises(MalformedEvent, match="row 2 has 3 cells"):
        decode(json.dumps(wire).encode(), headers)


def test_batcher_bounds_batches_and_checksums_them() -> None:
    batcher = RecordBatcher("cmdb_export", max_rows=2)
    out = [b for n in range(1, 6) if (b := batcher.add(n, {"hostname": f"h{n}"})) is not None]
    out.append(batcher.flush())
    assert [b.row_numbers for b in out] == [[1, 2], [3, 4], [5]]
    assert batcher.record_count == 5 and batcher.batch_count == 3 and len(batcher.checksum) == 64


def _reference_batches(records: list[dict[str, object]], max_rows: int, max_bytes: int) -> list[tuple]:
    """Batches as the size rule defines them: a batch closes at ``max_rows`` rows or once the sum over
    its rows of len(str(value)) + len(key) + 6 per cell (an empty or false value's length 0) reaches
    ``max_bytes``; its columns are the keys of its rows in first-seen order, a missing cell None."""
    out, pending, size = [], [], 0
    for n, record in enumerate(records, start=1):
        pending.append((n, record))
        size += sum((len(str(v)) if v else 0) + len(k) + 6 for k, v in record.items())
        if len(pending) >= max_rows or size >= max_bytes:
            out.append(pending)
            pending, size = [], 0
    if pending:
        out.append(pending)
    batches = []
    for rows in out:
        cols = list(dict.fromkeys(k for _, r in rows for k in r))
        batches.append((cols, [n for n, _ in rows], [[r.get(c) for c in cols] for _, r in rows]))
    return batches


@pytest.mark.parametrize("first_number_at", [0, 300, None], ids=["numbers-throughout", "numbers-later", "text-only"])
def test_batcher_columns_and_byte_bounds_follow_each_batchs_rows(first_number_at: int | None) -> None:
    import random

    rng = random.Random(7)
    keys = ["hostname", "ip_address", "owner", "location", "ip_addresses"]
    records = []
    for n in range(500):
        chosen = rng.sample(keys, rng.randint(1, len(keys))) if rng.random() < 0.2 else keys[:3]
        numbers = first_number_at is not None and n >= first_number_at
        values = [None, 7, 0, 2.5, True, False] if numbers else [None, "", "x"]
        records.append({k: rng.choice([*values, "x" * rng.randint(0, 40)]) for k in chosen})
    batcher = RecordBatcher("cmdb_export", max_rows=37, max_bytes=2000)
    out = [b for n, r in enumerate(records, start=1) if (b := batcher.add(n, r)) is not None]
    out.append(batcher.flush())
    assert [(b.columns, b.row_numbers, b.rows) for b in out] == _reference_batches(records, 37, 2000)
    assert list(batcher.columns_seen) == list(dict.fromkeys(k for r in records for k in r))
    assert batcher.record_count == 500 and batcher.flush() is None


def test_a_json_schema_for_every_event() -> None:
    from contracts.history import MODELS

    exported = schemas()
    assert set(exported) == {f"{t}.v{cls.SCHEMA_VERSION}.json" for t, cls in REGISTRY.items()} | {
        f"{t}.v{v}.json" for t, v in MODELS}
    upload = exported["ImportUploaded.v1.json"]
    assert {"event_id", "tenant", "import_id", "payload"} <= set(upload["required"])


def test_committed_schemas_are_current() -> None:
    from pathlib import Path

    committed = Path(__file__).parents[1] / "schemas"
    for name, schema in schemas().items():
        path = committed / name
        assert path.exists(), f"{name} missing: run `make schemas`"
        assert json.loads(path.read_text()) == schema, f"{name} is stale: run `make schemas`"
