"""Submitting an import as events: the helper an upstream system uses, and ingest too.

An import is its rows as ``RecordBatch`` events, then one ``ImportUploaded`` marker
carrying the record count, batch count and checksum. Event ids are deterministic
(import id + type + batch_seq), so submitting the same import again after a failure
is recognised downstream as a duplicate rather than a second copy.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import topics
from .categories import Category
from .digest import batch_digest, import_checksum
from .envelope import Envelope, Tenant, utcnow
from .events import Cell, ImportUploaded, RecordBatch, ValidatedBatch

DEFAULT_BATCH_ROWS = 1000
DEFAULT_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class SubmittedImport:
    import_id: uuid.UUID
    flow_id: uuid.UUID
    record_count: int
    batch_count: int
    checksum: str
    columns: list[str]


class RecordBatcher:
    """Groups (row_number, record) pairs into row batches bounded in rows and bytes.

    Produces RecordBatch by default; the validator uses it for ValidatedBatch.
    """

    def __init__(self, category: Category, *, max_rows: int = DEFAULT_BATCH_ROWS,
                 max_bytes: int = DEFAULT_BATCH_BYTES,
                 payload_type: type[RecordBatch] | type[ValidatedBatch] = RecordBatch) -> None:
        self.category = Category(category)
        self.payload_type = payload_type
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.columns_seen: dict[str, None] = {}
        self.digests: list[tuple[int, str]] = []
        self.record_count = 0
        self._pending: list[tuple[int, Mapping[str, Cell]]] = []
        self._pending_bytes = 0
        # Rows nearly always repeat the previous row's keys: the pending batch's columns, and what a
        # row's keys add to its size estimate, are worked out again only when the key set changes.
        self._batch_columns: dict[str, None] = {}
        self._keys: frozenset[str] = frozenset()
        self._key_bytes = 0
        # Whether every cell so far was text or None (``_size``).
        self._text_cells = True

    def add(self, row_number: int, record: Mapping[str, Cell]) -> RecordBatch | ValidatedBatch | None:
        self._pending.append((row_number, record))
        if record.keys() != self._keys:
            self._keys = frozenset(record)
            self._key_bytes = sum(len(k) + 6 for k in record)
            for key in record:
                self._batch_columns.setdefault(key, None)
                self.columns_seen.setdefault(key, None)
        self._pending_bytes += self._size(record.values()) + self._key_bytes
        if len(self._pending) >= self.max_rows or self._pending_bytes >= self.max_bytes:
            return self.flush()
        return None

    def _size(self, values: Any) -> int:
        """The cells' length as text, an empty or false one (None, "", 0) as nothing: what a batch's
        size is bounded by. A row's keys are counted with it (``_key_bytes``), though a batch names
        its columns once, so the bound is never short of the bytes sent. Text is measured as it
        is: converting each cell to text was half of batching a parsed file's rows. Once a cell
        is anything else (a number), each is converted, as the same rule has it."""
        if self._text_cells:
            try:
                return sum(map(len, filter(None, values)))
            except TypeError:
                self._text_cells = False
        return sum(map(len, map(str, filter(None, values))))

    def flush(self) -> RecordBatch | ValidatedBatch | None:
        if not self._pending:
            return None
        cols = list(self._batch_columns)
        row_numbers = [n for n, _ in self._pending]
        rows = [list(map(record.get, cols)) for _, record in self._pending]
        seq = len(self.digests) + 1
        self.digests.append((seq, batch_digest(seq, row_numbers, rows)))
        self.record_count += len(rows)
        self._pending = []
        self._pending_bytes = 0
        self._batch_columns = {}
        self._keys = frozenset()
        return self.payload_type(category=self.category, batch_seq=seq, columns=cols,
                                 row_numbers=row_numbers, rows=rows)

    @property
    def batch_count(self) -> int:
        return len(self.digests)

    @property
    def checksum(self) -> str:
        return import_checksum(self.digests)


class ImportSubmitter:
    """Publishes an import as events through an ``AIOKafkaProducer`` the caller owns."""

    def __init__(self, producer: Any, *, producer_name: str = "upstream",
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        self._producer = producer
        self.producer_name = producer_name
        self.batch_rows = batch_rows

    async def submit(
        self,
        *,
        tenant: Tenant,
        category: Category | str,
        records: Iterable[tuple[int, Mapping[str, Cell]]] | AsyncIterable[tuple[int, Mapping[str, Cell]]],
        filename: str,
        user_id: str = "system",
        import_id: uuid.UUID | None = None,
        flow_id: uuid.UUID | None = None,
        file_format: Literal["csv", "xlsx", "json", "ndjson", "events"] = "events",
        source: Literal["http", "upstream"] = "upstream",
        size_bytes: int = 0,
        sha256: str | None = None,
        header: list[str] | None = None,
        validate_only: bool = False,
        flow_name: str | None = None,
        started_at: datetime | None = None,
        source_system: str | None = None,
        traceparent: str | None = None,
    ) -> SubmittedImport:
        """Publish the import. ``traceparent`` (W3C trace context) goes on every event's headers,
        so the stages that follow continue the submitter's trace."""
        started_at = started_at or utcnow()
        extra_headers = [("traceparent", traceparent.encode())] if traceparent else []
        import_id = import_id or uuid.uuid4()
        flow_id = flow_id or uuid.uuid4()
        batcher = RecordBatcher(Category(category), max_rows=self.batch_rows)
        pending = []

        def wrap(payload: Any, stage_key: str) -> Envelope[Any]:
            return Envelope.wrap(payload, tenant=tenant, import_id=import_id, flow_id=flow_id,
                                 user_id=user_id, producer=self.producer_name, stage_key=stage_key)

        async def publish(batch: RecordBatch | None) -> None:
            if batch is None:
                return
            env = wrap(batch, str(batch.batch_seq))
            pending.append(await self._producer.send(
                topics.RECORDS, key=env.key, value=env.encode(), headers=env.headers() + extra_headers))

        if isinstance(records, AsyncIterable):
            async for row_number, record in records:
                await publish(batcher.add(row_number, record))
        else:
            for row_number, record in records:
                await publish(batcher.add(row_number, record))
        await publish(batcher.flush())
        # The marker must follow every batch: wait for their acknowledgements first.
        for fut in pending:
            await fut
        columns = header if header is not None else list(batcher.columns_seen)
        marker = ImportUploaded(
            category=Category(category), filename=filename, file_format=file_format,
            size_bytes=size_bytes, sha256=sha256, record_count=batcher.record_count,
            batch_count=batcher.batch_count, checksum=batcher.checksum, columns=columns,
            source=source, validate_only=validate_only, flow_name=flow_name, started_at=started_at,
            source_system=source_system,
        )
        env = wrap(marker, "")
        await self._producer.send_and_wait(topics.EVENTS, key=env.key, value=env.encode(),
                                           headers=env.headers() + extra_headers)
        return SubmittedImport(import_id, flow_id, batcher.record_count, batcher.batch_count,
                               batcher.checksum, columns)
