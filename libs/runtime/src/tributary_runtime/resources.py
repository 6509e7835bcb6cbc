"""The database pool and producer a service process holds for its lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from .broker import ensure_topics, make_producer
from .db import Database
from .settings import ServiceSettings


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
        await producer.stop()
        await db.close()
