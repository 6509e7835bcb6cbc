"""Wiring of the ingest process: the HTTP upload API, no consumer."""

from __future__ import annotations

from tributary_runtime.resources import Resources
from tributary_runtime.service import run_service

from . import SCHEMA, keys
from .api import imports
from .settings import IngestSettings

# The HTTP API (also what `tributary openapi` documents).
ROUTERS = (imports.router,)


async def announce_keys(res: Resources) -> None:
    """Every key again on the key topic: a broker that lost its data learns them back."""
    async with res.db.connection() as conn:
        await keys.announce_all(conn, res.producer)


async def serve(settings: IngestSettings) -> None:
    await run_service(settings, name="ingest", schema=SCHEMA, routers=ROUTERS, on_start=announce_keys)
