"""A service's HTTP app without its resources, and its OpenAPI document.

``build_app`` assembles the same app ``service.run_service`` serves (title, version, the
service's routers, then the shared ``/health``, ``/ready``, ``/metrics`` and ``/v1/whoami``)
but opens nothing: no pool, no producer, no key ring. It is enough to describe the API
(``document``) and cheap enough to do in a test; run_service could build its app with it.

``document`` is FastAPI's OpenAPI document plus how to authenticate: the API key, sent as
``Authorization: Bearer <key>`` or ``X-Api-Key: <key>`` (``http.request_context``), is a
security scheme, and every operation that needs a key (those declaring its ``Authorization``
header) names both instead of the two header parameters. ``tributary openapi``
writes the four services' documents to docs/openapi/.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI

from .http import health_router

BEARER = "bearerAuth"
API_KEY_HEADER = "apiKeyHeader"
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as a bearer token: `Authorization: Bearer <key>`. "
                       "The key names the tenant; `tributary keys create` makes one.",
    },
    API_KEY_HEADER: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "The same API key in the `X-Api-Key` header, for clients that cannot set "
                       "`Authorization`.",
    },
}
# Either scheme is enough (OpenAPI: alternatives are separate requirement objects).
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {API_KEY_HEADER: []}]
# Described by the schemes above rather than as parameters of each operation.
KEY_HEADERS = frozenset({"authorization", "x-api-key"})
UNAUTHORIZED = {"description": "No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)."}


async def _not_ready() -> dict[str, bool]:
    return {"resources": False}


def build_app(name: str, routers: Iterable[APIRouter]) -> FastAPI:
    """The HTTP app of service ``name`` with ``routers``, as run_service builds it, minus its state.

    ``/ready`` answers 503 here: nothing is open. Requests needing the database or a key fail.
    """
    app = FastAPI(title=f"Tributary {name}", version="1")
    for router in routers:
        app.include_router(router)
    app.include_router(health_router(_not_ready))
    return app


def _needs_key(operation: dict[str, Any]) -> bool:
    # request_context (the only way an operation learns its caller) declares the Authorization header.
    return any(p.get("in") == "header" and p.get("name", "").lower() == "authorization"
               for p in operation.get("parameters", []))


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the API-key security schemes applied to the operations needing a key."""
    doc = json.loads(json.dumps(app.openapi()))  # a copy: app.openapi() caches its dict
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or not _needs_key(operation):
                continue
            params = [p for p in operation["parameters"]
                      if not (p.get("in") == "header" and p.get("name", "").lower() in KEY_HEADERS)]
            if params:
                operation["parameters"] = params
            else:
                del operation["parameters"]
            operation["security"] = SECURITY
            operation.setdefault("responses", {}).setdefault("401", UNAUTHORIZED)
    return doc


def render(doc: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
