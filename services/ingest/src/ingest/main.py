"""Wiring of the ingest process: the HTTP upload API, no consumer."""

from __future__ import annotations

from tributary_runtime.service import run_service

from . import SCHEMA
from .api import imports
from .settings import IngestSettings


async def serve(settings: IngestSettings) -> None:
    await run_service(settings, name="ingest", schema=SCHEMA, routers=(imports.router,))
