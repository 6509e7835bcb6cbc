"""The enricher's query API: the inventory (assets, dependencies, duplicate candidates) and its policy.

Each module exposes ``router``; every request is scoped to the tenant of its headers, and
another tenant's resource answers 404.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

PageNumber = Annotated[int, Query(ge=1)]
PageSize = Annotated[int, Query(ge=1, le=500)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


def offset(page: int, page_size: int) -> int:
    return (page - 1) * page_size
