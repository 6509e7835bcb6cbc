"""The upload use case: check the whole file, then publish it as an import.

A rejected file publishes nothing: the file is parsed once completely (streaming,
from the spooled upload) before the first event leaves, then parsed again while
publishing. Both passes are bounded in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from aiokafka import AIOKafkaProducer

from contracts import Category
from contracts.producer import ImportSubmitter, SubmittedImport
from tributary_runtime import logs, metrics, tracing
from tributary_runtime.db import Database
from tributary_runtime.http import RequestContext

from . import receipts
from .parsers import UploadRejected, open_upload

CHUNK = 1024 * 1024

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    stream: BinaryIO
    filename: str
    content_type: str | None
    category: Category
    validate_only: bool = False
    source_system: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Accepted:
    receipt: dict[str, Any]
    replayed: bool


class UploadAbandoned(Exception):
    """The request checking the upload was cancelled (the process is stopping): stop reading."""


# Rows checked between two looks at the abandon flag: a look costs nothing next to a row.
CHECK_EVERY_ROWS = 1000


def fingerprint(stream: BinaryIO, max_bytes: int, abandon: threading.Event | None = None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        if abandon is not None and abandon.is_set():
            raise UploadAbandoned
        size += len(chunk)
        if size > max_bytes:
            raise UploadRejected("too_large", f"The file is larger than the limit of {max_bytes} bytes.")
        digest.update(chunk)
    stream.seek(0)
    return size, digest.hexdigest()


def check_file(upload: Upload, abandon: threading.Event | None = None) -> list[str]:
    """Parse every row once; raise UploadRejected with row and column on the first problem."""
    upload.stream.seek(0)
    parsed = open_upload(upload.stream, upload.filename, upload.content_type, check_only=True)
    for n, _ in enumerate(parsed.rows, start=1):
        if n % CHECK_EVERY_ROWS == 0 and abandon is not None and abandon.is_set():
            raise UploadAbandoned
    upload.stream.seek(0)
    return parsed.header


async def off_loop(check: Callable[..., T], *args: Any) -> T:
    """Run a CPU-bound ``check(*args, abandon)`` in a thread, stopping it when the request is cancelled.

    A thread cannot be cancelled, and the process waits for its threads before it exits: a
    1 GB upload being checked when SIGTERM arrived held the exit for a minute. The check looks
    at ``abandon`` as it goes and gives up once the awaiting request is gone.
    """
    abandon = threading.Event()
    try:
        return await asyncio.to_thread(check, *args, abandon)
    except asyncio.CancelledError:
        log.warning("upload abandoned while being checked (the request was cancelled); nothing was published")
        raise
    finally:
        abandon.set()


# Up to this size a file is checked on the event loop (1,500 CMDB rows: about 2 ms), beyond it in a
# thread (``off_loop``). Handing a check to a thread and back cost 60-80 µs even with the loop idle,
# about what checking a 100-row file takes (0.16 ms), and the thread then waits for the loop to
# let go of the GIL; a small import's upload did it twice.
CHECK_ON_LOOP_UP_TO_BYTES = 64 * 1024


def stored_size(stream: BinaryIO) -> int:
    """How many bytes the received upload ``stream`` holds (left at its start)."""
    size = stream.seek(0, 2)
    stream.seek(0)
    return size


async def run_check(check: Callable[..., T], size: int, *args: Any) -> T:
    """``check(*args, abandon)`` over a file of ``size`` bytes: on the event loop up to
    ``CHECK_ON_LOOP_UP_TO_BYTES`` (with nothing to abandon it: it is over in a few ms), otherwise
    in a thread, abandoned with its request (``off_loop``)."""
    if size <= CHECK_ON_LOOP_UP_TO_BYTES:
        return check(*args, None)
    return await off_loop(check, *args)


async def accept(upload: Upload, ctx: RequestContext, db: Database, producer: AIOKafkaProducer,
                 *, max_bytes: int, batch_rows: int, traceparent: str | None = None) -> Accepted:
    """Check and publish an upload. ``traceparent`` (the request's W3C header) is continued:
    the import's events carry a child span of it; without one the trace id is the import id."""
    started_at = datetime.now(UTC)
    # Parsing is CPU-bound and synchronous: keep it off the event loop. The whole file is
    # checked before anything is written, the idempotency key included: a rejected upload
    # leaves no trace, and a retry with the same key and a fixed file starts afresh.
    received = stored_size(upload.stream)
    size, sha256 = await run_check(fingerprint, received, upload.stream, max_bytes)
    log.info("checking upload %s (%d bytes, %s)", upload.filename, size, upload.category.value)
    header = await run_check(check_file, received, upload)

    import_id = uuid.uuid4()
    if upload.idempotency_key:
        async with db.transaction() as conn:
            bound = await receipts.claim_idempotency_key(conn, ctx.tenant, upload.idempotency_key, import_id)
            existing = await receipts.get_receipt(conn, ctx.tenant, bound)
        if bound != import_id and existing is not None and existing["status"] == "uploaded":
            return Accepted(existing, replayed=True)
        # Bound earlier but never finished (the process died mid-upload): finish it now
        # under the same ids, so any batches already out are recognised as duplicates.
        import_id = bound
        flow_id = existing["flow_id"] if existing else uuid.uuid4()
    else:
        flow_id = uuid.uuid4()

    parent = tracing.parse(traceparent)
    span = parent.child() if parent is not None else tracing.for_import(import_id)
    # The rest of this request logs under the import (the context ends with the request's task).
    logs.set_context(logs.LogContext(import_id=str(import_id), flow_id=str(flow_id),
                                     correlation_id=str(import_id), trace_id=span.trace_id))

    parsed = open_upload(upload.stream, upload.filename, upload.content_type)

    receipt = {
        "import_id": import_id, "flow_id": flow_id,
        "client_account_id": ctx.tenant.client_account_id, "engagement_id": ctx.tenant.engagement_id,
        "user_id": ctx.user_id, "category": upload.category.value, "filename": upload.filename,
        "file_format": parsed.file_format, "content_type": upload.content_type, "size_bytes": size,
        "sha256": sha256, "source": "http", "validate_only": upload.validate_only, "status": "receiving",
        "idempotency_key": upload.idempotency_key,
    }
    async with db.transaction() as conn:
        await receipts.insert_receipt(conn, receipt)

    submitted: SubmittedImport = await ImportSubmitter(producer, producer_name="ingest", batch_rows=batch_rows).submit(
        tenant=ctx.tenant, category=upload.category, records=parsed.rows, filename=upload.filename,
        user_id=ctx.user_id, import_id=import_id, flow_id=flow_id, file_format=parsed.file_format,
        source="http", size_bytes=size, sha256=sha256, header=header, validate_only=upload.validate_only,
        started_at=started_at, source_system=upload.source_system, traceparent=span.header,
    )
    metrics.ROWS_PROCESSED.inc(submitted.record_count, "published")
    log.info("import %s published: %d rows in %d batches (%s, %s)", import_id, submitted.record_count,
             submitted.batch_count, upload.category.value, upload.filename)
    async with db.transaction() as conn:
        await receipts.mark_uploaded(conn, import_id, record_count=submitted.record_count,
                                     batch_count=submitted.batch_count, checksum=submitted.checksum)
        final = await receipts.get_receipt(conn, ctx.tenant, import_id)
    assert final is not None
    return Accepted(final, replayed=False)
