"""No request of any service's API hands work to FastAPI's thread pool on the way to its handler.

FastAPI runs a plain ``def`` dependency in a worker thread, and a plain ``def`` endpoint too: a
hand-over to the thread and back for every request. The services' dependencies only read what
the app holds (its database, producer, settings, key ring), so they are ``async def`` and run on
the event loop. Built without resources (``tributary openapi``'s apps): nothing is started.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tributary_cli.openapi import SERVICES, app_for


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, those of included routers too (FastAPI keeps those behind the router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _calls(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _calls(sub)


def _on_the_loop(call: Any) -> bool:
    """Whether FastAPI awaits ``call`` on the event loop: a coroutine or async generator function,
    or an object whose ``__call__`` is one. A class, a plain function or a plain generator it runs
    in the thread pool (fastapi.dependencies.utils.solve_dependencies, routing.run_endpoint_function)."""
    if inspect.isclass(call):
        return False
    function = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_dependency_or_endpoint_of_an_api_runs_in_the_thread_pool(service: str) -> None:
    app = app_for(service)
    routes = list(_api_routes(app.routes))
    assert any(route.path == "/health" for route in routes), f"{service}: the routes were not all found"
    in_threads = sorted({f"{route.path}: {getattr(d.call, '__qualname__', d.call)}"
                         for route in routes for d in (route.dependant, *_calls(route.dependant))
                         if d.call is not None and not _on_the_loop(d.call)})
    assert in_threads == []
