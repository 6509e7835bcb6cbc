"""FastAPI dependencies every service API shares: the database, the producer, the caller."""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request

from .db import Database
from .http import RequestContext, request_context


# Dependencies are ``async def`` though none awaits: FastAPI runs a plain ``def`` dependency in its
# thread pool, a hand-over to a worker thread and back for every request (with the tenant's and
# ingest's settings, four per upload) just to read an attribute.


async def get_db(request: Request) -> Database:
    return request.app.state.resources.db


async def get_producer(request: Request) -> AIOKafkaProducer:
    return request.app.state.resources.producer


DbDep = Annotated[Database, Depends(get_db)]
ProducerDep = Annotated[AIOKafkaProducer, Depends(get_producer)]
ContextDep = Annotated[RequestContext, Depends(request_context)]
