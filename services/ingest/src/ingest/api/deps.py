"""The ingest API's own dependency: its settings (the shared ones are in tributary_runtime.deps;
``async`` as they are, for the reason given there)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..settings import IngestSettings


async def get_settings(request: Request) -> IngestSettings:
    return request.app.state.resources.settings


SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
