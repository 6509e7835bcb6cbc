"""Dependencies of the flow API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tributary_runtime.db import Database
from tributary_runtime.http import RequestContext, request_context


def get_db(request: Request) -> Database:
    return request.app.state.resources.db


DbDep = Annotated[Database, Depends(get_db)]
ContextDep = Annotated[RequestContext, Depends(request_context)]
