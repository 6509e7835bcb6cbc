"""Dependencies of the ingest API: settings, database, producer, request context."""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request

from tributary_runtime.db import Database
from tributary_runtime.http import RequestContext, request_context

from ..settings import IngestSettings


def get_settings(request: Request) -> IngestSettings:
    return request.app.state.resources.settings


def get_db(request: Request) -> Database:
    return request.app.state.resources.db


def get_producer(request: Request) -> AIOKafkaProducer:
    return request.app.state.resources.producer


SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
ProducerDep = Annotated[AIOKafkaProducer, Depends(get_producer)]
ContextDep = Annotated[RequestContext, Depends(request_context)]
