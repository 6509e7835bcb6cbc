"""The database pool and producer a service process holds for its lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from .broker import ensure_topics, make_producer
from .db import Database
from .settings import ServiceSettings

log = logging.getLogger(__name__)

# Each closing step of a stopping process (see service.serve for the whole budget).
CLOSE_TIMEOUT_S = 1.5


@dataclass
class Resources:
    settings: ServiceSettings
    db: Database
    producer: AIOKafkaProducer


@asynccontextmanager
async def open_resources(settings: ServiceSettings, schema: str, client_id: str) -> AsyncIterator[Resources]:
    await ensure_topics(settings)
    db = await Database.connect(settings.asyncpg_dsn, schema, max_size=settings.db_pool_size)
    producer = make_producer(settings, client_id)
    await producer.start()
    try:
        yield Resources(settings, db, producer)
    finally:
        # Bounded, so that a stopping process exits within 10 s of SIGTERM whatever the broker or
        # the database are doing: what is not flushed by then was not acknowledged, and whoever
        # published it has not committed its offsets either (it is redone after the restart).
        try:
            await asyncio.wait_for(producer.stop(), timeout=CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("the producer did not flush and close within %.1fs", CLOSE_TIMEOUT_S)
        await db.close(timeout=CLOSE_TIMEOUT_S)
