"""``/v1/imports``: submit a file, read its receipt."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from contracts import Category
from tributary_runtime.deps import ContextDep, DbDep, ProducerDep

from .. import receipts, uploads
from ..parsers import UploadRejected
from .deps import SettingsDep

router = APIRouter(prefix="/v1/imports", tags=["imports"])


class ImportReceipt(BaseModel):
    import_id: uuid.UUID
    flow_id: uuid.UUID
    category: Category
    filename: str
    file_format: str | None
    size_bytes: int
    sha256: str | None
    record_count: int | None
    batch_count: int | None
    status: str
    validate_only: bool
    created_at: datetime
    uploaded_at: datetime | None


class Rejection(BaseModel):
    code: str
    message: str
    row: int | None = None
    column: str | None = None


def _receipt(row: dict) -> ImportReceipt:
    return ImportReceipt.model_validate({k: row[k] for k in ImportReceipt.model_fields})


@router.post("", status_code=202, response_model=ImportReceipt,
             responses={422: {"model": Rejection}, 413: {"model": Rejection}, 503: {"model": Rejection}})
async def submit_import(
    ctx: ContextDep,
    db: DbDep,
    producer: ProducerDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV, XLSX, JSON array or NDJSON")],
    category: Annotated[str, Form()],
    validate_only: Annotated[bool, Form()] = False,
    source_system: Annotated[str | None, Form(
        max_length=100, description="the system the data comes from, e.g. servicenow (ranks its values)")] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
    traceparent: Annotated[str | None, Header(
        description="W3C trace context to continue; without it the import's trace id is its import id")] = None,
) -> JSONResponse:
    try:
        cat = Category(category)
    except ValueError:
        allowed = ", ".join(c.value for c in Category)
        return _reject(422, UploadRejected("unknown_category", f"category {category!r} is not one of: {allowed}"))
    upload = uploads.Upload(stream=file.file, filename=file.filename or "upload", content_type=file.content_type,
                            category=cat, validate_only=validate_only, idempotency_key=idempotency_key,
                            source_system=(source_system or "").strip().lower() or None)
    try:
        accepted = await uploads.accept(upload, ctx, db, producer, max_bytes=settings.max_upload_bytes,
                                        batch_rows=settings.batch_rows, traceparent=traceparent)
    except UploadRejected as exc:
        return _reject(413 if exc.code == "too_large" else 422, exc)
    except asyncio.CancelledError:
        # The process is stopping and the upload outlived the grace open requests get: it was
        # abandoned (uploads.py). The cancellation ends this request, and an answer saying so
        # beats the bare 500 the server would send in its place.
        return JSONResponse(
            {"detail": UploadRejected(
                "shutting_down", "The service stopped before the upload was accepted. Send it again"
                " (with the same Idempotency-Key, if it had one: the import is then finished, not repeated).",
            ).to_dict()},
            status_code=503, headers={"Retry-After": "5"})
    body = _receipt(accepted.receipt).model_dump(mode="json")
    return JSONResponse(body, status_code=200 if accepted.replayed else 202)


@router.get("/{import_id}", response_model=ImportReceipt)
async def get_import(import_id: uuid.UUID, ctx: ContextDep, db: DbDep) -> ImportReceipt:
    async with db.connection() as conn:
        row = await receipts.get_receipt(conn, ctx.tenant, import_id)
    if row is None:
        raise HTTPException(404, detail="import not found")
    return _receipt(row)


def _reject(status: int, exc: UploadRejected) -> JSONResponse:
    return JSONResponse({"detail": exc.to_dict()}, status_code=status)
